"""Conflicts, deletion and pausing: decided on the store's claims and the recorded topic id."""

from __future__ import annotations

from durabletopic.loop.controller import FINALIZER
from tests.unit.loop.conftest import Harness

DELETE = {"partitions": 3, "deletionPolicy": "Delete"}


async def test_older_object_owns_the_topic_and_the_younger_changes_nothing(harness: Harness) -> None:
    old = harness.apply("orders", namespace="a", created="2026-11-28T10:00:00Z")
    young = harness.apply(
        "orders",
        {"partitions": 3, "config": {"retention.ms": "1"}},
        namespace="b",
        created="2026-11-28T11:00:00Z",
    )
    await harness.settle()
    assert harness.ready(old)
    assert harness.kube.condition(young, "Stalled") == ("True", "TopicConflict")
    assert "retention.ms" not in harness.kafka.topics["orders"].overrides
    harness.event("DELETED", "orders", namespace="a")
    assert harness.controller.queue.keys() == [young], "the other claimant is looked at again"
    await harness.settle()
    assert harness.ready(young)
    assert harness.kafka.topics["orders"].overrides["retention.ms"] == "1"


async def test_delete_policy_deletes_the_topic_it_created(harness: Harness) -> None:
    ref = harness.apply("orders", DELETE)
    await harness.settle()
    assert harness.kube.finalizers[ref] == [FINALIZER]
    status = harness.status(ref)
    harness.event("MODIFIED", "orders", DELETE, finalizers=[FINALIZER], deleting=True, status=status)
    await harness.settle()
    assert "orders" not in harness.kafka.topics
    assert harness.kube.finalizers[ref] == []
    assert harness.kube.reasons(ref)[-1] == "TopicDeleted"


async def test_retain_policy_never_touches_kafka_on_deletion(harness: Harness) -> None:
    ref = harness.apply("orders")
    await harness.settle()
    assert ref not in harness.kube.finalizers, "Retain puts no finalizer on the object"
    harness.event("MODIFIED", "orders", deleting=True, status=harness.status(ref))
    await harness.settle()
    assert "orders" in harness.kafka.topics
    assert harness.kafka.count("delete_topics") == 0


async def test_a_topic_recreated_by_someone_else_is_kept(harness: Harness) -> None:
    ref = harness.apply("orders", DELETE)
    await harness.settle()
    status = harness.status(ref)
    del harness.kafka.topics["orders"]
    harness.kafka.add_topic("orders")
    harness.event("MODIFIED", "orders", DELETE, finalizers=[FINALIZER], deleting=True, status=status)
    await harness.settle()
    assert "orders" in harness.kafka.topics
    assert harness.kafka.count("delete_topics") == 0
    assert harness.kube.reasons(ref)[-1] == "TopicRetained"
    assert harness.kube.finalizers[ref] == []


async def test_paused_object_makes_no_kafka_call(harness: Harness) -> None:
    ref = harness.apply("orders", annotations={"durabletopic.dev/paused": "true"})
    await harness.settle()
    assert harness.kafka.calls == []
    assert harness.kube.condition(ref, "Paused") == ("True", "Paused")
    assert harness.status(ref)["observedGeneration"] == 0, "a paused generation is not marked as applied"
