"""The data the operator reasons about: the desired topic, the policy, and what Kafka has."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

MIN_INSYNC_REPLICAS = "min.insync.replicas"
UNCLEAN_LEADER_ELECTION = "unclean.leader.election.enable"
DURABILITY_KEYS = frozenset({MIN_INSYNC_REPLICAS, UNCLEAN_LEADER_ELECTION})


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class DriftPolicy(StrEnum):
    ENFORCE = "Enforce"
    REPORT = "Report"


class DurableTopicSpec(BaseModel):
    """`spec` of a DurableTopic, already past the API server's schema and CEL checks."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    topic_name: str | None = Field(default=None, alias="topicName")
    partitions: int
    replication_factor: int = Field(default=3, alias="replicationFactor")
    min_insync_replicas: int = Field(default=2, alias="minInSyncReplicas")
    config: dict[str, str] = Field(default_factory=dict)
    deletion_policy: DeletionPolicy = Field(default=DeletionPolicy.RETAIN, alias="deletionPolicy")
    drift_policy: DriftPolicy = Field(default=DriftPolicy.ENFORCE, alias="driftPolicy")

    def resolved_topic_name(self, object_name: str) -> str:
        return self.topic_name or object_name

    def desired_configs(self) -> dict[str, str]:
        """Every config the topic must carry as its own override."""
        configs = dict(self.config)
        configs[MIN_INSYNC_REPLICAS] = str(self.min_insync_replicas)
        configs[UNCLEAN_LEADER_ELECTION] = "false"
        return configs


class Policy(BaseModel):
    """The floors the platform team sets for every topic."""

    model_config = ConfigDict(frozen=True)

    min_replication_factor: int = Field(default=3, ge=1)
    min_insync_replicas: int = Field(default=2, ge=1)


@dataclass(frozen=True, slots=True)
class PartitionState:
    partition: int
    leader: int | None
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ObservedTopic:
    """A topic as Kafka describes it.

    `overrides` holds the configs set on the topic itself; `effective` holds the value in force
    for every config that was read, broker defaults included.
    """

    name: str
    topic_id: str
    partitions: tuple[PartitionState, ...]
    overrides: dict[str, str] = field(default_factory=dict)
    effective: dict[str, str] = field(default_factory=dict)

    @property
    def partition_count(self) -> int:
        return len(self.partitions)

    @property
    def replication_factor(self) -> int:
        """The smallest replica count over the partitions: the durability the topic really has."""
        return min((len(p.replicas) for p in self.partitions), default=0)

    def effective_min_insync_replicas(self) -> int:
        try:
            return int(self.effective.get(MIN_INSYNC_REPLICAS, "1"))
        except ValueError:
            return 1


@dataclass(frozen=True, slots=True)
class Broker:
    node_id: int
    rack: str | None


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    brokers: tuple[Broker, ...]
    controller_id: int | None = None

    @property
    def live_broker_count(self) -> int:
        return len(self.brokers)

    @property
    def racks(self) -> frozenset[str]:
        return frozenset(b.rack for b in self.brokers if b.rack)


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """Where a DurableTopic lives in Kubernetes."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"
