"""What the operator never does, pinned down on the loop with in-memory ports: each test is one of
the guarantees of DESIGN.md ("What the operator will never do"), in the order listed there."""

from __future__ import annotations

import asyncio

from durabletopic.core.configs import MIN_INSYNC_REPLICAS, THROTTLE_KEYS
from durabletopic.core.model import ObjectRef, TopicError
from durabletopic.loop.writes import FINALIZER
from tests.unit.loop.conftest import Harness, lead_until
from tests.unit.loop.fakes import body

DELETE = {"partitions": 3, "deletionPolicy": "Delete"}


def gone_and_recreated(harness: Harness, topic: str, **overrides: str) -> str:
    """Someone deletes the topic and creates it again under the same name."""
    del harness.kafka.topics[topic]
    return harness.kafka.add_topic(topic, overrides=dict(overrides))


# 1. A topic's identity is pinned.


async def test_a_replaced_topic_is_neither_written_nor_deleted(harness: Harness) -> None:
    ref = harness.apply("orders", DELETE)
    await harness.settle()
    pinned = harness.status(ref)["topicId"]
    assert pinned == harness.kafka.topics["orders"].topic_id
    new_id = gone_and_recreated(harness, "orders", **{MIN_INSYNC_REPLICAS: "1"})
    harness.controller.enqueue_all()
    await harness.settle()
    assert harness.kube.condition(ref, "Stalled") == ("True", "TopicReplaced")
    assert harness.kafka.topics["orders"].overrides == {MIN_INSYNC_REPLICAS: "1"}, "nothing written to it"
    assert harness.status(ref)["topicId"] == pinned, "the recorded id is not overwritten"
    assert harness.kube.reasons(ref).count("TopicReplaced") == 1
    harness.event(
        "MODIFIED", "orders", DELETE, finalizers=[FINALIZER], deleting=True, status=harness.status(ref)
    )
    await harness.settle()
    assert harness.kafka.topics["orders"].topic_id == new_id, "deletionPolicy Delete never deletes it"


async def test_a_topic_the_operator_recreates_is_pinned_even_when_not_yet_visible(harness: Harness) -> None:
    ref = harness.apply("orders")
    await harness.settle()
    first = harness.status(ref)["topicId"]
    del harness.kafka.topics["orders"]  # deleted out of band: driftPolicy Enforce recreates it
    harness.kafka.hidden_after_create = 2  # and it takes a moment to be seen
    harness.controller.enqueue_all()
    await harness.settle()
    assert harness.ready(ref), harness.status(ref)["conditions"]
    assert harness.status(ref)["topicId"] == harness.kafka.topics["orders"].topic_id != first
    assert "data was lost" in harness.kube.events[-1][3]


async def test_an_accepted_topic_id_is_taken_over(harness: Harness) -> None:
    ref = harness.apply("orders")
    await harness.settle()
    new_id = gone_and_recreated(harness, "orders")
    harness.controller.enqueue_all()
    await harness.settle()
    harness.event(
        "MODIFIED",
        "orders",
        annotations={"durabletopic.dev/accept-topic-id": new_id},
        status=harness.status(ref),
    )
    await harness.settle()
    assert harness.ready(ref)
    assert harness.status(ref)["topicId"] == new_id
    assert harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] == "2"


async def test_another_cluster_is_not_written_to(harness: Harness) -> None:
    ref = harness.apply("orders")
    await harness.settle()
    assert harness.status(ref)["clusterId"] == "cluster-a"
    harness.kafka.cluster_id = "cluster-b"
    harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] = "1"
    harness.controller.enqueue_all()
    await harness.settle()
    assert harness.kube.condition(ref, "Stalled") == ("True", "ClusterChanged")
    assert harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] == "1"


# 2. Delete deletes a topic only when no other DurableTopic declares it.


async def test_moving_an_object_to_another_namespace_keeps_the_topic(harness: Harness) -> None:
    old = harness.apply("orders", DELETE, namespace="old", created="2026-11-28T10:00:00Z")
    await harness.settle()
    topic_id = harness.kafka.topics["orders"].topic_id
    new = harness.apply("orders", DELETE, namespace="new", created="2026-11-28T11:00:00Z")
    await harness.settle()
    assert harness.kube.condition(new, "Stalled") == ("True", "TopicConflict")
    harness.event(
        "MODIFIED",
        "orders",
        DELETE,
        namespace="old",
        finalizers=[FINALIZER],
        deleting=True,
        status=harness.status(old),
    )
    await harness.settle()
    assert harness.kafka.topics["orders"].topic_id == topic_id, "the topic and its data stay"
    assert harness.kube.finalizers[old] == []
    assert "still declares this topic" in harness.kube.events[-1][3]
    harness.event("DELETED", "orders", namespace="old")
    await harness.settle()
    assert harness.ready(new)
    assert harness.status(new)["topicId"] == topic_id


# 3. A paused object makes no Kafka call, deletion included.


async def test_deleting_a_paused_object_keeps_the_topic(harness: Harness) -> None:
    ref = harness.apply("orders", DELETE)
    await harness.settle()
    paused = {"durabletopic.dev/paused": "true"}
    status = harness.status(ref)
    harness.event("MODIFIED", "orders", DELETE, annotations=paused, finalizers=[FINALIZER], status=status)
    await harness.settle()
    calls = len(harness.kafka.calls)
    harness.event(
        "MODIFIED", "orders", DELETE, annotations=paused, finalizers=[FINALIZER], deleting=True, status=status
    )
    await harness.settle()
    assert len(harness.kafka.calls) == calls, "no Kafka call"
    assert "orders" in harness.kafka.topics
    assert harness.kube.finalizers[ref] == [], "released, the topic kept"


# 4. Kafka unreachable during a deletion: the object says why, and there is a way out.


async def test_deletion_while_kafka_is_down_says_why_and_can_be_let_go(harness: Harness) -> None:
    ref = harness.apply("orders", DELETE)
    await harness.settle()
    status = harness.status(ref)
    harness.kafka.unavailable = True
    harness.event("MODIFIED", "orders", DELETE, finalizers=[FINALIZER], deleting=True, status=status)
    for _ in range(3):
        await harness.step()
    assert harness.kube.condition(ref, "Reconciling") == ("True", "DeletePending")
    message = harness.status(ref)["conditions"][0]["message"]
    assert "could not be deleted" in message and "durabletopic.dev/retain-topic=true" in message
    assert harness.kube.reasons(ref).count("DeleteFailed") == 1, "announced once"
    assert harness.kube.finalizers[ref] == [FINALIZER]
    harness.event(
        "MODIFIED",
        "orders",
        DELETE,
        annotations={"durabletopic.dev/retain-topic": "true"},
        finalizers=[FINALIZER],
        deleting=True,
        status=harness.status(ref),
    )
    await harness.step()
    assert harness.kube.finalizers[ref] == [], "let go without Kafka"
    harness.kafka.unavailable = False
    assert "orders" in harness.kafka.topics


# 5. Ownership is decided on a complete view.


async def test_leadership_waits_for_the_full_list_before_deciding_ownership(harness: Harness) -> None:
    older = body("orders", namespace="a", created="2026-11-28T10:00:00Z")
    harness.kube.objects[ObjectRef("a", "orders")] = older  # exists, but the watch has not brought it yet
    harness.kafka.add_topic("orders", overrides={"retention.ms": "86400000"})
    younger = harness.apply(
        "orders",
        {"partitions": 3, "config": {"retention.ms": "1"}},
        namespace="b",
        created="2026-11-28T11:00:00Z",
    )
    await lead_until(harness, lambda: harness.kube.condition(younger, "Stalled") is not None)
    assert harness.kube.condition(younger, "Stalled") == ("True", "TopicConflict")
    assert harness.kafka.topics["orders"].overrides["retention.ms"] == "86400000", (
        "the younger changed nothing"
    )


async def test_a_new_leader_never_deletes_a_topic_another_object_declares(harness: Harness) -> None:
    old = harness.apply("orders", DELETE, namespace="old", created="2026-11-28T10:00:00Z")
    await harness.settle()
    topic_id = harness.kafka.topics["orders"].topic_id
    # A lease hand-over: the new leader's watch has brought the old object, being deleted, but not yet
    # the new object that declares the same topic.
    harness.kube.objects[ObjectRef("new", "orders")] = body("orders", DELETE, namespace="new")
    harness.event(
        "MODIFIED",
        "orders",
        DELETE,
        namespace="old",
        finalizers=[FINALIZER],
        deleting=True,
        status=harness.status(old),
    )
    await lead_until(harness, lambda: harness.kube.finalizers.get(old) == [])
    assert harness.kafka.topics["orders"].topic_id == topic_id, "kept for the object the listing found"
    assert harness.kafka.count("delete_topics") == 0


async def test_a_restart_between_the_delete_and_the_release_lets_the_object_go(harness: Harness) -> None:
    ref = harness.apply("orders", DELETE)
    await harness.settle()
    status = harness.status(ref)
    del harness.kafka.topics["orders"]  # the previous operator deleted it, and died before the release
    restarted = Harness(harness.kafka, harness.kube)
    restarted.event("MODIFIED", "orders", DELETE, finalizers=[FINALIZER], deleting=True, status=status)
    await restarted.settle()
    assert harness.kube.finalizers[ref] == []
    assert harness.kafka.count("delete_topics") == 0, "nothing left to delete, nothing else deleted"


# 6. A ghost never keeps claiming a topic.


async def test_an_object_deleted_while_the_watch_was_down_is_forgotten(harness: Harness) -> None:
    ghost = harness.apply("orders", namespace="a", created="2026-11-28T10:00:00Z")
    await harness.settle()
    del harness.kube.objects[ghost]  # deleted, and the DELETED event never came
    heir = harness.apply("orders", {"partitions": 3, "config": {"retention.ms": "5"}}, namespace="b")
    await harness.settle()
    assert harness.kube.condition(heir, "Stalled") == ("True", "TopicConflict")
    await harness.controller.resync()
    assert harness.controller.store.get(ghost) is None
    await harness.settle()
    assert harness.ready(heir)
    assert harness.kafka.topics["orders"].overrides["retention.ms"] == "5"


async def test_a_404_on_a_status_write_drops_the_object(harness: Harness) -> None:
    ghost = harness.apply("orders", namespace="a", created="2026-11-28T10:00:00Z")
    heir = harness.apply("orders", namespace="b", created="2026-11-28T11:00:00Z")
    del harness.kube.objects[ghost]
    await harness.settle()
    assert harness.controller.store.get(ghost) is None
    assert harness.ready(heir)
    assert ghost in harness.metrics.forgotten


# 7. The replication factor is lowered only by an explicit decrease.


async def test_more_replicas_than_asked_are_kept(harness: Harness) -> None:
    harness.kafka.brokers += (harness.kafka.brokers[0].__class__(4, "r4"),)
    harness.kafka.add_topic("orders", rf=4)
    ref = harness.apply("orders")
    await harness.settle()
    assert harness.reassigner.started == 0, "no replica taken away"
    assert all(len(r) == 4 for r in harness.kafka.topics["orders"].replicas)
    assert harness.ready(ref)
    harness.controller.enqueue_all()
    await harness.settle()
    assert harness.status(ref)["drift"][0]["key"] == "replicationFactor"
    assert harness.status(ref)["drift"][0]["severity"] == "benign"
    assert harness.ready(ref) and harness.reassigner.started == 0


async def test_an_explicit_decrease_is_carried_out(harness: Harness) -> None:
    harness.kafka.brokers += (harness.kafka.brokers[0].__class__(4, "r4"),)
    ref = harness.apply("orders", {"partitions": 3, "replicationFactor": 4})
    await harness.settle()
    assert harness.status(ref)["appliedReplicationFactor"] == 4
    harness.event(
        "MODIFIED",
        "orders",
        {"partitions": 3, "replicationFactor": 3},
        generation=2,
        status=harness.status(ref),
    )
    await harness.step()
    assert harness.reassigner.started == 1
    harness.reassigner.finish()
    await harness.settle()
    assert harness.ready(ref) and all(len(r) == 3 for r in harness.kafka.topics["orders"].replicas)


# 8. min.insync.replicas is raised only once the new replicas are in sync.


async def test_min_isr_waits_for_the_new_replicas(harness: Harness) -> None:
    harness.kafka.add_topic("orders", partitions=2, rf=1)
    ref = harness.apply("orders", {"partitions": 2})
    for _ in range(3):
        await harness.step()
        topic = harness.kafka.topics["orders"]
        assert all(len(r) == 3 for r in topic.replicas), "Kafka lists the new replicas while they catch up"
        assert MIN_INSYNC_REPLICAS not in topic.overrides, "not raised above the replicas in sync"
        assert not harness.ready(ref)
    harness.reassigner.finish()
    await harness.settle()
    assert harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] == "2"
    assert harness.ready(ref)


async def test_min_isr_is_not_raised_above_the_isr(harness: Harness) -> None:
    ref = harness.apply("orders")
    await harness.settle()
    topic = harness.kafka.topics["orders"]
    topic.overrides[MIN_INSYNC_REPLICAS] = "1"
    topic.out_of_sync = {2, 3}
    harness.controller.enqueue_all()
    await harness.step()
    assert topic.overrides[MIN_INSYNC_REPLICAS] == "1"
    assert harness.kube.condition(ref, "Reconciling") == ("True", "WaitingForReplicas")
    topic.out_of_sync = set()
    await harness.settle()
    assert topic.overrides[MIN_INSYNC_REPLICAS] == "2"


# 9. A move started just before the operator was killed is resumed, not taken for done.


async def test_a_move_without_status_is_read_back_from_kafka(harness: Harness) -> None:
    harness.kafka.add_topic("orders", partitions=2, rf=1)
    ref = harness.apply("orders", {"partitions": 2})
    await harness.step()
    assert harness.reassigner.started == 1
    # The operator dies here: a new one starts with the move running and nothing about it in status.
    fresh = Harness(harness.kafka, reassigner=harness.reassigner)
    fresh.apply("orders", {"partitions": 2})
    for _ in range(2):
        await fresh.step()
    overrides = harness.kafka.topics["orders"].overrides
    assert all(overrides.get(key) == "*" for key in THROTTLE_KEYS), "the throttle stays while the move runs"
    assert MIN_INSYNC_REPLICAS not in overrides
    assert not fresh.ready(ref)
    assert harness.reassigner.started == 1, "no second move"
    harness.reassigner.finish()
    await fresh.settle()
    assert fresh.ready(ref) and not any(key in overrides for key in THROTTLE_KEYS)


# 10. driftPolicy Report holds in every state.


async def test_report_still_only_reports_after_an_outage(harness: Harness) -> None:
    ref = harness.apply("orders", {"partitions": 3, "driftPolicy": "Report"})
    await harness.settle()
    harness.kafka.unavailable = True
    harness.controller.enqueue_all()
    await harness.step()
    assert harness.kube.condition(ref, "Ready") == ("False", "KafkaUnavailable")
    harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] = "1"
    harness.kafka.unavailable = False
    await harness.settle()
    assert harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] == "1", "reported, not reverted"
    assert harness.kube.condition(ref, "Drifted") == ("True", "DriftDetected")
    assert harness.status(ref)["lastAppliedGeneration"] == 1


# 11. A key removed from spec.config stops being overridden.


async def test_a_key_removed_from_the_spec_loses_its_override(harness: Harness) -> None:
    harness.kafka.add_topic("orders", overrides={"segment.ms": "3600000"})
    ref = harness.apply("orders", {"partitions": 3, "config": {"retention.ms": "1000"}})
    await harness.settle()
    recorded = harness.status(ref).get("managedConfigs")
    harness.event("MODIFIED", "orders", {"partitions": 3}, generation=2, status=harness.status(ref))
    await harness.settle()
    overrides = harness.kafka.topics["orders"].overrides
    assert "retention.ms" not in overrides, "back to the broker default"
    assert overrides["segment.ms"] == "3600000", "a key the spec never had is left alone"
    assert recorded == ["retention.ms"] and harness.status(ref)["managedConfigs"] == []
    assert harness.ready(ref)


# 12. Drift: judged by the action, cleared when Kafka matches again.


async def test_a_revert_is_judged_by_the_action_not_a_lagging_read(harness: Harness) -> None:
    ref = harness.apply("orders")
    await harness.settle()
    harness.kafka.read_lag = 1
    harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] = "1"
    harness.controller.enqueue_all()
    await harness.settle()
    assert harness.kube.reasons(ref)[-2:] == ["DriftDetected", "DriftReverted"]
    assert harness.status(ref).get("drift") in (None, [])
    assert harness.ready(ref)


async def test_reported_drift_clears_when_kafka_matches_again(harness: Harness) -> None:
    ref = harness.apply("orders", {"partitions": 3, "driftPolicy": "Report"})
    await harness.settle()
    harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] = "1"
    harness.controller.enqueue_all()
    await harness.settle()
    assert harness.kube.condition(ref, "Drifted") == ("True", "DriftDetected")
    harness.kafka.topics["orders"].overrides[MIN_INSYNC_REPLICAS] = "2"  # fixed by hand
    harness.controller.enqueue_all()
    await harness.settle()
    assert harness.kube.condition(ref, "Drifted") == ("False", "DriftResolved")
    assert harness.status(ref)["drift"] == []
    assert harness.metrics.drift[ref] == []
    assert harness.ready(ref)


# 13. One bad topic never blocks or mislabels the others.


async def test_a_topic_kafka_refuses_to_describe_marks_only_its_object(harness: Harness) -> None:
    good = harness.apply("good")
    bad = harness.apply("bad")
    harness.kafka.unreadable["bad"] = TopicError("TOPIC_AUTHORIZATION_FAILED", "not authorized", False)
    await harness.step()
    assert harness.ready(good)
    assert harness.kube.condition(bad, "Stalled") == ("True", "AuthorizationFailed")


async def test_a_part_of_a_read_without_answer_marks_only_its_topics(harness: Harness) -> None:
    good = harness.apply("good")
    slow = harness.apply("slow")
    harness.kafka.unanswered = {"slow"}
    await harness.step()
    assert harness.ready(good)
    assert harness.kube.condition(slow, "Reconciling") == ("True", "KafkaUnavailable")


async def test_a_failing_reassignment_client_marks_only_the_moving_topics(harness: Harness) -> None:
    harness.kafka.add_topic("narrow", rf=1)
    narrow = harness.apply("narrow")
    wide = harness.apply("wide")
    harness.reassigner.fail = True
    await harness.step()
    assert harness.ready(wide)
    assert harness.kube.condition(narrow, "Ready") == ("False", "KafkaUnavailable")


# 15. Metric series of a deleted object are all removed, and never come back.


async def test_metrics_of_a_deleted_object_do_not_come_back_from_a_running_pass(harness: Harness) -> None:
    ref = harness.apply("orders")
    await harness.settle()
    harness.kafka.gate = asyncio.Event()
    harness.controller.enqueue_all()
    running = asyncio.create_task(harness.step())
    await asyncio.sleep(0.01)
    harness.event("DELETED", "orders")
    harness.metrics.health.pop(ref, None)
    harness.kafka.gate.set()
    await running
    assert ref not in harness.metrics.health, "the pass that was running did not export it again"
    assert ref in harness.metrics.forgotten
