"""What a KafkaCluster's status says: whether the operator reaches the cluster, what Kafka described of
it at the last contact, how many DurableTopics it holds, and the last audit's findings. Pure.

The facts of Kafka (cluster id, brokers, controller) and the time of the contact are taken from a
connected observation only: while the cluster cannot be used they stay what the status said, with
`lastContactTime` telling how old they are. The audit's counts are kept until the next audit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from durabletopic.core.conditions import Condition, merge_conditions, truncated
from durabletopic.core.model import Broker, ClusterInfo
from durabletopic.core.reasons import AUDIT_SEVERITIES, ClusterConditionType, Reason

# Facts of Kafka that a status keeps while the cluster cannot be reached.
_KAFKA_FACTS = ("clusterId", "brokers", "brokerCount", "controllerId", "lastContactTime")


@dataclass(frozen=True, slots=True)
class ClusterProblem:
    """Why the cluster could not be used: a Ready reason (Unreachable, AuthenticationFailed,
    ClusterIdMismatch, SecretNotFound, InvalidSpec) and a message a person can act on."""

    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class ClusterObservation:
    """What the operator saw of a KafkaCluster.

    `problem` is None when the operator reached the cluster and it is the one it must be; then
    `cluster_id`, `brokers`, `controller_id` are what Kafka described and `contact_time` when. With a
    problem they are not read. `durable_topics` counts the DurableTopics on the cluster (what the
    operator holds, reachable or not). `audit_counts` are the findings of an audit made since the last
    status, by (rule, severity); None when there was none.
    """

    problem: ClusterProblem | None = None
    cluster_id: str | None = None
    brokers: tuple[Broker, ...] = ()
    controller_id: int | None = None
    durable_topics: int = 0
    audit_counts: Mapping[tuple[str, str], int] | None = None
    contact_time: str | None = None

    @classmethod
    def connected(
        cls,
        info: ClusterInfo,
        contact_time: str,
        durable_topics: int,
        audit_counts: Mapping[tuple[str, str], int] | None = None,
    ) -> ClusterObservation:
        """Kafka described the cluster (`describe_cluster`) at `contact_time`."""
        return cls(
            None,
            info.cluster_id,
            info.brokers,
            info.controller_id,
            durable_topics,
            audit_counts,
            contact_time,
        )

    @classmethod
    def failed(
        cls,
        reason: Reason,
        message: str,
        durable_topics: int,
        audit_counts: Mapping[tuple[str, str], int] | None = None,
    ) -> ClusterObservation:
        return cls(ClusterProblem(reason, message), durable_topics=durable_topics, audit_counts=audit_counts)


def _ready(name: str, observation: ClusterObservation, cluster_id: str | None) -> Condition:
    if observation.problem is not None:
        return truncated(
            Condition(
                ClusterConditionType.READY, False, observation.problem.reason, observation.problem.message
            )
        )
    brokers = len(observation.brokers)
    which = f"Kafka cluster {cluster_id}" if cluster_id else "the Kafka cluster"
    controller = f", controller {observation.controller_id}" if observation.controller_id is not None else ""
    return Condition(
        ClusterConditionType.READY,
        True,
        Reason.CONNECTED,
        f"KafkaCluster {name} reaches {which}: {brokers} broker(s){controller}.",
    )


def _audit_findings(counts: Mapping[tuple[str, str], int]) -> list[dict[str, Any]]:
    """Counts by (rule, severity) as status.auditFindings: the most severe first, then by rule."""
    order = {str(s): i for i, s in enumerate(AUDIT_SEVERITIES)}
    ranked = sorted(counts.items(), key=lambda item: (order.get(item[0][1], len(order)), item[0][0]))
    return [
        {"rule": rule, "severity": severity, "count": count} for (rule, severity), count in ranked if count
    ]


def cluster_status(
    name: str,
    generation: int,
    observation: ClusterObservation,
    previous: Mapping[str, Any],
    now: str,
) -> dict[str, Any]:
    """The whole status of KafkaCluster `name` at `generation`, from what the operator saw and the
    status it has now (`previous`); `now` is an RFC 3339 time. A field with nothing known is left out."""
    status: dict[str, Any] = {"observedGeneration": generation}
    if observation.problem is None:
        cluster_id = observation.cluster_id or previous.get("clusterId")
        brokers = sorted(observation.brokers, key=lambda b: b.node_id)
        facts: dict[str, Any] = {
            "clusterId": cluster_id,
            "brokers": [{"id": b.node_id, **({"rack": b.rack} if b.rack else {})} for b in brokers],
            "brokerCount": len(brokers),
            "controllerId": observation.controller_id,
            "lastContactTime": observation.contact_time or now,
        }
    else:
        cluster_id = previous.get("clusterId")
        facts = {key: previous.get(key) for key in _KAFKA_FACTS}
    ready = _ready(name, observation, cluster_id)
    status["conditions"] = merge_conditions([ready], previous.get("conditions") or [], generation, now)
    status.update({key: value for key, value in facts.items() if value is not None})
    status["durableTopics"] = observation.durable_topics
    if observation.audit_counts is not None:
        status["auditFindings"] = _audit_findings(observation.audit_counts)
    elif "auditFindings" in previous:
        status["auditFindings"] = previous["auditFindings"]
    return status
