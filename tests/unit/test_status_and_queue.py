"""Status conditions, replica health and the work queue."""

from __future__ import annotations

import asyncio

from durabletopic.core.conditions import conditions_for_plan, merge_conditions
from durabletopic.core.health import needs_eligible_leaders, replica_health, with_eligible_leaders
from durabletopic.core.model import ObservedTopic, PartitionState
from durabletopic.core.plan import Refusal, TopicPlan
from durabletopic.core.reasons import Reason
from durabletopic.core.status import without_volatile
from durabletopic.loop.workqueue import WorkQueue


def test_ready_when_in_sync() -> None:
    conditions = {c.type: c for c in conditions_for_plan(TopicPlan(), "orders")}
    assert conditions["Ready"].status and conditions["Ready"].reason == "Reconciled"
    assert not conditions["Reconciling"].status and not conditions["Stalled"].status


def test_stalled_on_refusal() -> None:
    plan = TopicPlan(refusals=(Refusal(Reason.PARTITION_DECREASE_REFUSED, "the topic has 6 partitions"),))
    conditions = {c.type: c for c in conditions_for_plan(plan, "orders")}
    assert conditions["Stalled"].status and conditions["Stalled"].reason == "PartitionDecreaseRefused"
    assert not conditions["Ready"].status


def test_transition_time_kept_while_status_holds() -> None:
    first = merge_conditions(conditions_for_plan(TopicPlan(), "t"), [], 1, "2026-01-01T00:00:00Z")
    second = merge_conditions(conditions_for_plan(TopicPlan(), "t"), first, 2, "2026-01-02T00:00:00Z")
    assert second[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert second[0]["observedGeneration"] == 2
    changed_generation = without_volatile({"conditions": first}) != without_volatile({"conditions": second})
    assert changed_generation


def partition(leader: int | None, isr: int) -> PartitionState:
    return PartitionState(0, leader, (1, 2, 3), tuple(range(1, isr + 1)))


def test_replica_health_worst_first() -> None:
    def health(*parts: PartitionState) -> str:
        return replica_health(ObservedTopic("t", "i", parts, {}, {"min.insync.replicas": "2"})).reason

    assert health(partition(1, 3)) == "AllInSync"
    assert health(partition(1, 2)) == "UnderReplicated"
    assert health(partition(1, 1), partition(1, 2)) == "UnderMinIsr"
    assert health(partition(None, 0), partition(1, 1)) == "Offline"
    counts = replica_health(
        ObservedTopic("t", "i", (partition(1, 2), partition(1, 3)), {}, {"min.insync.replicas": "2"})
    )
    assert (counts.under_replicated, counts.at_min_isr, counts.under_min_isr) == (1, 1, 0)


async def test_work_queue_dedups_and_delays() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("a")
    queue.add("b", delay=0.2)
    assert await queue.take(10) == ["a"]
    queue.add("b")  # earlier than its pending due time: moves forward
    assert await asyncio.wait_for(queue.take(10), 1) == ["b"]
    queue.add("c", delay=0.05)
    assert await asyncio.wait_for(queue.take(10), 1) == ["c"]
    assert len(queue) == 0


def test_eligible_leader_replicas_are_counted_where_kafka_keeps_them() -> None:
    configs = {"min.insync.replicas": "2"}
    healthy = ObservedTopic("t", "i", (partition(1, 3), partition(1, 2)), {}, configs)
    under = ObservedTopic(
        "t", "i", (partition(1, 1), PartitionState(1, 1, (1, 2, 3), (1, 2, 3))), {}, configs
    )
    leaderless = ObservedTopic("t", "i", (partition(None, 0),), {}, configs)
    assert not needs_eligible_leaders(healthy)
    assert needs_eligible_leaders(under) and needs_eligible_leaders(leaderless)
    read = with_eligible_leaders(under, {0: (2,)})
    assert read.partitions[0].eligible_leader_replicas == (2,)
    assert read.partitions[1].eligible_leader_replicas == ()
    health = replica_health(read)
    assert (health.under_min_isr, health.with_eligible_leaders) == (1, 1)
    assert health.as_status()["withEligibleLeaderReplicas"] == 1
    assert "1 with eligible leader replicas" in health.message("t")
    assert replica_health(under).with_eligible_leaders == 0
