"""An asyncio facade over one long-lived confluent-kafka AdminClient, batching many topics per request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # the package re-exports without __all__
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
)

from durabletopic.adapters.kafka.clientconfig import LIBRDKAFKA_LOGGER
from durabletopic.adapters.kafka.observe import config_values, observe_cluster, observe_topic
from durabletopic.core.model import ClusterInfo, ObservedTopic, TopicError
from durabletopic.core.plan import CreateTopic
from durabletopic.loop.ports import KafkaAdminError, KafkaAuthenticationFailed, KafkaUnavailable, TopicReads

librdkafka_log = logging.getLogger(LIBRDKAFKA_LOGGER)
AUTH_FAILURE_MEMORY_S = 60.0

K = TypeVar("K")
# (operation, outcome, seconds): outcome "ok"; "error" when Kafka answered with a refusal;
# "unreachable" when no broker answered.
OnRequest = Callable[[str, str, float], None]
UNREACHABLE = "unreachable"

# Request-level failures: no broker answered in time. The caller retries with backoff.
UNAVAILABLE_CODES = frozenset(
    {
        "_TRANSPORT",
        "_TIMED_OUT",
        "_TIMED_OUT_QUEUE",
        "_ALL_BROKERS_DOWN",
        "_DESTROY",
        "_RESOLVE",
        "_WAIT_COORD",
        "_AUTHENTICATION",
        "_SSL",
        "_NODE_UPDATE",
    }
)
# Answers to describe that mean "no such topic" (an invalid name cannot exist either).
ABSENT_CODES = frozenset({"UNKNOWN_TOPIC_OR_PART", "UNKNOWN_TOPIC_ID", "TOPIC_EXCEPTION", "_UNKNOWN_TOPIC"})
RETRIABLE_CODES = frozenset(
    {
        "UNKNOWN_TOPIC_OR_PART",
        "LEADER_NOT_AVAILABLE",
        "NOT_LEADER_FOR_PARTITION",
        "NOT_CONTROLLER",
        "REQUEST_TIMED_OUT",
        "NETWORK_EXCEPTION",
        "BROKER_NOT_AVAILABLE",
        "NOT_ENOUGH_REPLICAS",
        "KAFKA_STORAGE_ERROR",
        "REASSIGNMENT_IN_PROGRESS",
        "THROTTLING_QUOTA_EXCEEDED",
        "CONCURRENT_TRANSACTIONS",
    }
)
SENSITIVE_KEY_PARTS = ("password", "secret", "jaas", "key", "token", "credential")


def topic_error(error: KafkaError) -> TopicError:
    code = str(error.name())
    return TopicError(
        code=code, message=str(error.str()), retriable=bool(error.retriable()) or code in RETRIABLE_CODES
    )


def chunks(items: Sequence[K], size: int) -> Iterator[list[K]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def is_sensitive_key(key: str) -> bool:
    return any(part in key.lower() for part in SENSITIVE_KEY_PARTS)


def redact(text: str, config: Mapping[str, str]) -> str:
    """`text` with every value of a sensitive config key replaced by ***."""
    for key, value in config.items():
        if value and is_sensitive_key(key):
            text = text.replace(value, "***")
    return text


class KafkaAdmin:
    """Batched admin operations; every method takes many topics and makes a constant number of
    requests per `chunk_size` topics. Per-topic failures are returned, whole-request ones raised."""

    def __init__(
        self,
        bootstrap_servers: str,
        client_config: Mapping[str, str] | None = None,
        *,
        request_timeout_s: float = 10.0,
        chunk_size: int = 1000,
        on_request: OnRequest | None = None,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        self._bootstrap_servers = bootstrap_servers
        self._timeout = float(request_timeout_s)
        self._guard = self._timeout + 2.0
        self._chunk_size = chunk_size
        self._on_request = on_request
        self._refreshing = threading.Lock()
        conf: dict[str, Any] = dict(client_config or {})
        conf["bootstrap.servers"] = bootstrap_servers
        self._auth_failure: tuple[float, str] | None = None
        conf["error_cb"] = self._remember_error
        # A cheap brokers-only refresh; it also moves admin requests off a dead "controller" broker.
        conf.setdefault("topic.metadata.refresh.interval.ms", "5000")
        try:
            # With a logger, librdkafka queues its log lines until poll(): see _finish().
            self._admin: AdminClient | None = AdminClient(conf, logger=librdkafka_log)
        except KafkaException as e:
            reason = e.args[0].str() if isinstance(e.args[0], KafkaError) else str(e)
            raise KafkaAdminError(redact(f"invalid Kafka client configuration: {reason}", conf)) from None
        del conf

    def __repr__(self) -> str:
        return f"KafkaAdmin(bootstrap_servers={self._bootstrap_servers!r})"

    def close(self) -> None:
        """Drop the client. Call it only when no request is in flight."""
        self._admin = None

    @property
    def _client(self) -> AdminClient:
        if self._admin is None:
            raise KafkaAdminError("the Kafka admin client is closed")
        return self._admin

    async def describe_cluster(self) -> ClusterInfo:
        def submit() -> dict[str, Future[Any]]:
            return {"": self._client.describe_cluster(request_timeout=self._timeout)}

        results = await self._call("describe_cluster", submit)
        result = results[""]
        if isinstance(result, KafkaError):
            raise KafkaAdminError(f"describe_cluster: {topic_error(result)}")
        return observe_cluster(result)

    async def describe_topics(self, names: Collection[str]) -> dict[str, ObservedTopic | None]:
        """Partitions, topic id and configs of each topic; None where the topic does not exist.

        Raises KafkaUnavailable on transport failures and on retriable per-topic errors,
        KafkaAdminError (with `errors`) on other per-topic errors such as authorization failures.
        """
        out: dict[str, ObservedTopic | None] = {}
        for chunk in chunks(list(dict.fromkeys(names)), self._chunk_size):
            observed, errors = await self._describe_chunk(chunk)
            out |= observed
            if errors:
                first, error = next(iter(errors.items()))
                message = f"describe_topics: {len(errors)} topic(s) failed, first {first!r}: {error}"
                retriable = all(e.retriable for e in errors.values())
                raise (KafkaUnavailable if retriable else KafkaAdminError)(message, errors)
        return out

    async def read_topics(
        self, names: Collection[str], configs_of: Collection[str] | None = None
    ) -> TopicReads:
        """describe_topics, with each failure confined to the topics it concerns: a topic Kafka refuses
        gets its error, a chunk that gets no answer gets its reason; the others are read. Raises
        KafkaUnavailable only when no chunk was answered. With `configs_of`, only those topics' configs
        are read (the others come back with `configs_complete` False and no configs)."""
        reads = TopicReads()
        last: KafkaUnavailable | None = None
        wanted = None if configs_of is None else set(configs_of)
        for chunk in chunks(list(dict.fromkeys(names)), self._chunk_size):
            try:
                observed, errors = await self._describe_chunk(chunk, wanted)
            except KafkaUnavailable as error:
                last = error
                reads.unanswered.update(dict.fromkeys(chunk, f"Kafka cannot be reached ({error})"))
                continue
            reads.observed.update(observed)
            reads.errors.update(errors)
        if last is not None and not reads.observed and not reads.errors:
            raise last
        return reads

    async def _describe_chunk(
        self, chunk: list[str], configs_of: set[str] | None = None
    ) -> tuple[dict[str, ObservedTopic | None], dict[str, TopicError]]:
        """One DescribeTopics and one DescribeConfigs request (of the topics in `configs_of`, or all), sent together."""
        with_configs = [name for name in chunk if configs_of is None or name in configs_of]
        resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in with_configs]

        async def no_configs() -> dict[Any, Any]:
            return {}

        described, configured = await asyncio.gather(
            self._call(
                "describe_topics",
                self._client.describe_topics,
                TopicCollection(chunk),
                request_timeout=self._timeout,
            ),
            self._call(
                "describe_configs",
                self._client.describe_configs,
                resources,
                request_timeout=self._timeout,
            )
            if resources
            else no_configs(),
            return_exceptions=True,
        )
        if isinstance(described, BaseException):
            raise described
        if isinstance(configured, BaseException):
            raise configured
        configs: dict[str, Any] = {resource.name: value for resource, value in configured.items()}
        observed: dict[str, ObservedTopic | None] = {}
        errors: dict[str, TopicError] = {}
        for name in chunk:
            description, entries = described[name], configs.get(name)
            failure = next((r for r in (description, entries) if isinstance(r, KafkaError)), None)
            if failure is None and entries is None:
                observed[name] = observe_topic(description, {}, configs_complete=False)
            elif failure is None:
                observed[name] = observe_topic(description, entries or {})
            elif failure.name() in ABSENT_CODES:
                observed[name] = None
            else:
                errors[name] = topic_error(failure)
        return observed, errors

    async def list_topics(self) -> set[str]:
        """Every topic name in the cluster, internal ones included."""
        start, outcome = time.monotonic(), "error"
        try:
            metadata = await asyncio.wait_for(
                asyncio.to_thread(self._client.list_topics, timeout=self._timeout), self._guard
            )
            outcome = "ok"
            return set(metadata.topics)
        except KafkaException as e:
            error = unavailable("list_topics", e.args[0])
            if isinstance(error, KafkaUnavailable):
                outcome = UNREACHABLE
            raise error from None
        except TimeoutError:
            outcome = UNREACHABLE
            raise KafkaUnavailable(f"list_topics: no answer within {self._guard:.0f}s") from None
        finally:
            self._finish("list_topics", outcome, start)

    async def create_topics(self, topics: Sequence[CreateTopic]) -> dict[str, TopicError | None]:
        unique = list({t.name: t for t in topics}.values())
        out: dict[str, TopicError | None] = {}
        for chunk in chunks(unique, self._chunk_size):
            new_topics = [
                NewTopic(t.name, t.partitions, t.replication_factor, config=dict(t.configs)) for t in chunk
            ]
            out |= topic_errors(
                await self._call(
                    "create_topics",
                    self._client.create_topics,
                    new_topics,
                    operation_timeout=self._timeout,
                    request_timeout=self._timeout,
                )
            )
        return out

    async def create_partitions(self, requests: Mapping[str, int]) -> dict[str, TopicError | None]:
        """Grow each topic to the given total partition count."""
        out: dict[str, TopicError | None] = {}
        for chunk in chunks(list(requests.items()), self._chunk_size):
            new_partitions = [NewPartitions(name, total) for name, total in chunk]
            out |= topic_errors(
                await self._call(
                    "create_partitions",
                    self._client.create_partitions,
                    new_partitions,
                    operation_timeout=self._timeout,
                    request_timeout=self._timeout,
                )
            )
        return out

    async def alter_configs(
        self, requests: Mapping[str, Mapping[str, str | None]]
    ) -> dict[str, TopicError | None]:
        """Incremental config change per topic: a str value sets the key, None deletes the override.

        Keys not listed keep their values (this is IncrementalAlterConfigs, never AlterConfigs).
        """
        out: dict[str, TopicError | None] = {name: None for name, changes in requests.items() if not changes}
        wanted = [(name, changes) for name, changes in requests.items() if changes]
        for chunk in chunks(wanted, self._chunk_size):
            resources = [
                ConfigResource(
                    ConfigResource.Type.TOPIC,
                    name,
                    incremental_configs=[
                        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                        if value is not None
                        else ConfigEntry(key, None, incremental_operation=AlterConfigOpType.DELETE)
                        for key, value in changes.items()
                    ],
                )
                for name, changes in chunk
            ]
            results = await self._call(
                "alter_configs",
                self._client.incremental_alter_configs,
                resources,
                request_timeout=self._timeout,
            )
            out |= topic_errors({resource.name: value for resource, value in results.items()})
        return out

    async def alter_broker_configs(
        self, changes: Mapping[int, Mapping[str, str | None]]
    ) -> dict[int, TopicError | None]:
        """Incremental dynamic config change per broker id: a str value sets the key, None deletes it.

        A broker's config is changed by that broker, so this is one request per broker, sent at once.
        """

        async def alter_one(broker: int, entries: Mapping[str, str | None]) -> tuple[int, TopicError | None]:
            resource = ConfigResource(
                ConfigResource.Type.BROKER,
                str(broker),
                incremental_configs=[
                    ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                    if value is not None
                    else ConfigEntry(key, None, incremental_operation=AlterConfigOpType.DELETE)
                    for key, value in entries.items()
                ],
            )
            results = await self._call(
                "alter_broker_configs",
                self._client.incremental_alter_configs,
                [resource],
                request_timeout=self._timeout,
            )
            errors = topic_errors({r.name: value for r, value in results.items()})
            return broker, errors.get(str(broker))

        return dict(await asyncio.gather(*(alter_one(b, e) for b, e in changes.items())))

    async def delete_topics(self, names: Collection[str]) -> dict[str, TopicError | None]:
        out: dict[str, TopicError | None] = {}
        for chunk in chunks(list(dict.fromkeys(names)), self._chunk_size):
            out |= topic_errors(
                await self._call(
                    "delete_topics",
                    self._client.delete_topics,
                    chunk,
                    operation_timeout=self._timeout,
                    request_timeout=self._timeout,
                )
            )
        return out

    async def broker_configs(self) -> dict[str, str]:
        """The effective broker-level config of the live broker with the lowest id."""
        return config_values(await self._broker_entries())

    async def cluster_default_configs(self) -> dict[str, str]:
        """Cluster-wide dynamic broker defaults (`kafka-configs --entity-default`), as one broker sees
        them; a key that the broker also overrides for itself is not visible here."""
        return config_values(await self._broker_entries(), ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG)

    async def _broker_entries(self) -> dict[str, ConfigEntry]:
        cluster = await self.describe_cluster()
        if not cluster.brokers:
            raise KafkaUnavailable("describe_cluster: no live broker")
        resource = ConfigResource(ConfigResource.Type.BROKER, str(cluster.brokers[0].node_id))
        results = await self._call(
            "describe_configs",
            self._client.describe_configs,
            [resource],
            request_timeout=self._timeout,
        )
        entries = results[resource]
        if isinstance(entries, KafkaError):
            raise KafkaAdminError(f"describe_configs broker {resource.name}: {topic_error(entries)}")
        return dict(entries)

    async def _call(
        self, op: str, submit: Callable[..., Mapping[K, Future[Any]]], *args: Any, **kwargs: Any
    ) -> dict[K, Any]:
        """Make one admin request; map each key to its result or its KafkaError.

        Raises KafkaUnavailable when the request failed as a whole (librdkafka then fails every
        future with the same local error) or got no answer within the guard time.
        """
        start, outcome = time.monotonic(), "error"
        try:
            try:
                futures = submit(*args, **kwargs)
            except KafkaException as e:
                raise unavailable(op, e.args[0]) from None
            try:
                await asyncio.wait_for(all_done(futures.values()), self._guard)
            except TimeoutError:
                raise KafkaUnavailable(f"{op}: no answer within {self._guard:.0f}s") from None
            results: dict[K, Any] = {}
            for key, future in futures.items():
                error = future.exception()
                if error is None:
                    results[key] = future.result()
                elif isinstance(error, KafkaException) and isinstance(error.args[0], KafkaError):
                    if error.args[0].name() in UNAVAILABLE_CODES:
                        raise unavailable(op, error.args[0]) from None
                    results[key] = error.args[0]
                else:
                    raise error
            outcome = "ok"
            return results
        except KafkaUnavailable as unreachable:
            outcome = UNREACHABLE
            self._refresh_metadata()
            if self._admin is not None:
                self._admin.poll(0)
            if (
                self._auth_failure is not None
                and time.monotonic() - self._auth_failure[0] < AUTH_FAILURE_MEMORY_S
            ):
                raise KafkaAuthenticationFailed(
                    f"{unreachable}; authentication failed: {self._auth_failure[1]}"
                ) from None
            raise
        finally:
            self._finish(op, outcome, start)

    def _remember_error(self, error: KafkaError) -> None:
        """librdkafka's error callback: an authentication failure explains a later timeout."""
        if error.name() in ("_AUTHENTICATION", "_SSL"):
            self._auth_failure = (time.monotonic(), error.str())

    def _refresh_metadata(self) -> None:
        """Fetch fresh metadata in the background after a request found no one to talk to.

        librdkafka sends admin requests to the broker that the last metadata named controller (under
        KRaft, any live broker). If that broker dies, requests wait for it until the next periodic
        refresh (5 minutes by default); a metadata request names a live broker at once.
        """
        admin = self._admin
        if admin is None or not self._refreshing.acquire(blocking=False):
            return

        def refresh() -> None:
            try:
                admin.list_topics(timeout=self._timeout)
            except KafkaException:
                pass
            finally:
                self._refreshing.release()

        threading.Thread(target=refresh, name="kafka-metadata-refresh", daemon=True).start()

    def _finish(self, op: str, outcome: str, start: float) -> None:
        if self._admin is not None:
            self._admin.poll(0)
        if self._on_request is not None:
            self._on_request(op, outcome, time.monotonic() - start)


def unavailable(op: str, error: Any) -> KafkaAdminError:
    if isinstance(error, KafkaError):
        cls = KafkaUnavailable if error.name() in UNAVAILABLE_CODES else KafkaAdminError
        return cls(f"{op}: {error.name()}: {error.str()}")
    return KafkaAdminError(f"{op}: {error}")


def topic_errors(results: Mapping[str, Any]) -> dict[str, TopicError | None]:
    return {
        name: topic_error(value) if isinstance(value, KafkaError) else None for name, value in results.items()
    }


async def all_done(futures: Collection[Future[Any]]) -> None:
    """Wait, without blocking the loop, until every future is done (one loop wake-up in all)."""
    if not futures:
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    pending = len(futures)
    lock = threading.Lock()

    def wake() -> None:
        if not done.done():
            done.set_result(None)

    def on_done(_: Future[Any]) -> None:
        nonlocal pending
        with lock:
            pending -= 1
            if pending:
                return
        with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
            loop.call_soon_threadsafe(wake)

    for future in futures:
        future.add_done_callback(on_done)
    await done
