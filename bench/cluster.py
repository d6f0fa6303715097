"""The test bed as the benchmarks use it: DurableTopics created and deleted from many threads, Kafka topics created, read and weakened in batches."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)
from kubernetes import client, config
from tests.testbed import Testbed

from bench.results import THREADS, say
from durabletopic.core import crd

ROOT = Path(__file__).resolve().parents[1]


KAFKA_CHUNK = 1000


PARTITIONS = 1


REPLICATION_FACTOR = 3


MIN_INSYNC_REPLICAS = 2


# What every benchmark topic must carry as its own configs, whoever created it.
TOPIC_CONFIGS: Mapping[str, str] = {
    "min.insync.replicas": str(MIN_INSYNC_REPLICAS),
    "unclean.leader.election.enable": "false",
}


SPEC: Mapping[str, Any] = {
    "partitions": PARTITIONS,
    "replicationFactor": REPLICATION_FACTOR,
    "minInSyncReplicas": MIN_INSYNC_REPLICAS,
}


T = TypeVar("T")


def object_names(prefix: str, n: int) -> list[str]:
    """Names valid both as a Kubernetes object name and as a Kafka topic name."""
    return [f"{prefix}-{i:05d}" for i in range(n)]


def chunked(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def testbed_up() -> Testbed:
    """The test bed of DURABLETOPIC_TESTBED_DIR / _PORT_BASE, started or reused, with the CRDs installed."""
    bed = Testbed()
    began = time.monotonic()
    started = bed.up()
    say(
        f"test bed {'started' if started else 'reused'} in {time.monotonic() - began:.1f} s ({bed.state_dir})"
    )
    bed.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    # Every CRD of crds/: the operator watches them all from its start.
    bed.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(ROOT / "crds"))
    return bed


class Bench:
    """The benchmark's own clients of the test bed: Kubernetes (admin) and Kafka."""

    def __init__(self, bed: Testbed, threads: int = THREADS) -> None:
        self.bed = bed
        self.threads = threads
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(bed.kubeconfig), client_configuration=configuration
        )
        configuration.connection_pool_maxsize = threads + 4
        self.api_client = client.ApiClient(configuration)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.admin = AdminClient(bed.kafka_config())

    # ----- Kubernetes

    def create_namespace(self, name: str) -> None:
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))

    def delete_namespace(self, name: str, wait_seconds: float = 600.0) -> float:
        """Deletes the namespace (and so its objects) and waits until it is gone; returns the seconds."""
        began = time.monotonic()
        try:
            self.core.delete_namespace(name)
        except client.ApiException as error:
            if error.status != 404:
                raise
            return 0.0
        deadline = began + wait_seconds
        while time.monotonic() < deadline:
            try:
                self.core.read_namespace(name)
            except client.ApiException as error:
                if error.status == 404:
                    return time.monotonic() - began
                raise
            time.sleep(1.0)
        say(f"namespace {name} still terminating after {wait_seconds:.0f} s")
        return time.monotonic() - began

    def create_objects(
        self,
        namespace: str,
        names: Sequence[str],
        spec: Mapping[str, Any] = SPEC,
        annotations: Mapping[str, str] | None = None,
    ) -> dict[str, float]:
        """Creates one DurableTopic per name from `threads` threads; returns each one's send time (monotonic)."""

        def create(name: str) -> tuple[str, float]:
            body = {
                "apiVersion": crd.API_VERSION,
                "kind": crd.KIND,
                "metadata": {"name": name, "namespace": namespace, "annotations": dict(annotations or {})},
                "spec": dict(spec),
            }
            sent = time.monotonic()
            self.custom.create_namespaced_custom_object(crd.GROUP, crd.VERSION, namespace, crd.PLURAL, body)
            return name, sent

        with ThreadPoolExecutor(self.threads, thread_name_prefix="create") as pool:
            return dict(pool.map(create, names))

    def patch_statuses(self, namespace: str, names: Sequence[str], status_for: Callable[[str], Any]) -> None:
        """One merge patch of the status subresource per object, from `threads` threads."""

        def patch(name: str) -> None:
            self.custom.patch_namespaced_custom_object_status(
                crd.GROUP,
                crd.VERSION,
                namespace,
                crd.PLURAL,
                name,
                {"status": status_for(name)},
                _content_type="application/merge-patch+json",
            )

        with ThreadPoolExecutor(self.threads, thread_name_prefix="patch") as pool:
            for _ in pool.map(patch, names):
                pass

    # ----- Kafka

    def create_topics(self, names: Sequence[str]) -> int:
        """Creates the topics (RF 3, min ISR 2, unclean election off) in batched CreateTopics requests of
        1,000 topics, all sent at once; returns the number of requests. Raises on any failure."""
        futures: dict[str, Future[Any]] = {}
        requests = 0
        for chunk in chunked(names, KAFKA_CHUNK):
            new = [
                NewTopic(name, PARTITIONS, REPLICATION_FACTOR, config=dict(TOPIC_CONFIGS)) for name in chunk
            ]
            futures.update(self.admin.create_topics(new, operation_timeout=120, request_timeout=120))
            requests += 1
        failures = _failures(futures, 150)
        if failures:
            first = next(iter(failures.items()))
            raise RuntimeError(f"create_topics: {len(failures)} topic(s) failed, first {first}")
        return requests

    def kafka_topic_names(self) -> set[str]:
        return set(self.admin.list_topics(timeout=30).topics)

    def delete_topics(self, names: Sequence[str]) -> int:
        """Deletes the topics in batched DeleteTopics requests; returns how many failed (absent ones do not)."""
        failed = 0
        for chunk in chunked(names, KAFKA_CHUNK):
            futures = self.admin.delete_topics(chunk, operation_timeout=120, request_timeout=120)
            for error in _failures(futures, 150).values():
                if "UNKNOWN_TOPIC" not in error:
                    failed += 1
        return failed

    def wait_topics_gone(self, names: Sequence[str], timeout: float = 600.0) -> float:
        """Waits until Kafka's metadata lists none of these topics (a deletion goes on after DeleteTopics
        answers); returns the seconds waited."""
        started = time.monotonic()
        wanted = set(names)
        while time.monotonic() - started < timeout:
            if not wanted & set(self.admin.list_topics(timeout=30).topics):
                break
            time.sleep(1.0)
        return time.monotonic() - started

    def wait_logs_removed(self, names: Sequence[str], timeout: float = 600.0) -> float:
        """Waits until no broker's log directory holds a partition of these topics; returns the seconds
        waited. A broker renames a deleted partition's directory and removes it only after
        file.delete.delay.ms (60 s by default): thousands of removals would load the next run."""
        started = time.monotonic()
        wanted = set(names)
        while time.monotonic() - started < timeout:
            if not any(
                partition_topic(entry.name) in wanted
                for broker in self.bed.layout.data_dir.glob("broker-*")
                for entry in os.scandir(broker)
            ):
                break
            time.sleep(1.0)
        return time.monotonic() - started

    def topic_configs(
        self, names: Sequence[str], keys: Iterable[str] = TOPIC_CONFIGS
    ) -> dict[str, dict[str, str]]:
        """The named config values of each topic, read with batched DescribeConfigs (1,000 topics each)."""
        wanted = set(keys)
        out: dict[str, dict[str, str]] = {}
        for chunk in chunked(names, KAFKA_CHUNK):
            resources = [ConfigResource(ResourceType.TOPIC, name) for name in chunk]
            futures = self.admin.describe_configs(resources, request_timeout=60)
            for resource, future in futures.items():
                try:
                    entries = future.result(timeout=90)
                except KafkaException:
                    continue
                out[resource.name] = {k: e.value for k, e in entries.items() if k in wanted}
        return out

    def verify_topics(self, names: Sequence[str]) -> dict[str, Any]:
        """Checks in Kafka that every topic exists with 1 partition, RF 3, min ISR 2 and unclean election
        off, and that every partition has at least min ISR replicas in sync (a topic with fewer accepts
        no write with acks=all); counts the topics with a replica out of sync. Batched DescribeTopics and
        DescribeConfigs, 1,000 topics per request."""
        began = time.monotonic()
        problems: dict[str, str] = {}
        under_replicated = 0
        configs = self.topic_configs(names)
        for chunk in chunked(names, KAFKA_CHUNK):
            futures = self.admin.describe_topics(TopicCollection(chunk), request_timeout=60)
            for name, future in futures.items():
                try:
                    description = future.result(timeout=90)
                except KafkaException as error:
                    problems[name] = f"describe_topics: {error.args[0].name()}"
                    continue
                problem = layout_problem(description.partitions)
                if problem is not None:
                    problems[name] = problem
                under_replicated += any(len(p.isr) < len(p.replicas) for p in description.partitions)
        for name in names:
            seen = configs.get(name)
            if seen is None:
                problems.setdefault(name, "describe_configs failed")
            elif seen != dict(TOPIC_CONFIGS):
                problems.setdefault(name, f"configs {seen}")
        return {
            "checked": len(names),
            "ok": len(names) - len(problems),
            "under_replicated": under_replicated,
            "problems": dict(sorted(problems.items())[:20]),
            "seconds": round(time.monotonic() - began, 3),
        }

    def weaken(self, names: Sequence[str], key: str = "min.insync.replicas", value: str = "1") -> None:
        """Out of band: one incremental alter (SET key=value) of the named topics."""
        resources = [
            ConfigResource(
                ResourceType.TOPIC,
                name,
                incremental_configs=[ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)],
            )
            for name in names
        ]
        failures = _failures(self.admin.incremental_alter_configs(resources, request_timeout=30), 40)
        if failures:
            raise RuntimeError(f"incremental_alter_configs failed: {failures}")


def layout_problem(partitions: Sequence[Any]) -> str | None:
    """What is wrong with a benchmark topic's partitions as described: their number, their replicas, or
    fewer replicas in sync than min.insync.replicas; None when nothing is."""
    replicas = {len(p.replicas) for p in partitions}
    if len(partitions) != PARTITIONS or replicas != {REPLICATION_FACTOR}:
        return f"{len(partitions)} partitions, replicas {sorted(replicas)}"
    in_sync = min(len(p.isr) for p in partitions)
    if in_sync < MIN_INSYNC_REPLICAS:
        return f"{in_sync} replica(s) in sync, fewer than min.insync.replicas={MIN_INSYNC_REPLICAS}"
    return None


def _failures(futures: Mapping[Any, Future[Any]], timeout: float) -> dict[str, str]:
    """Waits for every future; the error name of each one that failed, by topic name."""
    failures: dict[str, str] = {}
    for key, future in futures.items():
        name = getattr(key, "name", key)
        try:
            future.result(timeout=timeout)
        except KafkaException as error:
            failures[str(name)] = str(error.args[0].name())
    return failures


# From this many deleted topics on, the cleanup also waits for the brokers to remove their log
# directories (60 s after the deletion with Kafka's defaults); a few hundred removals load nothing.
WAIT_LOG_REMOVAL_FROM = 1000


def partition_topic(directory: str) -> str:
    """The topic of a partition's log directory: `orders-0`, or `orders-0.<id>-delete` once deleted."""
    if directory.endswith("-delete"):
        directory = directory.rsplit(".", 1)[0]
    return directory.rsplit("-", 1)[0]


def cleanup(bench: Bench, namespace: str, names: Sequence[str]) -> None:
    say(f"cleanup: deleting namespace {namespace} and {len(names)} topics")
    took = bench.delete_namespace(namespace)
    failed = bench.delete_topics(names)
    gone = bench.wait_topics_gone(names)
    removed = bench.wait_logs_removed(names) if len(names) >= WAIT_LOG_REMOVAL_FROM else 0.0
    say(
        f"cleanup done (namespace gone in {took:.1f} s, {failed} topic deletions failed, "
        f"topics gone from Kafka's metadata {gone:.1f} s after, their log directories {removed:.1f} s after that)"
    )
