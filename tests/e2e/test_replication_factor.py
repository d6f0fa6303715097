"""Replication-factor changes by partition reassignment, end to end on the test bed."""

from __future__ import annotations

import asyncio
import time

import pytest
from confluent_kafka.admin import ConfigResource, ConfigSource, ResourceType

from durabletopic.adapters.kafka.reassign import Reassigner
from tests.e2e import helpers
from tests.e2e.conftest import SLOW_THROTTLE
from tests.e2e.helpers import Kube, condition, consume_all, metric_value, produce, ready, reason_of
from tests.testbed.operator_process import OperatorProcess

pytestmark = [pytest.mark.testbed]

MESSAGES = 10_000


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
    rate = str(SLOW_THROTTLE)
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
