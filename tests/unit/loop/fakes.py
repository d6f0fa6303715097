"""In-memory ports for the loop's unit tests: a Kafka cluster, the API server's writes, a lease.

They keep just enough state to answer like the real ones (topic ids, replicas, config overrides and
their sources; status, finalizers and events per object), and let a test inject the failures the
loop must survive. They stand in for Kafka and Kubernetes only in these unit tests of the loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from durabletopic.core.configs import MIN_INSYNC_REPLICAS, UNCLEAN_LEADER_ELECTION
from durabletopic.core.health import ReplicaHealth
from durabletopic.core.model import (
    Broker,
    ClusterInfo,
    ObjectRef,
    ObservedTopic,
    PartitionMove,
    PartitionState,
    TopicError,
)
from durabletopic.core.plan import CreateTopic
from durabletopic.loop.ports import ApiError, ChunkRead, KafkaUnavailable, TopicReads
from durabletopic.loop.store import DurableTopicObject

BROKER_DEFAULTS = {MIN_INSYNC_REPLICAS: "1", UNCLEAN_LEADER_ELECTION: "false", "retention.ms": "604800000"}
_ids = itertools.count(1)


@dataclass
class FakeTopic:
    topic_id: str
    replicas: list[tuple[int, ...]]
    overrides: dict[str, str] = field(default_factory=dict)
    out_of_sync: set[int] = field(default_factory=set)  # replicas in no partition's ISR
    eligible: set[int] = field(default_factory=set)  # out-of-sync replicas Kafka 4.x keeps electable

    def observed(self, name: str, overrides: dict[str, str] | None = None) -> ObservedTopic:
        partitions = tuple(
            PartitionState(
                number, replicas[0], replicas, tuple(r for r in replicas if r not in self.out_of_sync)
            )
            for number, replicas in enumerate(self.replicas)
        )
        configs = dict(self.overrides if overrides is None else overrides)
        return ObservedTopic(name, self.topic_id, partitions, configs, {**BROKER_DEFAULTS, **configs})


class FakeKafka:
    """A three-broker cluster on racks r1..r3 that does what it is asked, unless told to fail."""

    def __init__(self, brokers: int = 3) -> None:
        self.brokers = tuple(Broker(i, f"r{i}") for i in range(1, brokers + 1))
        self.topics: dict[str, FakeTopic] = {}
        self.broker_configs_set: dict[int, dict[str, str]] = {}
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.unavailable = False
        self.refuse: dict[str, TopicError] = {}  # topic -> the error Kafka answers to any change of it
        self.hidden_after_create = 0  # passes of describe for which a new topic is not yet visible
        self._hidden: dict[str, int] = {}
        self.gate: asyncio.Event | None = None  # when set, every call waits for the gate to open
        self.cluster_id = "cluster-a"
        self.unreadable: dict[str, TopicError] = {}  # topic -> the error Kafka answers when it is read
        self.unanswered: set[str] = set()  # topics whose part of a read gets no answer
        self.read_lag = 0  # reads after a config change that still show the old configs
        self._stale: dict[str, tuple[dict[str, str], int]] = {}

    def add_topic(
        self, name: str, partitions: int = 3, rf: int = 3, overrides: dict[str, str] | None = None
    ) -> str:
        topic_id = f"id-{next(_ids)}"
        replicas = [tuple(self._replicas(p, rf)) for p in range(partitions)]
        self.topics[name] = FakeTopic(topic_id, replicas, dict(overrides or {}))
        return topic_id

    def _replicas(self, partition: int, rf: int) -> list[int]:
        ids = [b.node_id for b in self.brokers]
        return [ids[(partition + i) % len(ids)] for i in range(rf)]

    def count(self, op: str) -> int:
        return sum(1 for name, _ in self.calls if name == op)

    async def _call(self, op: str, names: Collection[str] = ()) -> None:
        self.calls.append((op, tuple(sorted(names))))
        if self.gate is not None:
            await self.gate.wait()
        if self.unavailable:
            raise KafkaUnavailable(f"{op}: _TRANSPORT: no broker answered")

    async def describe_cluster(self) -> ClusterInfo:
        await self._call("describe_cluster")
        controller = self.brokers[0].node_id if self.brokers else None
        return ClusterInfo(self.brokers, controller_id=controller, cluster_id=self.cluster_id)

    async def describe_topics(self, names: Collection[str]) -> dict[str, ObservedTopic | None]:
        return (await self.read_topics(names)).observed

    async def read_topics(
        self, names: Collection[str], configs_of: Collection[str] | None = None
    ) -> TopicReads:
        await self._call("describe_topics", names)
        if configs_of is None or set(configs_of) & set(names):
            self.calls.append(("describe_configs", tuple(sorted(set(configs_of or names) & set(names)))))
        reads = TopicReads()
        for name in names:
            if name in self.unanswered:
                reads.unanswered[name] = "Kafka cannot be reached (_TIMED_OUT)"
            elif name in self.unreadable:
                reads.errors[name] = self.unreadable[name]
            elif self._hidden.get(name, 0) > 0:
                self._hidden[name] -= 1
                reads.observed[name] = None
            else:
                topic = self.topics.get(name)
                if topic is None:
                    reads.observed[name] = None
                elif configs_of is None or name in configs_of:
                    reads.observed[name] = topic.observed(name, self._stale_overrides(name))
                else:
                    observed = topic.observed(name)
                    reads.observed[name] = dataclasses.replace(
                        observed, overrides={}, effective={}, configs_complete=False
                    )
        if names and len(reads.unanswered) == len(names):
            raise KafkaUnavailable("describe_topics: _TIMED_OUT: no answer")
        return reads

    def _stale_overrides(self, name: str) -> dict[str, str] | None:
        stale = self._stale.get(name)
        if stale is None:
            return None
        overrides, reads = stale
        if reads <= 1:
            del self._stale[name]
        else:
            self._stale[name] = (overrides, reads - 1)
        return overrides

    async def list_topics(self) -> set[str]:
        await self._call("list_topics")
        return set(self.topics)

    async def broker_configs(self) -> dict[str, str]:
        await self._call("broker_configs")
        return dict(BROKER_DEFAULTS)

    async def create_topics(self, topics: Sequence[CreateTopic]) -> dict[str, TopicError | None]:
        await self._call("create_topics", [t.name for t in topics])
        out: dict[str, TopicError | None] = {}
        for t in topics:
            if t.name in self.refuse:
                out[t.name] = self.refuse[t.name]
            elif t.name in self.topics:
                out[t.name] = TopicError("TOPIC_ALREADY_EXISTS", f"Topic '{t.name}' already exists.", False)
            else:
                self.add_topic(t.name, t.partitions, t.replication_factor, dict(t.configs))
                self._hidden[t.name] = self.hidden_after_create
                out[t.name] = None
        return out

    async def create_partitions(self, requests: Mapping[str, int]) -> dict[str, TopicError | None]:
        await self._call("create_partitions", requests)
        out: dict[str, TopicError | None] = {}
        for name, total in requests.items():
            topic = self.topics[name]
            rf = len(topic.replicas[0])
            topic.replicas += [tuple(self._replicas(p, rf)) for p in range(len(topic.replicas), total)]
            out[name] = None
        return out

    async def alter_configs(
        self, requests: Mapping[str, Mapping[str, str | None]]
    ) -> dict[str, TopicError | None]:
        await self._call("alter_configs", requests)
        out: dict[str, TopicError | None] = {}
        for name, changes in requests.items():
            if name in self.refuse:
                out[name] = self.refuse[name]
                continue
            topic = self.topics.get(name)
            if topic is None:
                out[name] = TopicError("UNKNOWN_TOPIC_OR_PART", "unknown topic", False)
                continue
            if self.read_lag:
                self._stale[name] = (dict(topic.overrides), self.read_lag)
            for key, value in changes.items():
                if value is None:
                    topic.overrides.pop(key, None)
                else:
                    topic.overrides[key] = value
            out[name] = None
        return out

    async def alter_broker_configs(
        self, changes: Mapping[int, Mapping[str, str | None]]
    ) -> dict[int, TopicError | None]:
        await self._call("alter_broker_configs")
        for broker, entries in changes.items():
            configs = self.broker_configs_set.setdefault(broker, {})
            for key, value in entries.items():
                if value is None:
                    configs.pop(key, None)
                else:
                    configs[key] = value
        return dict.fromkeys(changes)

    async def delete_topics(self, names: Collection[str]) -> dict[str, TopicError | None]:
        await self._call("delete_topics", names)
        out: dict[str, TopicError | None] = {}
        for name in names:
            if self.topics.pop(name, None) is None:
                out[name] = TopicError("UNKNOWN_TOPIC_OR_PART", "unknown topic", False)
            else:
                out[name] = None
        return out


class FakeReassigner:
    """Kafka's reassignments: while a move runs, the new replicas are in the replica list but not in
    the ISR (as Kafka shows them); `finish()` completes every move, `fail` makes the client fail."""

    def __init__(self, kafka: FakeKafka) -> None:
        self.kafka = kafka
        self.targets: dict[str, dict[int, tuple[int, ...]]] = {}
        self.original: dict[str, dict[int, tuple[int, ...]]] = {}
        self.fail = False
        self.started = 0
        self.elr_reads: list[tuple[str, ...]] = []
        self.config_reads: list[tuple[str, ...]] = []
        self.chunk_reads: list[tuple[str, ...]] = []
        self.configs_digests = 0

    @property
    def moves(self) -> dict[str, dict[int, tuple[int, ...]]]:
        return self.targets

    async def topic_configs(
        self, keys: Mapping[str, Collection[str]]
    ) -> dict[str, tuple[dict[str, str], dict[str, str]] | None]:
        self.config_reads.append(tuple(sorted(keys)))
        if self.fail:
            raise KafkaUnavailable("describe_configs: NoBrokersAvailable")
        out: dict[str, tuple[dict[str, str], dict[str, str]] | None] = {}
        for name, wanted in keys.items():
            topic = self.kafka.topics.get(name)
            if topic is None:
                out[name] = None
                continue
            observed = topic.observed(name, self.kafka._stale_overrides(name))
            out[name] = (
                {k: v for k, v in observed.overrides.items() if k in wanted},
                {k: v for k, v in observed.effective.items() if k in wanted},
            )
        return out

    async def read_chunk(self, keys: Mapping[str, Collection[str] | None]) -> ChunkRead:
        """Kafka's answer as it would be: the same digest while nothing in it changes."""
        self.chunk_reads.append(tuple(keys))
        if self.fail:
            raise KafkaUnavailable("describe_topics: NoBrokersAvailable")
        observed: dict[str, ObservedTopic | None] = {}
        for name, wanted in keys.items():
            topic = self.kafka.topics.get(name)
            if topic is None:
                observed[name] = None
                continue
            full = topic.observed(name, self.kafka._stale_overrides(name))
            observed[name] = (
                full
                if wanted is None
                else dataclasses.replace(
                    full,
                    overrides={k: v for k, v in full.overrides.items() if k in wanted},
                    effective={k: v for k, v in full.effective.items() if k in wanted},
                    configs_complete=False,
                )
            )
        cluster = ClusterInfo(
            self.kafka.brokers, controller_id=len(self.chunk_reads) % 3 + 1, cluster_id=self.kafka.cluster_id
        )
        configs = {n: (t.overrides, t.effective) for n, t in observed.items() if t is not None}
        digest = hashlib.sha256(repr((sorted(observed.items()), cluster.brokers)).encode()).digest()
        configs_digest = hashlib.sha256(repr(sorted(configs.items())).encode()).digest()
        reads = TopicReads(observed=observed)
        return ChunkRead(digest, configs_digest, lambda: (reads, cluster))

    async def configs_digest(self, names: Sequence[str]) -> bytes:
        self.configs_digests += 1
        digest = (await self.read_chunk(dict.fromkeys(names))).configs_digest
        self.chunk_reads.pop()  # one DescribeConfigs, not a chunk read
        return digest

    async def eligible_leader_replicas(
        self, topics: Collection[str]
    ) -> dict[str, dict[int, tuple[int, ...]]]:
        self.elr_reads.append(tuple(sorted(topics)))
        if self.fail:
            raise KafkaUnavailable("describe_topic_partitions: NoBrokersAvailable")
        found: dict[str, dict[int, tuple[int, ...]]] = {}
        for name in topics:
            topic = self.kafka.topics.get(name)
            if topic is not None and topic.eligible:
                found[name] = {
                    p: tuple(r for r in replicas if r in topic.eligible)
                    for p, replicas in enumerate(topic.replicas)
                }
        return found

    async def ongoing(self) -> dict[str, dict[int, PartitionMove]]:
        if self.fail:
            raise KafkaUnavailable("list_reassignments: NoBrokersAvailable")
        out: dict[str, dict[int, PartitionMove]] = {}
        for topic, partitions in self.targets.items():
            out[topic] = {}
            for p, target in partitions.items():
                before = self.original[topic][p]
                out[topic][p] = PartitionMove(
                    tuple(dict.fromkeys(before + target)),
                    tuple(r for r in target if r not in before),
                    tuple(r for r in before if r not in target),
                )
        return out

    async def reassign(
        self, assignments: Mapping[str, Mapping[int, tuple[int, ...]]]
    ) -> dict[str, str | None]:
        if self.fail:
            raise KafkaUnavailable("alter_reassignments: NoBrokersAvailable")
        self.started += 1
        for topic, partitions in assignments.items():
            fake = self.kafka.topics[topic]
            for p, target in partitions.items():
                before = fake.replicas[p]
                self.original.setdefault(topic, {})[p] = before
                self.targets.setdefault(topic, {})[p] = target
                adding = tuple(r for r in target if r not in before)
                fake.replicas[p] = before + adding
                fake.out_of_sync |= set(adding)
        return dict.fromkeys(assignments)

    def finish(self) -> None:
        for topic, partitions in self.targets.items():
            fake = self.kafka.topics[topic]
            for p, target in partitions.items():
                fake.replicas[p] = target
            fake.out_of_sync.clear()
        self.targets.clear()
        self.original.clear()


class FakeKube:
    """The API server's side of the loop's requests: the objects that exist, and what was written."""

    def __init__(self) -> None:
        self.objects: dict[ObjectRef, dict[str, Any]] = {}
        self.statuses: dict[ObjectRef, dict[str, Any]] = {}
        self.status_writes: list[ObjectRef] = []
        self.finalizers: dict[ObjectRef, list[str]] = {}
        self.events: list[tuple[ObjectRef, str, str, str]] = []
        self.profiles: list[ObjectRef] = []
        self.fail_status: dict[ObjectRef, list[int]] = {}  # HTTP codes the next status writes answer
        self.writes_allowed = True
        self.policies: dict[str, dict[str, Any]] = {}
        self.policy_statuses: dict[str, dict[str, Any]] = {}
        self.namespaces: dict[str, dict[str, str]] = {}
        self.clusters: dict[str, dict[str, Any]] = {}
        self.cluster_statuses: dict[str, dict[str, Any]] = {}
        self.sources: dict[tuple[str, str, str], dict[str, str]] = {}  # (kind, namespace, name) -> data

    async def list_clusters(self) -> list[dict[str, Any]]:
        return [
            {**body, "status": dict(self.cluster_statuses.get(name, {}))}
            for name, body in self.clusters.items()
        ]

    async def read_source(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        found = self.sources.get((kind, namespace, name))
        return dict(found) if found is not None else None

    async def write_cluster_status(
        self, name: str, status: Mapping[str, Any], previous: Mapping[str, Any]
    ) -> None:
        if name not in self.clusters:
            raise ApiError(404, "NotFound", f"kafkaclusters {name} not found")
        self.cluster_statuses[name] = dict(status)

    async def list_policies(self) -> list[dict[str, Any]]:
        return [
            {**body, "status": dict(self.policy_statuses.get(name, {}))}
            for name, body in self.policies.items()
        ]

    async def list_namespaces(self) -> list[dict[str, Any]]:
        return [
            {"metadata": {"name": name, "labels": dict(labels)}} for name, labels in self.namespaces.items()
        ]

    async def write_policy_status(
        self, name: str, status: Mapping[str, Any], previous: Mapping[str, Any]
    ) -> None:
        if name not in self.policies:
            raise ApiError(404, "NotFound", f"durabilitypolicies {name} not found")
        self.policy_statuses[name] = dict(status)

    async def list_durabletopics(self) -> list[dict[str, Any]]:
        return [
            {**body, "status": dict(self.statuses.get(ref, body.get("status") or {}))}
            for ref, body in self.objects.items()
        ]

    async def write_status(
        self, obj: DurableTopicObject, status: Mapping[str, Any], previous: Mapping[str, Any]
    ) -> None:
        assert self.writes_allowed, f"status of {obj.ref} written while writes are not allowed"
        failures = self.fail_status.get(obj.ref)
        if failures:
            raise ApiError(failures.pop(0), "Fail", "injected")
        if obj.ref not in self.objects:
            raise ApiError(404, "NotFound", f"durabletopics {obj.ref.name} not found")
        self.status_writes.append(obj.ref)
        self.statuses[obj.ref] = dict(status)

    async def set_finalizers(self, obj: DurableTopicObject, finalizers: Sequence[str]) -> None:
        self.finalizers[obj.ref] = list(finalizers)

    async def post_event(self, obj: DurableTopicObject, event_type: str, reason: str, message: str) -> None:
        self.events.append((obj.ref, str(event_type), str(reason), message))

    async def apply_client_profile(self, obj: DurableTopicObject) -> None:
        self.profiles.append(obj.ref)

    def reasons(self, ref: ObjectRef) -> list[str]:
        return [reason for r, _, reason, _ in self.events if r == ref]

    def condition(self, ref: ObjectRef, kind: str) -> tuple[str, str] | None:
        for condition in self.statuses.get(ref, {}).get("conditions") or []:
            if condition["type"] == kind:
                return condition["status"], condition["reason"]
        return None


class RecordingMetrics:
    def __init__(self) -> None:
        self.passes: list[tuple[str, int]] = []
        self.sweeps: list[float] = []
        self.drift_counts: list[tuple[str, str, str]] = []
        self.health: dict[ObjectRef, ReplicaHealth] = {}
        self.drift: dict[ObjectRef, list[tuple[str, str]]] = {}
        self.resources: dict[str, int] = {}
        self.leading: list[bool] = []
        self.forgotten: list[ObjectRef] = []
        self.policy_governed: dict[str, tuple[int, int]] = {}
        self.audits: dict[str, dict[tuple[str, str], int]] = {}
        self.policy_violations: dict[tuple[str, str], int] = {}

    def record_pass(self, result: str, objects: int, seconds: float) -> None:
        self.passes.append((result, objects))

    def record_sweep(self, seconds: float) -> None:
        self.sweeps.append(seconds)

    def count_drift(self, ref: ObjectRef, topic: str, key: str, severity: str, action: str) -> None:
        self.drift_counts.append((key, severity, action))

    def set_health(self, ref: ObjectRef, topic: str, health: ReplicaHealth, cluster: str = "default") -> None:
        self.health[ref] = health

    def set_drift(self, ref: ObjectRef, topic: str, keys: Collection[tuple[str, str]]) -> None:
        self.drift[ref] = list(keys)

    def forget(self, ref: ObjectRef) -> None:
        self.forgotten.append(ref)

    def set_resources(self, counts: Mapping[str, int]) -> None:
        self.resources = dict(counts)

    def set_leader(self, leading: bool) -> None:
        self.leading.append(leading)
        if not leading:
            self.health.clear()
            self.drift.clear()

    def set_audit(self, counts: Mapping[tuple[str, str], int], cluster: str = "default") -> None:
        self.audits[cluster] = dict(counts)

    def forget_cluster(self, cluster: str) -> None:
        self.audits.pop(cluster, None)

    def set_policies(
        self, governed: Mapping[str, tuple[int, int]], violations: Mapping[tuple[str, str], int]
    ) -> None:
        self.policy_governed = dict(governed)
        self.policy_violations = dict(violations)


class FakeLease:
    """Leadership the test hands out and takes away."""

    def __init__(self) -> None:
        self.granted = asyncio.Event()
        self.lost = asyncio.Event()
        self.acquired = 0

    async def acquire(self) -> None:
        await self.granted.wait()
        self.acquired += 1
        self.lost.clear()

    async def hold(self) -> None:
        await self.lost.wait()

    async def release(self) -> None:
        pass

    def take_away(self) -> None:
        self.granted.clear()
        self.lost.set()


def body(
    name: str,
    spec: Mapping[str, Any] | None = None,
    *,
    namespace: str = "team",
    generation: int = 1,
    created: str = "2026-11-28T10:00:00Z",
    uid: str | None = None,
    finalizers: Sequence[str] = (),
    deleting: bool = False,
    annotations: Mapping[str, str] | None = None,
    status: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A DurableTopic as a watch event carries it."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": uid or f"uid-{namespace}-{name}",
        "generation": generation,
        "creationTimestamp": created,
        "resourceVersion": str(next(_ids)),
        "finalizers": list(finalizers),
        "annotations": dict(annotations or {}),
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-11-28T12:00:00Z"
    return {"metadata": metadata, "spec": dict(spec or {"partitions": 3}), "status": dict(status or {})}


class FakeConnector:
    """Clients for the clusters a test declares: bootstrap servers -> a FakeKafka."""

    def __init__(self, clusters: Mapping[str, FakeKafka]) -> None:
        self.clusters = dict(clusters)
        self.made: list[tuple[str, str, dict[str, str]]] = []
        self.closed = 0

    def connect(
        self, cluster: str, bootstrap_servers: str, properties: Mapping[str, str]
    ) -> tuple[FakeKafka, FakeReassigner]:
        self.made.append((cluster, bootstrap_servers, dict(properties)))
        kafka = self.clusters[bootstrap_servers]
        return kafka, FakeReassigner(kafka)

    def close(self, kafka: Any, reassigner: Any) -> None:
        self.closed += 1
