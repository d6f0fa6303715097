"""Drift found by a sweep, and a replication-factor change carried out by reassignment."""

from __future__ import annotations

from durabletopic.core.configs import MIN_INSYNC_REPLICAS, THROTTLE_KEYS
from tests.unit.loop.conftest import Harness


async def test_weakened_topic_is_put_back_and_counted(harness: Harness) -> None:
    ref = harness.apply("orders")
    await harness.settle()
    harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] = "1"
    harness.controller.enqueue_all()
    await harness.settle()
    assert harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] == "2"
    assert harness.kube.reasons(ref)[-2:] == ["DriftDetected", "DriftReverted"]
    assert harness.metrics.drift_counts == [(MIN_INSYNC_REPLICAS, "weakening", "reverted")]
    assert harness.ready(ref)


async def test_reported_drift_changes_nothing_and_stays_reported(harness: Harness) -> None:
    ref = harness.apply("orders", {"partitions": 3, "driftPolicy": "Report"})
    await harness.settle()
    harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] = "1"
    for _ in range(3):
        harness.controller.enqueue_all()
        await harness.settle()
    assert harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] == "1"
    assert harness.kube.condition(ref, "Drifted") == ("True", "DriftDetected")
    assert harness.kube.reasons(ref) == ["DriftDetected"], "reported once"
    assert harness.metrics.drift[ref] == [(MIN_INSYNC_REPLICAS, "weakening")]


async def test_replication_factor_is_raised_by_reassignment_before_min_isr(harness: Harness) -> None:
    harness.kafka.add_topic("orders", partitions=2, rf=1)
    ref = harness.apply("orders", {"partitions": 2})
    await harness.step()
    assert harness.reassigner.moves, "a reassignment was started"
    overrides = harness.kafka.topics["orders"].overrides
    assert MIN_INSYNC_REPLICAS not in overrides, "min ISR waits for the new replicas"
    assert all(overrides[key] == "*" for key in THROTTLE_KEYS)
    assert harness.kube.condition(ref, "Reconciling") == ("True", "Reassigning")
    assert harness.status(ref)["replicasChange"]["state"] == "Ongoing"
    await harness.step()
    assert harness.kube.condition(ref, "Ready") == ("False", "Reassigning"), "not Ready while replicas move"
    harness.reassigner.finish()
    await harness.settle()
    assert harness.ready(ref)
    assert overrides[MIN_INSYNC_REPLICAS] == "2"
    assert not any(key in overrides for key in THROTTLE_KEYS)
    assert harness.status(ref)["replicasChange"]["state"] == "Done"
    assert all(configs == {} for configs in harness.kafka.broker_configs_set.values()), (
        "throttle rate removed"
    )


async def test_eligible_leader_replicas_are_read_only_for_partitions_under_min_isr(harness: Harness) -> None:
    ref = harness.apply("orders", {"partitions": 2})
    await harness.settle()
    harness.controller.enqueue_all()
    await harness.settle()
    assert harness.reassigner.elr_reads == [], "nothing under min ISR: no extra request"
    assert harness.status(ref)["health"]["withEligibleLeaderReplicas"] == 0
    topic = harness.kafka.topics["orders"]
    topic.out_of_sync = {2, 3}  # two followers out of the ISR: under min.insync.replicas=2
    topic.eligible = {2}  # Kafka 4.x keeps one of them electable
    harness.controller.enqueue_all()
    await harness.settle()
    assert harness.reassigner.elr_reads == [("orders",)]
    health = harness.status(ref)["health"]
    assert (health["underMinIsr"], health["withEligibleLeaderReplicas"]) == (2, 2)
    assert harness.metrics.health[ref].with_eligible_leaders == 2
    harness.reassigner.fail = True  # an older Kafka or no answer: the rest of the status still holds
    harness.controller.enqueue_all()
    await harness.settle()
    assert harness.status(ref)["health"]["underMinIsr"] == 2


async def test_a_settled_topic_has_only_the_planners_keys_read_and_drift_is_still_reverted(
    harness: Harness,
) -> None:
    ref = harness.apply("orders", {"partitions": 2, "config": {"retention.ms": "1000"}})
    await harness.settle()
    assert harness.reassigner.config_reads == [], "a new object's topic is read in full"
    topic = harness.kafka.topics["orders"]
    topic.overrides[MIN_INSYNC_REPLICAS] = "1"
    harness.controller.enqueue_all()
    await harness.settle()
    assert harness.reassigner.config_reads[0] == ("orders",)
    assert topic.overrides[MIN_INSYNC_REPLICAS] == "2", "reverted from the keys read"
    assert topic.overrides["retention.ms"] == "1000"
    assert harness.ready(ref)


async def test_an_override_set_out_of_band_is_seen_by_the_next_complete_read_and_not_forgotten_between(
    harness: Harness,
) -> None:
    ref = harness.apply("orders", {"partitions": 2})
    await harness.settle()
    harness.kafka.topics["orders"].overrides["segment.ms"] = "600000"
    harness.controller.enqueue_all()
    await harness.settle()
    assert harness.status(ref)["unmanagedConfigs"] == [], "not among the keys read"
    harness.controller._complete_read_at.clear()  # the complete read is due
    harness.controller.enqueue_all()
    await harness.settle()
    assert harness.status(ref)["unmanagedConfigs"] == ["segment.ms"]
    writes = len(harness.kube.status_writes)
    harness.controller.enqueue_all()  # a read of the planner's keys only: the record stands
    await harness.settle()
    assert harness.status(ref)["unmanagedConfigs"] == ["segment.ms"]
    assert len(harness.kube.status_writes) == writes, "no status write from a partial read"
    assert harness.kafka.topics["orders"].overrides["segment.ms"] == "600000", "left alone"


async def test_when_the_second_client_fails_the_configs_are_read_in_full(harness: Harness) -> None:
    harness.apply("orders", {"partitions": 2})
    await harness.settle()
    harness.reassigner.fail = True
    harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] = "1"
    harness.controller.enqueue_all()
    await harness.settle()
    assert harness.reassigner.config_reads, "tried by key first"
    assert harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] == "2"


async def test_a_sweep_skips_the_work_of_an_object_nothing_has_changed_for_and_sees_a_change(
    harness: Harness,
) -> None:
    ref = harness.apply("orders", {"partitions": 2})
    await harness.settle()
    applied: list[list[str]] = []
    apply = harness.controller._apply

    async def counting(work, observed, cluster):  # type: ignore[no-untyped-def]
        applied.append([obj.ref.name for obj, _ in work])
        return await apply(work, observed, cluster)

    harness.controller._apply = counting  # type: ignore[method-assign]
    for _ in range(3):  # sweeps: the same object, the same topic
        harness.controller.queue.add(ref)
        await harness.settle()
    assert applied.count(["orders"]) <= 1, "planned again although nothing changed"
    before = len(applied)
    harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] = "1"  # Kafka changes: looked at
    harness.controller.queue.add(ref)
    await harness.settle()
    assert applied[before:] and applied[before][0] == "orders"
    assert harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] == "2"
    harness.controller.enqueue_all()  # a new leader: everything in full, the gauges set again
    harness.metrics.health.clear()
    await harness.settle()
    assert ref in harness.metrics.health


async def test_an_object_looked_at_again_for_a_policy_or_a_claim_is_planned_in_full(harness: Harness) -> None:
    ref = harness.apply("orders", {"partitions": 2})
    await harness.settle()
    harness.controller.queue.add(ref)
    await harness.settle()  # quiet now
    assert ref in harness.controller._quiet
    harness.controller.requeue([ref])  # e.g. a DurabilityPolicy changed
    assert ref not in harness.controller._quiet


async def test_a_managed_topic_a_lagging_broker_says_is_absent_is_not_reported_lost(harness: Harness) -> None:
    """A broker whose metadata lags says the topic does not exist; CreateTopics answers that it does:
    the view was stale, nothing was recreated and no data was lost, so nothing says so."""
    ref = harness.apply("orders", {"partitions": 2})
    await harness.settle()
    topic_id = harness.kafka.topics["orders"].topic_id
    harness.kafka._hidden["orders"] = 1  # the next read only
    harness.controller.queue.add(ref)
    await harness.settle()
    assert harness.kafka.topics["orders"].topic_id == topic_id
    assert not [e for e in harness.kube.events if "recreated" in str(e)], "no claim that data was lost"
    assert not harness.metrics.drift_counts
    assert harness.ready(ref)
    assert not harness.status(ref).get("drift")


async def test_a_topic_someone_else_recreated_behind_a_lagging_read_is_not_taken(harness: Harness) -> None:
    """The read says the topic is absent, CreateTopics says it exists: someone else recreated it. The pass
    takes nothing; the next one finds another topic id and refuses it."""
    ref = harness.apply("orders", {"partitions": 2})
    await harness.settle()
    del harness.kafka.topics["orders"]
    theirs = harness.kafka.add_topic("orders", partitions=2, overrides={MIN_INSYNC_REPLICAS: "1"})
    harness.kafka._hidden["orders"] = 1
    harness.controller.queue.add(ref)
    await harness.settle()
    assert harness.kafka.topics["orders"].topic_id == theirs
    assert harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] == "1", "not changed"
    assert harness.kube.condition(ref, "Ready") == ("False", "TopicReplaced")
    assert not [e for e in harness.kube.events if "recreated" in str(e)]


async def test_a_topic_someone_else_recreated_is_not_read_again_as_the_operators(harness: Harness) -> None:
    """As above, and the read after acting misses it too: only topics the pass itself created are read
    again, so the other one's topic is never taken for a topic the operator has just made."""
    ref = harness.apply("orders", {"partitions": 2})
    await harness.settle()
    del harness.kafka.topics["orders"]
    theirs = harness.kafka.add_topic("orders", partitions=2, overrides={MIN_INSYNC_REPLICAS: "1"})
    harness.kafka._hidden["orders"] = 2  # the pass's read and its read after acting
    harness.controller.queue.add(ref)
    harness.kafka.calls.clear()
    await harness.step()
    assert harness.kafka.count("describe_topics") == 2, "no read again of a topic the pass did not create"
    await harness.settle()
    assert harness.kafka.topics["orders"].topic_id == theirs
    assert harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] == "1", "not changed"
    assert harness.kube.condition(ref, "Ready") == ("False", "TopicReplaced")
    assert harness.status(ref)["topicId"] != theirs
