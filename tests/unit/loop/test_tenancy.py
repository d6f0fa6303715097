"""DurabilityPolicies in the loop: objects that break one are Stalled and touch nothing in Kafka, own
nothing and delete nothing; quotas count oldest first; adoption; the policies' status and metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from durabletopic.core.model import ObjectRef
from durabletopic.loop.controller import FINALIZER
from durabletopic.loop.tenancy import Tenancy, write_policy_statuses
from tests.unit.loop.conftest import Harness, until
from tests.unit.loop.fakes import body as durabletopic_body

TEAMS = {"team-a": {"tenant": "a"}, "team-b": {"tenant": "b"}}


def policy(name: str, generation: int = 1, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "generation": generation}, "spec": spec}


def prefixed(name: str, tenant: str, **spec: Any) -> dict[str, Any]:
    return policy(
        name,
        namespaceSelector={"matchLabels": {"tenant": tenant}},
        topicNamePrefixes=["{namespace}."],
        **spec,
    )


async def with_policies(harness: Harness, *policies: dict[str, Any]) -> None:
    """The API server holds these policies and the two teams' namespaces, and the operator has listed them."""
    harness.kube.namespaces.update(TEAMS)
    for body in policies:
        harness.kube.policies[body["metadata"]["name"]] = body
    await harness.controller.resync()


def stalled(harness: Harness, ref: ObjectRef) -> str:
    condition = harness.kube.condition(ref, "Stalled")
    assert condition == ("True", "PolicyViolation"), condition
    return next(c["message"] for c in harness.status(ref)["conditions"] if c["type"] == "Stalled")


async def test_each_team_gets_its_own_orders_and_cannot_name_the_others(harness: Harness) -> None:
    await with_policies(harness, prefixed("a", "a"), prefixed("b", "b"))
    a = harness.apply("orders", {"partitions": 3, "topicName": "team-a.orders"}, namespace="team-a")
    b = harness.apply("orders", {"partitions": 3, "topicName": "team-b.orders"}, namespace="team-b")
    intruder = harness.apply(
        "steal",
        {"partitions": 3, "topicName": "team-b.orders", "config": {"retention.ms": "1"}},
        namespace="team-a",
    )
    await harness.settle()
    assert harness.ready(a) and harness.ready(b)
    message = stalled(harness, intruder)
    assert "spec.topicName (team-b.orders) must start with 'team-a.'" in message
    assert "DurabilityPolicy a" in message and "topic-name-prefix" in message
    assert "retention.ms" not in harness.kafka.topics["team-b.orders"].overrides


async def test_an_older_violator_owns_nothing_and_deleting_it_keeps_the_topic(harness: Harness) -> None:
    harness.kube.namespaces.update(TEAMS)
    await harness.controller.resync()
    spec = {
        "partitions": 3,
        "topicName": "team-b.orders",
        "deletionPolicy": "Delete",
        "config": {"retention.ms": "1"},
    }
    old = harness.apply("steal", spec, namespace="team-a", created="2026-11-28T10:00:00Z")
    await harness.settle()
    assert harness.ready(old), "before any policy, the object owns the topic it created"
    legit = harness.apply(
        "orders",
        {"partitions": 3, "topicName": "team-b.orders"},
        namespace="team-b",
        created="2026-11-28T11:00:00Z",
    )
    await harness.settle()
    assert harness.kube.condition(legit, "Stalled") == ("True", "TopicConflict")

    harness.kube.policies.update({"a": prefixed("a", "a"), "b": prefixed("b", "b")})
    for body in harness.kube.policies.values():
        harness.controller.observe_policy_event("ADDED", body)
    await harness.settle()
    stalled(harness, old)
    assert harness.ready(legit), "the object the policies allow owns the topic now"
    assert harness.status(legit)["topicId"] == harness.kafka.topics["team-b.orders"].topic_id
    assert harness.status(legit)["unmanagedConfigs"] == ["retention.ms"], "another object's key, reported"

    harness.event(
        "MODIFIED",
        "steal",
        spec,
        namespace="team-a",
        finalizers=[FINALIZER],
        deleting=True,
        status=harness.status(old),
        created="2026-11-28T10:00:00Z",
    )
    await harness.settle()
    assert "team-b.orders" in harness.kafka.topics
    assert harness.kafka.count("delete_topics") == 0
    assert harness.kube.finalizers[old] == []
    assert "breaks DurabilityPolicy a (rule topic-name-prefix)" in harness.kube.events[-1][3]


async def test_internal_topics_are_refused_without_any_policy(harness: Harness) -> None:
    harness.kafka.add_topic("__consumer_offsets", partitions=50)
    harness.kafka.add_topic("_schemas", partitions=1, overrides={"cleanup.policy": "compact"})
    offsets = harness.apply("offsets", {"partitions": 60, "topicName": "__consumer_offsets"})
    schemas = harness.apply(
        "schemas", {"partitions": 1, "topicName": "_schemas", "config": {"cleanup.policy": "delete"}}
    )
    await harness.settle()
    assert "internal or system topic" in stalled(harness, offsets)
    stalled(harness, schemas)
    assert len(harness.kafka.topics["__consumer_offsets"].replicas) == 50
    assert harness.kafka.topics["_schemas"].overrides == {"cleanup.policy": "compact"}
    assert harness.kafka.count("create_partitions") == 0 and harness.kafka.count("alter_configs") == 0


async def test_an_exception_setting_lets_one_internal_topic_be_managed(harness: Harness) -> None:
    harness.controller.tenancy = Tenancy({"connect-offsets"})
    ref = harness.apply("offsets", {"partitions": 3, "topicName": "connect-offsets"})
    assert harness.controller.queue.keys() == [ref], "the new copy is looked at again at once"
    await harness.settle()
    assert harness.ready(ref), harness.kube.events


async def test_adoption_forbidden_leaves_an_unmanaged_topic_alone(harness: Harness) -> None:
    await with_policies(harness, prefixed("a", "a"))
    topic_id = harness.kafka.add_topic("team-a.legacy", partitions=2, overrides={"retention.ms": "99"})
    ref = harness.apply("legacy", {"partitions": 4, "topicName": "team-a.legacy"}, namespace="team-a")
    await harness.settle()
    message = stalled(harness, ref)
    assert f"id {topic_id}" in message and "adoption Forbidden" in message
    assert len(harness.kafka.topics["team-a.legacy"].replicas) == 2
    assert harness.kafka.topics["team-a.legacy"].overrides == {"retention.ms": "99"}
    assert harness.kafka.count("alter_configs") == 0 and harness.kafka.count("create_partitions") == 0


async def test_adoption_annotated_takes_over_only_the_named_topic_id(harness: Harness) -> None:
    await with_policies(harness, prefixed("a", "a", adoption="Annotated"))
    topic_id = harness.kafka.add_topic("team-a.legacy", partitions=2)
    spec = {"partitions": 2, "topicName": "team-a.legacy"}
    ref = harness.apply(
        "legacy", spec, namespace="team-a", annotations={"durabletopic.dev/accept-topic-id": "id-0"}
    )
    await harness.settle()
    assert f"durabletopic.dev/accept-topic-id={topic_id}" in stalled(harness, ref)
    harness.event(
        "MODIFIED",
        "legacy",
        spec,
        namespace="team-a",
        annotations={"durabletopic.dev/accept-topic-id": topic_id},
        status=harness.status(ref),
    )
    assert harness.controller.queue.keys() == [ref], "the new copy is looked at again at once"
    await harness.settle()
    assert harness.ready(ref), harness.kube.events
    assert harness.status(ref)["topicId"] == topic_id


async def test_no_policy_adopts_as_before(harness: Harness) -> None:
    harness.kafka.add_topic("legacy", partitions=3)
    ref = harness.apply("legacy")
    assert harness.controller.queue.keys() == [ref], "the new copy is looked at again at once"
    await harness.settle()
    assert harness.ready(ref), harness.kube.events


async def test_a_topic_created_for_an_object_deleted_with_retain_is_not_adoption(harness: Harness) -> None:
    await with_policies(harness, prefixed("a", "a"))
    spec = {"partitions": 3, "topicName": "team-a.orders"}
    first = harness.apply("orders", spec, namespace="team-a")
    await harness.settle()
    harness.event("DELETED", "orders", spec, namespace="team-a")
    second = harness.apply("orders-v2", spec, namespace="team-a")
    await harness.settle()
    assert first != second and harness.ready(second)


async def test_the_eleventh_topic_of_a_namespace_limited_to_ten_is_refused(harness: Harness) -> None:
    await with_policies(harness, prefixed("a", "a", maxTopicsPerNamespace=10))
    refs = [
        harness.apply(
            f"t{i:02d}",
            {"partitions": 1, "topicName": f"team-a.t{i:02d}"},
            namespace="team-a",
            created=f"2026-11-28T10:00:{i:02d}Z",
        )
        for i in range(11)
    ]
    await harness.settle()
    assert all(harness.ready(r) for r in refs[:10])
    message = stalled(harness, refs[10])
    assert "maxTopicsPerNamespace" in message and "10" in message
    assert "team-a.t10" not in harness.kafka.topics
    harness.event("DELETED", "t00", namespace="team-a")
    await harness.settle()
    assert harness.ready(refs[10]), "a freed quota goes to the next object"


async def test_partitions_per_namespace_count_oldest_first(harness: Harness) -> None:
    await with_policies(harness, prefixed("a", "a", maxPartitionsPerNamespace=10))
    big = harness.apply(
        "big",
        {"partitions": 8, "topicName": "team-a.big"},
        namespace="team-a",
        created="2026-11-28T10:00:00Z",
    )
    over = harness.apply(
        "over",
        {"partitions": 3, "topicName": "team-a.over"},
        namespace="team-a",
        created="2026-11-28T10:00:01Z",
    )
    fits = harness.apply(
        "fits",
        {"partitions": 2, "topicName": "team-a.fits"},
        namespace="team-a",
        created="2026-11-28T10:00:02Z",
    )
    await harness.settle()
    assert harness.ready(big) and harness.ready(fits)
    assert "maxPartitionsPerNamespace" in stalled(harness, over)


async def test_stricter_floors_stall_existing_objects_and_weaken_nothing(harness: Harness) -> None:
    await with_policies(harness, prefixed("a", "a"))
    ref = harness.apply("orders", {"partitions": 3, "topicName": "team-a.orders"}, namespace="team-a")
    assert harness.controller.queue.keys() == [ref], "the new copy is looked at again at once"
    await harness.settle()
    assert harness.ready(ref), harness.kube.events
    before = dict(harness.kafka.topics["team-a.orders"].overrides)
    stricter = prefixed("a", "a", generation=2, minReplicationFactor=5, deletionPolicies=["Retain"])
    harness.kube.policies["a"] = stricter
    harness.controller.observe_policy_event("MODIFIED", stricter)
    await harness.settle()
    assert "below the floor of 5 set by DurabilityPolicy a" in stalled(harness, ref)
    assert harness.kafka.topics["team-a.orders"].overrides == before
    assert all(len(r) == 3 for r in harness.kafka.topics["team-a.orders"].replicas)
    assert "team-a.orders" in harness.kafka.topics


async def test_relabelled_namespace_is_judged_again(harness: Harness) -> None:
    await with_policies(harness, prefixed("a", "a"))
    ref = harness.apply("orders", {"partitions": 3}, namespace="other")
    assert harness.controller.queue.keys() == [ref], "the new copy is looked at again at once"
    await harness.settle()
    assert harness.ready(ref), harness.kube.events
    harness.controller.observe_namespace_event(
        "MODIFIED", {"metadata": {"name": "other", "labels": {"tenant": "a"}}}
    )
    assert harness.controller.queue.keys() == [ref]
    await harness.settle()
    assert "must start with 'other.'" in stalled(harness, ref)


async def test_policy_status_and_metrics_count_what_it_governs(harness: Harness) -> None:
    await with_policies(
        harness,
        prefixed("a", "a"),
        policy("overlap", namespaceSelector={"matchLabels": {"tenant": "b"}}, topicNamePrefixes=["team-a."]),
    )
    harness.apply("orders", {"partitions": 3, "topicName": "team-a.orders"}, namespace="team-a")
    harness.apply("bad", {"partitions": 3, "topicName": "x.bad"}, namespace="team-a")
    await harness.settle()
    writer = write_policy_statuses(
        harness.controller.tenancy,
        harness.controller.store,
        harness.kube,
        harness.metrics,
        harness.controller.now,
    )
    task = asyncio.ensure_future(writer)
    try:
        await until(lambda: "a" in harness.kube.policy_statuses and "overlap" in harness.kube.policy_statuses)
    finally:
        task.cancel()
    status = harness.kube.policy_statuses["a"]
    assert (status["namespaces"], status["durableTopics"], status["violations"]) == (1, 2, 1)
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {"Ready": ("True", "Enforced"), "Conflicting": ("True", "OverlappingPrefixes")}
    assert status["conflictingPolicies"] == ["overlap"]
    assert harness.metrics.policy_governed == {"a": (1, 2), "overlap": (1, 0)}
    assert harness.metrics.policy_violations == {("a", "topic-name-prefix"): 1}


async def test_a_topic_created_by_a_pass_whose_outcome_was_dropped_is_not_adoption(harness: Harness) -> None:
    await with_policies(harness, prefixed("a", "a"))
    spec = {"partitions": 3, "topicName": "team-a.orders", "deletionPolicy": "Delete"}
    ref = harness.apply("orders", spec, namespace="team-a")
    gate = asyncio.Event()
    harness.kafka.gate = gate
    running = asyncio.ensure_future(harness.step())
    await until(lambda: harness.kafka.calls)
    # The finalizer the pass wrote comes back as a watch event while the pass runs: its outcome is dropped.
    harness.event("MODIFIED", "orders", spec, namespace="team-a", finalizers=[FINALIZER])
    gate.set()
    harness.kafka.gate = None
    await running
    assert "team-a.orders" in harness.kafka.topics and harness.kube.condition(ref, "Ready") is None
    assert harness.controller.queue.keys() == [ref], "the new copy is looked at again at once"
    await harness.settle()
    assert harness.ready(ref), harness.kube.events


async def test_a_new_leader_knows_every_policy_before_its_first_pass(harness: Harness) -> None:
    """No watch event of the policy has come yet (a restart, a lease hand-over): the listing that
    precedes the first pass brings it, so the intruder is refused, not let write."""
    harness.kube.namespaces.update(TEAMS)
    harness.kube.policies["a"] = prefixed("a", "a")
    harness.kafka.add_topic("team-b.orders", overrides={"retention.ms": "604800000"})
    spec = {"partitions": 3, "topicName": "team-b.orders", "config": {"retention.ms": "1"}}
    event = durabletopic_body("steal", spec, namespace="team-a")
    harness.kube.objects[ObjectRef("team-a", "steal")] = event
    await harness.controller.resync()
    await harness.settle()
    stalled(harness, ObjectRef("team-a", "steal"))
    assert harness.kafka.topics["team-b.orders"].overrides == {"retention.ms": "604800000"}
