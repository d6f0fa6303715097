"""Replica health of a topic, from its partitions' leaders, in-sync and eligible leader replicas. Pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from durabletopic.core.model import ObservedTopic, PartitionState
from durabletopic.core.reasons import Reason


@dataclass(frozen=True, slots=True)
class ReplicaHealth:
    partitions: int
    under_replicated: int
    under_min_isr: int
    at_min_isr: int
    offline: int
    with_eligible_leaders: int = 0

    @property
    def reason(self) -> Reason:
        """The worst state any partition is in."""
        if self.offline:
            return Reason.OFFLINE
        if self.under_min_isr:
            return Reason.UNDER_MIN_ISR
        if self.under_replicated:
            return Reason.UNDER_REPLICATED
        return Reason.ALL_IN_SYNC

    @property
    def healthy(self) -> bool:
        return self.reason is Reason.ALL_IN_SYNC

    def message(self, topic: str) -> str:
        if self.healthy:
            return f"All {self.partitions} partitions of {topic} have every replica in sync."
        parts = []
        if self.offline:
            parts.append(f"{self.offline} offline (no leader)")
        if self.under_min_isr:
            parts.append(f"{self.under_min_isr} under min.insync.replicas (acks=all producers are failing)")
        if self.under_replicated:
            parts.append(f"{self.under_replicated} under-replicated")
        if self.at_min_isr:
            parts.append(
                f"{self.at_min_isr} at min.insync.replicas (one more failure stops acks=all producers)"
            )
        if self.with_eligible_leaders:
            parts.append(
                f"{self.with_eligible_leaders} with eligible leader replicas (replicas out of the ISR that "
                "hold every acknowledged message and can still be elected cleanly)"
            )
        return f"Of {self.partitions} partitions of {topic}: " + ", ".join(parts) + "."

    def as_status(self) -> dict[str, int]:
        return {
            "partitions": self.partitions,
            "underReplicated": self.under_replicated,
            "underMinIsr": self.under_min_isr,
            "atMinIsr": self.at_min_isr,
            "offline": self.offline,
            "withEligibleLeaderReplicas": self.with_eligible_leaders,
        }


def replica_health(topic: ObservedTopic) -> ReplicaHealth:
    min_isr = topic.effective_min_insync_replicas()
    under_replicated = under_min = at_min = offline = eligible = 0
    for partition in topic.partitions:
        isr = len(partition.isr)
        if partition.eligible_leader_replicas:
            eligible += 1
        if partition.leader is None:
            offline += 1
        if isr < len(partition.replicas):
            under_replicated += 1
        if partition.leader is None or isr < min_isr:
            under_min += 1
        elif isr == min_isr:
            at_min += 1
    return ReplicaHealth(len(topic.partitions), under_replicated, under_min, at_min, offline, eligible)


def needs_eligible_leaders(topic: ObservedTopic) -> bool:
    """Whether a partition is where Kafka keeps eligible leader replicas: under min ISR, or leaderless."""
    min_isr = topic.effective_min_insync_replicas()
    return any(p.leader is None or len(p.isr) < min_isr for p in topic.partitions)


def with_eligible_leaders(topic: ObservedTopic, found: Mapping[int, tuple[int, ...]]) -> ObservedTopic:
    """The topic with the eligible leader replicas Kafka named for its partitions."""

    def one(partition: PartitionState) -> PartitionState:
        elr = found.get(partition.partition, ())
        return dataclasses.replace(partition, eligible_leader_replicas=elr) if elr else partition

    return dataclasses.replace(topic, partitions=tuple(one(p) for p in topic.partitions))
