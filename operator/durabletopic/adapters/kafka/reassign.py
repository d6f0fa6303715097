"""What confluent-kafka's AdminClient lacks and kafka-python does: partition reassignment (KIP-455), the
eligible leader replicas of Kafka 4.x (KIP-966), a topic's configs read by key, and the sweep's reads
compared as bytes (`durabletopic.adapters.kafka.rawread`).

One long-lived kafka-python admin client, called from a worker thread so the event loop never
blocks. Everything else about Kafka goes through `durabletopic.adapters.kafka.admin`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from durabletopic.adapters.kafka.configmaps import ConfigMaps
from durabletopic.adapters.kafka.rawread import (
    ChunkAnswer,
    RawRequest,
    configs_digest,
    configs_request,
    decode_chunk,
    metadata_request,
)
from durabletopic.core.configs import MIN_INSYNC_REPLICAS
from durabletopic.core.model import PartitionMove
from durabletopic.loop.ports import ChunkRead, KafkaUnavailable

# librdkafka property -> kafka-python argument, for the connection settings the operator supports.
_CLIENT_SETTINGS = {
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.mechanisms": "sasl_mechanism",
    "sasl.username": "sasl_plain_username",
    "sasl.password": "sasl_plain_password",
    "ssl.ca.location": "ssl_cafile",
    "ssl.certificate.location": "ssl_certfile",
    "ssl.key.location": "ssl_keyfile",
    "ssl.key.password": "ssl_password",
}


# librdkafka's in-memory PEM properties -> the file properties kafka-python's settings are read from.
_PEM_FILES = {
    "ssl.ca.pem": "ssl.ca.location",
    "ssl.certificate.pem": "ssl.certificate.location",
    "ssl.key.pem": "ssl.key.location",
}


_CONFIGS_CHUNK = 1000
# The sweep's encoded requests kept, one pair per chunk of topics (a few chunks per 10,000 topics).
_KEPT_REQUESTS = 64

# kafka-python warns whenever decoding one response holds its network loop over 100 ms, which a
# DescribeConfigs of 1,000 topics does on a busy machine: a note about its own loop, nothing to act on.
logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)

_BOOTSTRAP_TIMEOUT_MS = 5000

V = TypeVar("V")

# kafka-python's errors for a broker that could not be reached at all: another one is tried.
_UNREACHED = frozenset({"KafkaConnectionError", "NoBrokersAvailable"})


def _keep_recent(kept: dict[Any, V], key: Any, value: V) -> V:
    """Stores `value` as the most recently used of `kept`, which holds at most _KEPT_REQUESTS."""
    kept[key] = value
    while len(kept) > _KEPT_REQUESTS:
        del kept[next(iter(kept))]
    return value


def kafka_python_settings(bootstrap_servers: str, client_config: Mapping[str, str]) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers.split(","),
        "client_id": "durabletopic",
    }
    for key, value in client_config.items():
        if key in _CLIENT_SETTINGS:
            settings[_CLIENT_SETTINGS[key]] = value
    return settings


class Reassigner:
    def __init__(
        self,
        bootstrap_servers: str,
        client_config: Mapping[str, str] | None = None,
        *,
        timeout_s: float = 10.0,
        on_request: Callable[[str, str, float], None] | None = None,
    ) -> None:
        self._on_request = on_request
        self._pem_dir: Path | None = None
        self._settings = kafka_python_settings(bootstrap_servers, self._pem_as_files(client_config or {}))
        self._settings["request_timeout_ms"] = int(timeout_s * 1000)
        # One server at a time (see _admin): one that is down is given up on quickly for the next.
        self._settings["bootstrap_timeout_ms"] = _BOOTSTRAP_TIMEOUT_MS
        self._timeout_ms = int(timeout_s * 1000)
        self._client: Any = None
        self._lock = threading.Lock()
        self._servers: list[str] = list(self._settings.pop("bootstrap_servers"))
        self._next_server = 0
        self._requests: dict[tuple[Any, ...], tuple[RawRequest, ...]] = {}
        # The signatures of the key mappings last read, by identity: a sweep reads the same chunks again.
        self._signatures: dict[int, tuple[Mapping[str, Collection[str] | None], tuple[Any, ...]]] = {}

    def _admin(self) -> Any:
        from kafka.admin import KafkaAdminClient

        with self._lock:
            if self._client is None:
                # One bootstrap server at a time: kafka-python gives up when the one it picks from a
                # list is down, so a broker that is down (when this client is most needed) is skipped
                # by trying the next one.
                server = self._servers[self._next_server % len(self._servers)]
                self._next_server += 1
                self._client = KafkaAdminClient(bootstrap_servers=[server], **self._settings)
            return self._client

    def _drop(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    async def _run(self, op: str, fn: Any, *, also: tuple[str, ...] = ()) -> Any:
        """`fn(admin)` in a worker thread; `op` (and the requests named in `also`, sent by the same call)
        counted with its outcome."""

        def call() -> Any:
            for attempt in range(len(self._servers)):
                try:
                    return fn(self._admin())
                except Exception as error:
                    self._drop()
                    unreached = type(error).__name__ in _UNREACHED or "Unable to bootstrap" in str(error)
                    if not unreached or attempt == len(self._servers) - 1:
                        raise KafkaUnavailable(f"{op}: {type(error).__name__}: {error}") from None
            raise AssertionError("unreachable")

        started, result = time.monotonic(), "unreachable"
        try:
            answer = await asyncio.to_thread(call)
            result = "ok"
            return answer
        finally:
            if self._on_request is not None:
                for name in (op, *also):
                    self._on_request(name, result, time.monotonic() - started)

    def _kept(
        self, signature: tuple[Any, ...], make: Callable[[], tuple[RawRequest, ...]]
    ) -> tuple[RawRequest, ...]:
        requests = self._requests.pop(signature, None) or make()
        return _keep_recent(self._requests, signature, requests)

    def _signature(self, keys: Mapping[str, Collection[str] | None]) -> tuple[Any, ...]:
        kept = self._signatures.pop(id(keys), None)
        if kept is None or kept[0] is not keys:
            kept = (keys, tuple((name, None if k is None else tuple(sorted(k))) for name, k in keys.items()))
        return _keep_recent(self._signatures, id(keys), kept)[1]  # holding `keys` keeps its id

    async def read_chunk(self, keys: Mapping[str, Collection[str] | None]) -> ChunkRead:
        """The sweep's read of a chunk: one Metadata and one DescribeConfigs request (the keys named for
        each topic, every config where None), sent together and kept as bytes. `keys` must not change
        after the call: its request is kept for the same mapping."""
        signature = self._signature(keys)
        metadata, configs = self._kept(
            ("chunk", signature), lambda: (metadata_request(list(keys)), configs_request(keys))
        )

        def send(admin: Any) -> Any:
            manager = admin._manager

            async def both() -> Any:
                # A request to a broker still connecting waits unbounded unless given a deadline.
                described = manager.wait_for(manager.send(metadata), self._timeout_ms)
                configured = manager.wait_for(manager.send(configs), self._timeout_ms)
                try:
                    first = await described
                except BaseException:
                    configured.close()
                    raise
                return first, await configured

            return manager.run(both)

        described, configured = await self._run("describe_topics", send, also=("describe_configs",))
        answer = ChunkAnswer(described, configured, frozenset(name for name, k in keys.items() if k is None))
        return ChunkRead(answer.digest, configs_digest(configured), lambda: decode_chunk(answer))

    async def configs_digest(self, names: Sequence[str]) -> bytes:
        """A digest of every config of these topics: one DescribeConfigs request, kept as bytes."""
        (request,) = self._kept(("configs", tuple(names)), lambda: (configs_request(dict.fromkeys(names)),))

        def send(admin: Any) -> Any:
            manager = admin._manager

            async def one() -> Any:
                return await manager.wait_for(manager.send(request), self._timeout_ms)

            return manager.run(one)

        return configs_digest(await self._run("describe_configs", send))

    async def ongoing(self) -> dict[str, dict[int, PartitionMove]]:
        """Every reassignment Kafka is running, by topic and partition: one request for the whole cluster."""

        def list_moves(admin: Any) -> Any:
            return admin.list_partition_reassignments(timeout_ms=self._timeout_ms)

        moves: dict[str, dict[int, PartitionMove]] = {}
        for tp, move in (await self._run("list_reassignments", list_moves)).items():
            moves.setdefault(tp.topic, {})[tp.partition] = PartitionMove(
                tuple(move["replicas"]), tuple(move["adding_replicas"]), tuple(move["removing_replicas"])
            )
        return moves

    async def reassign(
        self, assignments: Mapping[str, Mapping[int, tuple[int, ...]]]
    ) -> dict[str, str | None]:
        """Starts the moves; per topic, None when Kafka accepted every partition, else its error."""
        from kafka import TopicPartition

        request = {
            TopicPartition(topic, partition): list(replicas)
            for topic, partitions in assignments.items()
            for partition, replicas in partitions.items()
        }

        def alter(admin: Any) -> Any:
            return admin.alter_partition_reassignments(request, timeout_ms=self._timeout_ms)

        results: dict[str, str | None] = dict.fromkeys(assignments)
        for tp, error in (await self._run("alter_reassignments", alter)).items():
            if error is not None and results.get(tp.topic) is None:
                results[tp.topic] = f"partition {tp.partition}: {getattr(error, '__name__', error)}"
        return results

    async def eligible_leader_replicas(
        self, topics: Collection[str]
    ) -> dict[str, dict[int, tuple[int, ...]]]:
        """Kafka 4.x's eligible leader replicas (KIP-966) from DescribeTopicPartitions, which
        librdkafka does not send: per topic and partition, the partitions with none left out."""

        def describe(admin: Any) -> list[dict[str, Any]]:
            answered: list[dict[str, Any]] = []
            cursor = None
            while True:
                page = admin.describe_topic_partitions(sorted(topics), cursor=cursor)
                answered += page["topics"]
                cursor = page["next_cursor"]
                if cursor is None:
                    return answered

        found: dict[str, dict[int, tuple[int, ...]]] = {}
        for topic in await self._run("describe_topic_partitions", describe):
            for partition in topic["partitions"]:
                if partition["eligible_leader_replicas"]:
                    found.setdefault(topic["name"], {})[partition["partition_index"]] = tuple(
                        partition["eligible_leader_replicas"]
                    )
        return found

    async def topic_configs(
        self, keys: Mapping[str, Collection[str]]
    ) -> dict[str, tuple[dict[str, str], dict[str, str]] | None]:
        """Per topic, (overrides, effective) of only the keys named for it: DescribeConfigs with a key
        list, which librdkafka does not send (it reads every config of a topic, about 33, and builds a
        Python object for each). None for a topic Kafka gave no answer for (no such topic, an error)."""
        from kafka.admin import ConfigResource

        def describe(admin: Any) -> dict[str, dict[str, Any]]:
            answered: dict[str, dict[str, Any]] = {}
            names = list(keys)
            for start in range(0, len(names), _CONFIGS_CHUNK):
                resources = [
                    ConfigResource("TOPIC", name, configs=dict.fromkeys(keys[name]))
                    for name in names[start : start + _CONFIGS_CHUNK]
                ]
                answered.update(admin.describe_configs(resources, config_filter="all").get("topic", {}))
            return answered

        answered = await self._run("describe_configs", describe)
        out: dict[str, tuple[dict[str, str], dict[str, str]] | None] = {}
        for name in keys:
            entries = answered.get(name) or {}
            if MIN_INSYNC_REPLICAS not in entries:  # every topic has it: its absence is no answer
                out[name] = None
                continue
            maps = ConfigMaps()
            for key, entry in entries.items():
                maps.add(
                    key, entry.get("value"), override=entry.get("config_source") == "DYNAMIC_TOPIC_CONFIG"
                )
            out[name] = maps.done()
        return out

    def _pem_as_files(self, client_config: Mapping[str, str]) -> dict[str, str]:
        """kafka-python reads certificates from files only: PEM text (`ssl.*.pem`, as a KafkaCluster's
        Secrets give it) goes to files of a private directory, removed by `close`."""
        config = dict(client_config)
        for key in [k for k in config if k in _PEM_FILES]:
            if self._pem_dir is None:
                self._pem_dir = Path(tempfile.mkdtemp(prefix="durabletopic-"))
            path = self._pem_dir / key
            path.touch(mode=0o600)
            path.write_text(config.pop(key))
            config[_PEM_FILES[key]] = str(path)
        return config

    def close(self) -> None:
        self._drop()
        if self._pem_dir is not None:
            shutil.rmtree(self._pem_dir, ignore_errors=True)
            self._pem_dir = None
