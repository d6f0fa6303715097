"""What the operator never does, shown on the real test bed where it is visible in Kafka: it never
writes to or deletes a topic that is not the one it manages, never deletes a topic another object
still declares or that a paused object names, never takes replicas away that nobody asked to take
away, never raises min.insync.replicas above the replicas in sync, and lets a removed config go."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.e2e import helpers
from tests.e2e.conftest import operator_instead
from tests.e2e.helpers import Kube, condition, consume_all, produce, ready, reason_of, wait_for
from tests.testbed.operator_process import OperatorProcess

pytestmark = [pytest.mark.testbed]

DELETE = {"partitions": 1, "deletionPolicy": "Delete"}


@pytest.fixture
def second_namespace(testbed) -> Iterator[str]:  # type: ignore[no-untyped-def]
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    testbed.kubectl("create", "namespace", name)
    yield name
    testbed.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def low_floor_operator(operator: OperatorProcess, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The operator with floors of RF 2 and min ISR 1, so that a topic can have more replicas than asked."""
    floors = {"DURABLETOPIC_MIN_REPLICATION_FACTOR": "2", "DURABLETOPIC_MIN_INSYNC_REPLICAS": "1"}
    with operator_instead(operator, tmp_path / "low-floor-operator.log", **floors) as low:
        yield low


def test_a_replaced_topic_is_never_written_nor_deleted(
    kube: Kube, namespace: str, kafka_admin, operator
) -> None:  # type: ignore[no-untyped-def]
    topic = f"{namespace}.replaced"
    kube.create(namespace, "replaced", {**DELETE, "topicName": topic})
    pinned = ready(kube, namespace, "replaced")["status"]["topicId"]
    helpers.delete(kafka_admin, topic)
    wait_for("topic gone", lambda: helpers.describe(kafka_admin, topic) is None, 30)
    theirs = helpers.create(kafka_admin, topic, 1, 3, {"min.insync.replicas": "1", "retention.ms": "60000"})
    stalled = reason_of(kube, namespace, "replaced", "Stalled", "TopicReplaced", timeout=30)
    assert stalled["status"]["topicId"] == pinned
    assert "accept-topic-id" in condition(stalled, "Stalled")["message"]  # type: ignore[index]
    time.sleep(3)  # a sweep or more
    facts = helpers.describe(kafka_admin, topic)
    assert facts is not None and facts.topic_id == theirs.topic_id
    assert facts.overrides["min.insync.replicas"] == "1", "nothing written to a topic someone else created"
    kube.delete(namespace, "replaced")
    wait_for("object gone", lambda: not kube.exists(namespace, "replaced"), 30)
    facts = helpers.describe(kafka_admin, topic)
    assert facts is not None and facts.topic_id == theirs.topic_id, "deletionPolicy Delete did not delete it"


def test_moving_an_object_between_namespaces_keeps_topic_and_data(  # type: ignore[no-untyped-def]
    kube: Kube, namespace: str, second_namespace: str, kafka_admin, bootstrap_servers: str, operator
) -> None:
    topic = f"{namespace}.moved"
    kube.create(namespace, "orders", {**DELETE, "topicName": topic})
    topic_id = ready(kube, namespace, "orders")["status"]["topicId"]
    produce(bootstrap_servers, topic, 500)
    kube.create(second_namespace, "orders", {**DELETE, "topicName": topic})
    reason_of(kube, second_namespace, "orders", "Stalled", "TopicConflict")
    kube.delete(namespace, "orders")
    wait_for("the old object gone", lambda: not kube.exists(namespace, "orders"), 30)
    moved = ready(kube, second_namespace, "orders", timeout=30)
    assert moved["status"]["topicId"] == topic_id
    facts = helpers.describe(kafka_admin, topic)
    assert facts is not None and facts.topic_id == topic_id
    assert consume_all(bootstrap_servers, topic, 500) == set(range(500)), "every message is still there"
    events = kube.events(namespace, "orders")
    assert any(reason == "TopicRetained" and "still declares" in message for _, reason, message in events)


def test_deleting_a_paused_object_keeps_its_topic(kube: Kube, namespace: str, kafka_admin, operator) -> None:  # type: ignore[no-untyped-def]
    topic = f"{namespace}.paused"
    kube.create(namespace, "paused", {**DELETE, "topicName": topic})
    topic_id = ready(kube, namespace, "paused")["status"]["topicId"]
    kube.patch(namespace, "paused", {"metadata": {"annotations": {"durabletopic.dev/paused": "true"}}})
    reason_of(kube, namespace, "paused", "Paused", "Paused")
    kube.delete(namespace, "paused")
    wait_for("object gone", lambda: not kube.exists(namespace, "paused"), 30)
    facts = helpers.describe(kafka_admin, topic)
    assert facts is not None and facts.topic_id == topic_id


def test_deletion_while_kafka_is_down_says_why_and_can_be_let_go(  # type: ignore[no-untyped-def]
    kube: Kube, namespace: str, kafka_admin, testbed_faults, operator
) -> None:
    topic = f"{namespace}.stuck"
    kube.create(namespace, "stuck", {**DELETE, "topicName": topic})
    topic_id = ready(kube, namespace, "stuck")["status"]["topicId"]
    testbed_faults.kill_all_brokers()
    try:
        kube.delete(namespace, "stuck")
        pending = reason_of(kube, namespace, "stuck", "Reconciling", "DeletePending", timeout=60)
        message = condition(pending, "Reconciling")["message"]  # type: ignore[index]
        assert "could not be deleted" in message and "durabletopic.dev/retain-topic=true" in message
        wait_for(
            "a DeleteFailed event",
            lambda: [e for e in kube.events(namespace, "stuck") if e[1] == "DeleteFailed"],
            timeout=30,
        )
        kube.patch(
            namespace, "stuck", {"metadata": {"annotations": {"durabletopic.dev/retain-topic": "true"}}}
        )
        wait_for("object let go", lambda: not kube.exists(namespace, "stuck"), 30)
    finally:
        testbed_faults.start_all_brokers()
    facts = wait_for(
        "the topic, after the brokers are back", lambda: helpers.describe(kafka_admin, topic), 60
    )
    assert facts.topic_id == topic_id


def test_more_replicas_than_asked_are_never_taken_away(  # type: ignore[no-untyped-def]
    kube: Kube, namespace: str, kafka_admin, low_floor_operator: OperatorProcess
) -> None:
    topic = f"{namespace}.wide"
    helpers.create(kafka_admin, topic, 2, 3, {})
    kube.create(
        namespace,
        "wide",
        {"topicName": topic, "partitions": 2, "replicationFactor": 2, "minInSyncReplicas": 1},
    )
    obj = ready(kube, namespace, "wide", timeout=30)
    reported = wait_for(
        "the extra replica reported as benign drift",
        lambda: next(
            (
                d
                for d in kube.get(namespace, "wide")["status"].get("drift") or []
                if d["key"] == "replicationFactor"
            ),
            None,
        ),
        timeout=20,
    )
    assert (reported["severity"], reported["action"]) == ("benign", "reported")
    facts = helpers.describe(kafka_admin, topic)
    assert facts is not None and facts.replication_factor == 3
    assert condition(kube.get(namespace, "wide"), "Ready")["status"] == "True"  # type: ignore[index]
    assert "more durable than asked" in condition(obj, "Ready")["message"]  # type: ignore[index]


def test_acks_all_producers_keep_succeeding_while_replication_factor_rises(  # type: ignore[no-untyped-def]
    kube: Kube, namespace: str, kafka_admin, bootstrap_servers: str, slow_operator: OperatorProcess
) -> None:
    """An RF 1 topic holding data is adopted and moved to RF 3 under a slow throttle, while a producer
    with acks=all writes all along: no send fails, and min.insync.replicas never exceeds the ISR."""
    topic = f"{namespace}.rising"
    helpers.create(kafka_admin, topic, 3, 1, {})
    produce(bootstrap_servers, topic, 3000)
    failures: list[str] = []
    acknowledged = 0
    stop = threading.Event()

    def write() -> None:
        nonlocal acknowledged
        producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "acks": "all",
                "enable.idempotence": True,
                "delivery.timeout.ms": 10000,
                "linger.ms": 5,
            }
        )

        def delivered(error: object, _: object) -> None:
            nonlocal acknowledged
            if error is None:
                acknowledged += 1
            else:
                failures.append(str(error))

        number = 3000
        while not stop.is_set():
            producer.produce(topic, key=str(number).encode(), value=b"y" * 200, on_delivery=delivered)
            producer.poll(0)
            number += 1
            time.sleep(0.005)
        producer.flush(30)

    violations: list[str] = []

    def watch() -> None:
        while not stop.is_set():
            facts = helpers.describe_partitions(kafka_admin, topic)
            if facts is not None:
                min_isr, isr_sizes = facts
                if min_isr > min(isr_sizes):
                    violations.append(f"min.insync.replicas {min_isr} with ISR sizes {isr_sizes}")
            time.sleep(0.2)

    threads = [threading.Thread(target=write), threading.Thread(target=watch)]
    for thread in threads:
        thread.start()
    try:
        kube.create(namespace, "rising", {"topicName": topic, "partitions": 3})
        reason_of(kube, namespace, "rising", "Reconciling", "Reassigning", timeout=30)
        ready(kube, namespace, "rising", timeout=240)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert failures == [], failures[:5]
    assert violations == [], violations[:5]
    assert acknowledged > 0
    facts = helpers.describe(kafka_admin, topic)
    assert (
        facts is not None and facts.replication_factor == 3 and facts.overrides["min.insync.replicas"] == "2"
    )


def test_a_config_removed_from_the_spec_falls_back_to_the_default(  # type: ignore[no-untyped-def]
    kube: Kube, namespace: str, kafka_admin, operator
) -> None:
    topic = f"{namespace}.trimmed"
    helpers.create(kafka_admin, topic, 1, 3, {"segment.ms": "3600000"})
    kube.create(
        namespace, "trimmed", {"topicName": topic, "partitions": 1, "config": {"retention.ms": "7200000"}}
    )
    obj = ready(kube, namespace, "trimmed")
    assert helpers.describe(kafka_admin, topic).overrides["retention.ms"] == "7200000"  # type: ignore[union-attr]
    kube.patch(namespace, "trimmed", {"spec": {"config": {"retention.ms": None}}})
    ready(kube, namespace, "trimmed")
    facts = wait_for(
        "retention.ms back to the broker default",
        lambda: (f := helpers.describe(kafka_admin, topic)) and "retention.ms" not in f.overrides and f,
        timeout=20,
    )
    assert facts.overrides["segment.ms"] == "3600000", "the adopted topic's own setting is left alone"
    assert obj["status"]["managedConfigs"] == ["retention.ms"]
