"""What the loop needs of the outside world, as protocols, and the errors they raise.

The adapters implement these against confluent-kafka, kafka-python, the Kubernetes API server and
Prometheus; the loop's unit tests implement them in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from durabletopic.core.health import ReplicaHealth
from durabletopic.core.model import ClusterInfo, ObjectRef, ObservedTopic, PartitionMove, TopicError
from durabletopic.core.plan import CreateTopic

if TYPE_CHECKING:
    from durabletopic.loop.store import DurableTopicObject


class KafkaAdminError(Exception):
    """A Kafka admin call failed as a whole; `errors` names the topics behind it, if any."""

    def __init__(self, message: str, errors: Mapping[str, TopicError] | None = None) -> None:
        super().__init__(message)
        self.errors: dict[str, TopicError] = dict(errors or {})


class KafkaUnavailable(KafkaAdminError):
    """The cluster did not answer (unreachable, transport failure, timeout): retry with backoff."""


class KafkaAuthenticationFailed(KafkaUnavailable):
    """No broker answered, and the client's authentication was refused."""


class ApiError(Exception):
    """The Kubernetes API server refused a request (`status` 0: it could not be reached)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason


ConfigChanges = Mapping[str, str | None]


@dataclass(frozen=True)
class TopicReads:
    """A batched read of topics: what Kafka has for each one it answered (None: no such topic), and
    for the others why not: Kafka's error for that topic, or a part of the read that got no answer."""

    observed: dict[str, ObservedTopic | None] = field(default_factory=dict)
    errors: dict[str, TopicError] = field(default_factory=dict)
    unanswered: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChunkRead:
    """The sweep's read of a chunk of topics (their partitions and configs, one request each): a digest
    of Kafka's answer, equal from sweep to sweep while nothing in it changes, and the answer decoded on
    demand, as a pass reads it, with the cluster the answer names."""

    digest: bytes
    configs_digest: bytes  # of the configs part alone
    decode: Callable[[], tuple[TopicReads, ClusterInfo]]


class KafkaPort(Protocol):
    """Batched admin requests: per-topic failures are returned, whole-request ones raised."""

    async def describe_cluster(self) -> ClusterInfo: ...
    async def describe_topics(self, names: Collection[str]) -> dict[str, ObservedTopic | None]: ...
    async def read_topics(
        self, names: Collection[str], configs_of: Collection[str] | None = None
    ) -> TopicReads:
        """Like describe_topics, but a topic Kafka refuses, or a chunk that gets no answer, fails
        only its own topics; raises KafkaUnavailable only when no part of the read was answered.
        With `configs_of`, only those topics' configs are read; the others come back with
        `configs_complete` False and no configs."""

    async def list_topics(self) -> set[str]: ...
    async def broker_configs(self) -> dict[str, str]: ...
    async def create_topics(self, topics: Sequence[CreateTopic]) -> dict[str, TopicError | None]: ...
    async def create_partitions(self, requests: Mapping[str, int]) -> dict[str, TopicError | None]: ...
    async def alter_configs(self, requests: Mapping[str, ConfigChanges]) -> dict[str, TopicError | None]: ...
    async def alter_broker_configs(
        self, changes: Mapping[int, ConfigChanges]
    ) -> dict[int, TopicError | None]: ...
    async def delete_topics(self, names: Collection[str]) -> dict[str, TopicError | None]: ...


class ReassignPort(Protocol):
    """What only the second Kafka client does: partition reassignment (KIP-455), the eligible leader
    replicas of Kafka 4.x (KIP-966, the DescribeTopicPartitions request) and configs read by key."""

    async def ongoing(self) -> Mapping[str, Mapping[int, PartitionMove]]: ...
    async def reassign(
        self, assignments: Mapping[str, Mapping[int, tuple[int, ...]]]
    ) -> dict[str, str | None]: ...
    async def topic_configs(
        self, keys: Mapping[str, Collection[str]]
    ) -> dict[str, tuple[dict[str, str], dict[str, str]] | None]:
        """Per topic, (overrides, effective) of the keys named for it; None for a topic not answered.
        Raises KafkaUnavailable."""

    async def eligible_leader_replicas(
        self, topics: Collection[str]
    ) -> dict[str, dict[int, tuple[int, ...]]]:
        """Per topic and partition, the eligible leader replicas Kafka names (partitions with none left
        out); raises KafkaUnavailable."""

    async def read_chunk(self, keys: Mapping[str, Collection[str] | None]) -> ChunkRead:
        """The partitions of these topics and the config keys named for each (every config where None),
        one request each; raises KafkaUnavailable. `keys` is not changed after the call (a reader may
        keep what it made of the same mapping)."""

    async def configs_digest(self, names: Sequence[str]) -> bytes:
        """A digest of every config of these topics, equal while none changes; raises KafkaUnavailable."""


class KubePort(Protocol):
    """The requests the loop makes to the API server; each raises ApiError."""

    async def list_durabletopics(self) -> list[dict[str, Any]]:
        """Every DurableTopic the operator watches, from one consistent listing."""

    async def list_policies(self) -> list[dict[str, Any]]:
        """Every DurabilityPolicy."""

    async def list_namespaces(self) -> list[dict[str, Any]]:
        """Every Namespace (their labels select policies)."""

    async def list_clusters(self) -> list[dict[str, Any]]:
        """Every KafkaCluster."""

    async def read_source(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        """The data of a Secret or ConfigMap a KafkaCluster names (decoded), or None if there is none."""

    async def write_cluster_status(
        self, name: str, status: Mapping[str, Any], previous: Mapping[str, Any]
    ) -> None: ...

    async def write_status(
        self, obj: DurableTopicObject, status: Mapping[str, Any], previous: Mapping[str, Any]
    ) -> None: ...
    async def write_policy_status(
        self, name: str, status: Mapping[str, Any], previous: Mapping[str, Any]
    ) -> None: ...
    async def set_finalizers(self, obj: DurableTopicObject, finalizers: Sequence[str]) -> None: ...
    async def post_event(
        self, obj: DurableTopicObject, event_type: str, reason: str, message: str
    ) -> None: ...
    async def apply_client_profile(self, obj: DurableTopicObject) -> None: ...


class MetricsPort(Protocol):
    def record_pass(self, result: str, objects: int, seconds: float) -> None: ...
    def record_sweep(self, seconds: float) -> None: ...
    def count_drift(self, ref: ObjectRef, topic: str, key: str, severity: str, action: str) -> None: ...
    def set_health(self, ref: ObjectRef, topic: str, health: ReplicaHealth, cluster: str) -> None: ...
    def set_drift(self, ref: ObjectRef, topic: str, keys: Collection[tuple[str, str]]) -> None: ...
    def forget(self, ref: ObjectRef) -> None: ...
    def set_resources(self, counts: Mapping[str, int]) -> None: ...
    def set_leader(self, leading: bool) -> None:
        """Leading or not; a replica that stops leading stops exporting what only the leader knows."""

    def set_audit(self, counts: Mapping[tuple[str, str], int], cluster: str) -> None: ...
    def forget_cluster(self, cluster: str) -> None: ...
    def set_policies(
        self, governed: Mapping[str, tuple[int, int]], violations: Mapping[tuple[str, str], int]
    ) -> None:
        """Per DurabilityPolicy: (namespaces, DurableTopics) governed; per (policy, rule): objects breaking it."""


class Connector(Protocol):
    """Makes and closes the clients of one Kafka cluster."""

    def connect(
        self, cluster: str, bootstrap_servers: str, properties: Mapping[str, str]
    ) -> tuple[KafkaPort, ReassignPort | None]: ...
    def close(self, kafka: KafkaPort, reassigner: ReassignPort | None) -> None: ...


class LeasePort(Protocol):
    """Leader election: one replica reconciles at a time."""

    async def acquire(self) -> None: ...
    async def hold(self) -> None:
        """Returns when leadership is lost."""

    async def release(self) -> None: ...
