"""The data the operator reasons about: the desired topic, the policy, and what Kafka has.

`DurableTopicSpec` is the one source of the spec: its fields' names, types, defaults, bounds and
descriptions are what the CRD's schema is generated from (`crd.py`) and what the rules check
(`rules.py`). The bounds are carried as schema keywords and checked by the rules, not by pydantic:
the planner must be able to refuse a bad spec with the rule it breaks, not fail to read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from durabletopic.core.configs import (
    KAFKA_DEFAULT_MIN_INSYNC_REPLICAS,
    MIN_INSYNC_REPLICAS,
    UNCLEAN_LEADER_ELECTION,
    parse_int,
)

TOPIC_NAME_PATTERN = r"^[a-zA-Z0-9._-]+$"
TOPIC_NAME_MAX_LENGTH = 249
MAX_PARTITIONS = 10000
MAX_REPLICATION_FACTOR = 32767
MAX_CONFIG_ENTRIES = 200
MAX_CONFIG_KEY_LENGTH = 256
MAX_CONFIG_VALUE_LENGTH = 4096
MAX_CONFIG_TOTAL_SIZE = 32768
DEFAULT_REPLICATION_FACTOR = 3
DEFAULT_MIN_INSYNC_REPLICAS = 2
CLUSTER_NAME_MAX_LENGTH = 253  # a KafkaCluster's metadata.name


class DeletionPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class DriftPolicy(StrEnum):
    ENFORCE = "Enforce"
    REPORT = "Report"


def _schema(**keywords: Any) -> dict[str, Any]:
    """OpenAPI keywords of a field for the CRD's structural schema."""
    return keywords


class ClusterRef(BaseModel):
    """The KafkaCluster a topic lives on."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str = Field(
        description="Name of the KafkaCluster (cluster-scoped: `kubectl get kafkaclusters`).",
        json_schema_extra=_schema(minLength=1, maxLength=CLUSTER_NAME_MAX_LENGTH),
    )


class DurableTopicSpec(BaseModel):
    """`spec` of a DurableTopic: the Kafka topic this object declares and the durability it must have."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    topic_name: str | None = Field(
        default=None,
        alias="topicName",
        description="Name of the Kafka topic. Defaults to metadata.name. Immutable.",
        json_schema_extra=_schema(minLength=1, maxLength=TOPIC_NAME_MAX_LENGTH, pattern=TOPIC_NAME_PATTERN),
    )
    partitions: int = Field(
        description="Number of partitions. May only grow: Kafka cannot remove partitions.",
        json_schema_extra=_schema(minimum=1, maximum=MAX_PARTITIONS),
    )
    replication_factor: int = Field(
        default=DEFAULT_REPLICATION_FACTOR,
        alias="replicationFactor",
        description="Replicas of each partition. At least the platform's floor "
        f"({DEFAULT_REPLICATION_FACTOR} by default).",
        json_schema_extra=_schema(minimum=1, maximum=MAX_REPLICATION_FACTOR),
    )
    min_insync_replicas: int = Field(
        default=DEFAULT_MIN_INSYNC_REPLICAS,
        alias="minInSyncReplicas",
        description="min.insync.replicas written on the topic: replicas that must have a message before "
        "an acks=all producer is told it is written. At least the platform's floor "
        f"({DEFAULT_MIN_INSYNC_REPLICAS} by default) and less than replicationFactor.",
        json_schema_extra=_schema(minimum=1, maximum=MAX_REPLICATION_FACTOR),
    )
    config: dict[str, str] = Field(
        default_factory=dict,
        description="Other topic configs (retention.ms, cleanup.policy, ...), set on the topic itself. "
        "min.insync.replicas and unclean.leader.election.enable are owned by the durability fields "
        "and not allowed here.",
        json_schema_extra=_schema(
            maxProperties=MAX_CONFIG_ENTRIES, additionalProperties={"maxLength": MAX_CONFIG_VALUE_LENGTH}
        ),
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.RETAIN,
        alias="deletionPolicy",
        description="Retain (default) keeps the Kafka topic and its data when this object is deleted; "
        "Delete deletes the topic too.",
    )
    drift_policy: DriftPolicy = Field(
        default=DriftPolicy.ENFORCE,
        alias="driftPolicy",
        description="Enforce (default) puts right any change made to the topic behind the operator's "
        "back; Report only reports it.",
    )
    cluster_ref: ClusterRef | None = Field(
        default=None,
        alias="clusterRef",
        description="The KafkaCluster the topic lives on. Without it the topic goes to the default cluster: the "
        "KafkaCluster the operator is installed with as its default (Helm value defaultCluster), else the "
        "operator's own Kafka settings. Immutable, set or absent: a topic does not move between clusters; "
        "create a new DurableTopic for another cluster.",
    )

    def resolved_topic_name(self, object_name: str) -> str:
        return self.topic_name or object_name

    def desired_configs(self) -> dict[str, str]:
        """Every config the topic must carry as its own override."""
        configs = dict(self.config)
        configs[MIN_INSYNC_REPLICAS] = str(self.min_insync_replicas)
        configs[UNCLEAN_LEADER_ELECTION] = "false"
        return configs


@cache
def spec_default(alias: str) -> Any:
    """The default the API server gives an absent scalar spec field (the CRD's `default`)."""
    for name, info in DurableTopicSpec.model_fields.items():
        if (info.alias or name) == alias:
            return info.get_default(call_default_factory=True)
    raise KeyError(alias)


@cache
def spec_bounds(alias: str) -> tuple[int, int]:
    """(minimum, maximum) of an integer spec field."""
    for name, info in DurableTopicSpec.model_fields.items():
        if (info.alias or name) == alias and isinstance(info.json_schema_extra, dict):
            low, high = info.json_schema_extra["minimum"], info.json_schema_extra["maximum"]
            assert isinstance(low, int) and isinstance(high, int)
            return low, high
    raise KeyError(alias)


class Policy(BaseModel):
    """The floors the platform team sets for every topic."""

    model_config = ConfigDict(frozen=True)

    min_replication_factor: int = Field(default=DEFAULT_REPLICATION_FACTOR, ge=1)
    min_insync_replicas: int = Field(default=DEFAULT_MIN_INSYNC_REPLICAS, ge=1)


@dataclass(frozen=True, slots=True)
class PartitionState:
    partition: int
    leader: int | None
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    # Kafka 4.x (KIP-966): replicas out of the ISR that still hold every acknowledged message and can
    # be elected cleanly. Read only where a partition is under min.insync.replicas or has no leader.
    eligible_leader_replicas: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ObservedTopic:
    """A topic as Kafka describes it.

    `overrides` holds the configs set on the topic itself; `effective` holds the value in force
    for every config that was read, broker defaults included. Neither is ever changed once built:
    the reads of topics with equal configs share one dict.
    """

    name: str
    topic_id: str
    partitions: tuple[PartitionState, ...]
    overrides: dict[str, str] = field(default_factory=dict)
    effective: dict[str, str] = field(default_factory=dict)
    # False when only some keys were read (the ones the planner needs, see plan.keys_to_read):
    # `overrides` then says nothing of the other keys.
    configs_complete: bool = True

    @property
    def partition_count(self) -> int:
        return len(self.partitions)

    @property
    def replication_factor(self) -> int:
        """The smallest replica count over the partitions: the durability the topic really has."""
        return min((len(p.replicas) for p in self.partitions), default=0)

    @property
    def replica_counts(self) -> frozenset[int]:
        return frozenset(len(p.replicas) for p in self.partitions)

    def settled_replicas(self, moves: Mapping[int, PartitionMove] | None) -> dict[int, tuple[int, ...]]:
        """Each partition's replicas less those a running reassignment is still adding: the replicas
        that hold the data now, which every decision about durability must count."""
        moves = moves or {}
        return {
            p.partition: tuple(
                r for r in p.replicas if r not in (moves[p.partition].adding if p.partition in moves else ())
            )
            for p in self.partitions
        }

    def effective_min_insync_replicas(self) -> int:
        value = parse_int(self.effective.get(MIN_INSYNC_REPLICAS))
        return KAFKA_DEFAULT_MIN_INSYNC_REPLICAS if value is None else value


@dataclass(frozen=True, slots=True)
class Broker:
    node_id: int
    rack: str | None


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    brokers: tuple[Broker, ...]
    controller_id: int | None = None
    cluster_id: str | None = None

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


@dataclass(frozen=True, slots=True)
class PartitionMove:
    """A partition Kafka is moving (KIP-455): its full replica set and the replicas being added or removed."""

    replicas: tuple[int, ...]
    adding: tuple[int, ...]
    removing: tuple[int, ...]


@dataclass(frozen=True)
class TopicError:
    """Kafka's answer for one topic of a batched request: its error code and message."""

    code: str
    message: str
    retriable: bool

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class Recorded:
    """What earlier passes wrote in the object's status and must not be re-derived from Kafka.

    `topic_id` and `cluster_id` pin the topic's identity; `applied_generation` is the last
    generation whose spec was fully applied; `applied_replication_factor` the replication factor the
    operator last brought the topic to; `managed_configs` the spec.config keys it set on the topic;
    `unmanaged_configs` the other overrides the last complete read of the topic's configs found.
    """

    topic_id: str | None = None
    cluster_id: str | None = None
    applied_generation: int | None = None
    applied_replication_factor: int | None = None
    managed_configs: frozenset[str] = frozenset()
    unmanaged_configs: tuple[str, ...] = ()
