"""Replication-factor changes by partition reassignment, end to end on the test bed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import ConfigResource, ConfigSource, ResourceType

from durabletopic.adapters.kafka.reassign import Reassigner
from tests.e2e import helpers
from tests.e2e.helpers import Kube, condition, metric_value, ready, reason_of
from tests.testbed.operator_process import OperatorProcess

pytestmark = [pytest.mark.testbed]

MESSAGES = 10_000
THROTTLE = 256 * 1024  # bytes/s per broker: the 10 MB move takes tens of seconds, long enough to interrupt


@pytest.fixture
def slow_operator(testbed, operator: OperatorProcess, tmp_path) -> Iterator[OperatorProcess]:  # type: ignore[no-untyped-def]
    """The operator with a tight replication throttle, so that a move lasts long enough to interrupt."""
    operator.stop()
    slow = OperatorProcess(
        bootstrap_servers=testbed.bootstrap_servers,
        kubeconfig=operator.kubeconfig,
        log_path=tmp_path / "slow-operator.log",
        env={**operator.extra_env, "DURABLETOPIC_REASSIGNMENT_THROTTLE_BYTES_PER_SECOND": str(THROTTLE)},
    )
    slow.start()
    try:
        yield slow
    finally:
        slow.stop()
        operator.start()


def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 20}
    )
    failures: list[str] = []
    payload = b"x" * 1000
    for number in range(count):
        producer.produce(
            topic,
            key=str(number).encode(),
            value=payload,
            on_delivery=lambda err, _: err and failures.append(str(err)),
        )
        if number % 1000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    assert not failures


def consume_all(bootstrap: str, topic: str, expected: int) -> set[int]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    try:
        while len(seen) < expected and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=1):
                if message.error() is None:
                    seen.add(int(message.key()))
    finally:
        consumer.close()
    return seen


def ongoing(bootstrap: str) -> dict:  # type: ignore[type-arg]
    reassigner = Reassigner(bootstrap)
    try:
        return asyncio.run(reassigner.ongoing())
    finally:
        reassigner.close()


def broker_throttle_rates(kafka_admin, broker_ids: list[int]) -> dict[int, dict[str, str]]:  # type: ignore[no-untyped-def]
    rates: dict[int, dict[str, str]] = {}
    for broker in broker_ids:
        resource = ConfigResource(ResourceType.BROKER, str(broker))
        entries = kafka_admin.describe_configs([resource], request_timeout=10)[resource].result()
        rates[broker] = {
            key: entry.value
            for key, entry in entries.items()
            if key.endswith("replication.throttled.rate")
            and entry.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value
        }
    return rates


def test_rf_1_to_3_survives_an_operator_crash(
    kube: Kube, namespace: str, kafka_admin, testbed, slow_operator: OperatorProcess
) -> None:  # type: ignore[no-untyped-def]
    topic = f"{namespace}.grow-rf"
    helpers.create(kafka_admin, topic, 3, 1, {})
    produce(testbed.bootstrap_servers, topic, MESSAGES)

    kube.create(namespace, "grow-rf", {"topicName": topic, "partitions": 3})
    reason_of(kube, namespace, "grow-rf", "Reconciling", "Reassigning", timeout=30)
    obj = kube.get(namespace, "grow-rf")
    assert obj["status"]["replicasChange"]["state"] in ("Ongoing", "Pending")
    assert obj["status"]["replicasChange"]["targetReplicationFactor"] == 3
    facts = helpers.describe(kafka_admin, topic)
    assert facts is not None
    assert facts.overrides.get("leader.replication.throttled.replicas") == "*"
    assert facts.overrides.get("follower.replication.throttled.replicas") == "*"
    rate = str(THROTTLE)
    assert broker_throttle_rates(kafka_admin, [1, 2, 3]) == {
        b: {"leader.replication.throttled.rate": rate, "follower.replication.throttled.rate": rate}
        for b in (1, 2, 3)
    }

    slow_operator.kill()
    assert topic in ongoing(testbed.bootstrap_servers), "the move goes on without the operator"
    slow_operator.start()

    obj = ready(kube, namespace, "grow-rf", timeout=180)
    change = obj["status"]["replicasChange"]
    assert (change["state"], change["partitionsDone"], change["partitionsTotal"]) == ("Done", 3, 3)
    restarted_moves = metric_value(
        slow_operator.metrics(), "durabletopic_admin_requests_total", op="alter_reassignments"
    )
    assert restarted_moves in (None, 0.0), "the restarted operator must not start a second reassignment"

    facts = helpers.describe(kafka_admin, topic)
    assert facts is not None and facts.replication_factor == 3
    assert facts.overrides["min.insync.replicas"] == "2"
    assert not any(k.endswith("throttled.replicas") for k in facts.overrides)
    description = kafka_admin.describe_topics(__import__("confluent_kafka").TopicCollection([topic]))[
        topic
    ].result()
    racks = {node.id: node.rack for p in description.partitions for node in p.replicas}
    for partition in description.partitions:
        assert {racks[n.id] for n in partition.replicas} == {"r1", "r2", "r3"}
    assert broker_throttle_rates(kafka_admin, [1, 2, 3]) == {1: {}, 2: {}, 3: {}}
    assert consume_all(testbed.bootstrap_servers, topic, MESSAGES) == set(range(MESSAGES))


@pytest.mark.usefixtures("operator")
def test_unsafe_or_impossible_changes_are_refused(kube: Kube, namespace: str, kafka_admin, testbed) -> None:  # type: ignore[no-untyped-def]
    topic = f"{namespace}.fixed-rf"
    kube.create(namespace, "fixed-rf", {"topicName": topic, "partitions": 1})
    ready(kube, namespace, "fixed-rf")

    rejected = testbed.kubectl(
        "patch",
        "dt",
        "fixed-rf",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"replicationFactor":2}}',
        check=False,
    )
    assert (
        rejected.returncode != 0
        and "spec.minInSyncReplicas must be less than spec.replicationFactor" in rejected.stderr
    )

    kube.patch(namespace, "fixed-rf", {"spec": {"replicationFactor": 2, "minInSyncReplicas": 1}})
    obj = reason_of(kube, namespace, "fixed-rf", "Stalled", "ReplicationFactorDecreaseRefused")
    assert "spec.replicationFactor" in condition(obj, "Stalled")["message"]  # type: ignore[index]

    kube.patch(namespace, "fixed-rf", {"spec": {"replicationFactor": 4, "minInSyncReplicas": 2}})
    obj = reason_of(kube, namespace, "fixed-rf", "Stalled", "InsufficientBrokers")
    assert "nothing is moved" in condition(obj, "Stalled")["message"]  # type: ignore[index]
    time.sleep(1)
    facts = helpers.describe(kafka_admin, topic)
    assert facts is not None and facts.replication_factor == 3
    assert topic not in ongoing(testbed.bootstrap_servers)
