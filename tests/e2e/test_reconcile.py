"""The core reconcile, end to end: the operator as a real process, real Kafka, real API server.

Every test checks both sides: the topic as Kafka describes it and the object's status.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e import helpers
from tests.e2e.helpers import Kube, condition, ready, reason_of, wait_for

pytestmark = [pytest.mark.testbed, pytest.mark.usefixtures("operator")]


def test_create_enforces_durability(kube: Kube, namespace: str, kafka_admin) -> None:  # type: ignore[no-untyped-def]
    topic = f"{namespace}.orders"
    kube.create(
        namespace, "orders", {"topicName": topic, "partitions": 3, "config": {"retention.ms": "3600000"}}
    )
    obj = ready(kube, namespace, "orders")

    facts = helpers.describe(kafka_admin, topic)
    assert facts is not None
    assert (facts.partitions, facts.replication_factor) == (3, 3)
    assert facts.overrides["min.insync.replicas"] == "2"
    assert facts.overrides["unclean.leader.election.enable"] == "false"
    assert facts.overrides["retention.ms"] == "3600000"

    status = obj["status"]
    assert status["topicId"] == facts.topic_id
    assert (
        status["topicName"],
        status["partitions"],
        status["replicationFactor"],
        status["minInSyncReplicas"],
    ) == (
        topic,
        3,
        3,
        2,
    )
    assert condition(obj, "Ready")["reason"] == "Reconciled"  # type: ignore[index]
    assert condition(obj, "Stalled")["status"] == "False"  # type: ignore[index]
    assert condition(obj, "ReplicasHealthy")["reason"] == "AllInSync"  # type: ignore[index]
    assert "finalizers" not in obj["metadata"] or not obj["metadata"]["finalizers"]


def test_below_floor_is_refused_and_nothing_created(kube: Kube, namespace: str, kafka_admin) -> None:  # type: ignore[no-untyped-def]
    topic = f"{namespace}.weak"
    kube.create(
        namespace,
        "weak",
        {"topicName": topic, "partitions": 1, "replicationFactor": 2, "minInSyncReplicas": 1},
    )
    obj = reason_of(kube, namespace, "weak", "Stalled", "PolicyViolation")
    message = condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert "spec.replicationFactor" in message and "floor of 3" in message
    assert "spec.minInSyncReplicas" in message
    assert helpers.describe(kafka_admin, topic) is None


def test_insufficient_brokers_and_invalid_config(kube: Kube, namespace: str, kafka_admin) -> None:  # type: ignore[no-untyped-def]
    big = f"{namespace}.big"
    bad = f"{namespace}.bad"
    kube.create(namespace, "big", {"topicName": big, "partitions": 1, "replicationFactor": 4})
    kube.create(namespace, "bad", {"topicName": bad, "partitions": 1, "config": {"retention.ms": "abc"}})
    reason_of(kube, namespace, "big", "Stalled", "InsufficientBrokers")
    obj = reason_of(kube, namespace, "bad", "Stalled", "InvalidConfig")
    assert "retention.ms" in condition(obj, "Stalled")["message"]  # type: ignore[index]
    assert helpers.describe(kafka_admin, big) is None
    assert helpers.describe(kafka_admin, bad) is None


def test_adopt_keeps_data_and_sets_durability_incrementally(kube: Kube, namespace: str, kafka_admin) -> None:  # type: ignore[no-untyped-def]
    topic = f"{namespace}.legacy"
    before = helpers.create(kafka_admin, topic, 1, 3, {"min.insync.replicas": "1", "retention.ms": "1234567"})

    kube.create(namespace, "legacy", {"topicName": topic, "partitions": 2})
    obj = ready(kube, namespace, "legacy")

    after = helpers.describe(kafka_admin, topic)
    assert after is not None
    assert after.topic_id == before.topic_id == obj["status"]["topicId"]
    assert after.partitions == 2
    assert after.overrides["min.insync.replicas"] == "2"
    assert after.overrides["unclean.leader.election.enable"] == "false"
    assert after.overrides["retention.ms"] == "1234567"
    assert obj["status"]["unmanagedConfigs"] == ["retention.ms"]


def test_update_grows_partitions_refuses_shrink_and_applies_config(
    kube: Kube, namespace: str, kafka_admin
) -> None:  # type: ignore[no-untyped-def]
    topic = f"{namespace}.grow"
    kube.create(namespace, "grow", {"topicName": topic, "partitions": 1})
    ready(kube, namespace, "grow")
    kube.patch(namespace, "grow", {"spec": {"partitions": 4, "config": {"cleanup.policy": "compact"}}})
    ready(kube, namespace, "grow")
    facts = helpers.describe(kafka_admin, topic)
    assert facts is not None and facts.partitions == 4
    assert facts.overrides["cleanup.policy"] == "compact"
    assert facts.overrides["min.insync.replicas"] == "2"


def test_delete_retain_keeps_topic(kube: Kube, namespace: str, kafka_admin) -> None:  # type: ignore[no-untyped-def]
    topic = f"{namespace}.kept"
    kube.create(namespace, "kept", {"topicName": topic, "partitions": 1})
    obj = ready(kube, namespace, "kept")
    assert not obj["metadata"].get("finalizers")
    kube.delete(namespace, "kept")
    wait_for("object gone", lambda: not kube.exists(namespace, "kept"), 15)
    time.sleep(1)
    facts = helpers.describe(kafka_admin, topic)
    assert facts is not None and facts.topic_id == obj["status"]["topicId"]


def test_delete_policy_deletes_topic(kube: Kube, namespace: str, kafka_admin) -> None:  # type: ignore[no-untyped-def]
    topic = f"{namespace}.gone"
    kube.create(namespace, "gone", {"topicName": topic, "partitions": 1, "deletionPolicy": "Delete"})
    obj = ready(kube, namespace, "gone")
    assert "durabletopic.dev/delete-topic" in kube.get(namespace, "gone")["metadata"].get("finalizers", [])
    assert obj["status"]["topicId"]
    kube.delete(namespace, "gone")
    wait_for("object gone", lambda: not kube.exists(namespace, "gone"), 30)
    wait_for("topic deleted", lambda: helpers.describe(kafka_admin, topic) is None, 30)


def test_conflict_older_owns_and_loser_never_deletes(kube: Kube, namespace: str, kafka_admin) -> None:  # type: ignore[no-untyped-def]
    topic = f"{namespace}.shared"
    kube.create(namespace, "first", {"topicName": topic, "partitions": 1})
    owner = ready(kube, namespace, "first")
    time.sleep(1.1)  # creation timestamps have one-second resolution
    kube.create(namespace, "second", {"topicName": topic, "partitions": 2, "deletionPolicy": "Delete"})
    loser = reason_of(kube, namespace, "second", "Stalled", "TopicConflict")
    assert f"{namespace}/first" in condition(loser, "Stalled")["message"]  # type: ignore[index]
    facts = helpers.describe(kafka_admin, topic)
    assert facts is not None and facts.partitions == 1
    kube.delete(namespace, "second")
    wait_for("loser gone", lambda: not kube.exists(namespace, "second"), 30)
    facts = helpers.describe(kafka_admin, topic)
    assert facts is not None and facts.topic_id == owner["status"]["topicId"]


def test_paused_makes_no_kafka_changes(kube: Kube, namespace: str, kafka_admin) -> None:  # type: ignore[no-untyped-def]
    topic = f"{namespace}.paused"
    kube.create(namespace, "paused", {"topicName": topic, "partitions": 1})
    ready(kube, namespace, "paused")
    kube.patch(namespace, "paused", {"metadata": {"annotations": {"durabletopic.dev/paused": "true"}}})
    reason_of(kube, namespace, "paused", "Paused", "Paused")
    kube.patch(namespace, "paused", {"spec": {"partitions": 3}})
    time.sleep(3)
    facts = helpers.describe(kafka_admin, topic)
    assert facts is not None and facts.partitions == 1
    kube.patch(namespace, "paused", {"metadata": {"annotations": {"durabletopic.dev/paused": None}}})
    ready(kube, namespace, "paused")
    facts = helpers.describe(kafka_admin, topic)
    assert facts is not None and facts.partitions == 3
    assert condition(kube.get(namespace, "paused"), "Paused") is None


def test_operator_restart_resumes(kube: Kube, namespace: str, kafka_admin, operator) -> None:  # type: ignore[no-untyped-def]
    topic = f"{namespace}.restart"
    kube.create(namespace, "restart", {"topicName": topic, "partitions": 1})
    ready(kube, namespace, "restart")
    operator.kill()
    try:
        kube.patch(namespace, "restart", {"spec": {"partitions": 2}})
    finally:
        operator.start()
    ready(kube, namespace, "restart")
    facts = helpers.describe(kafka_admin, topic)
    assert facts is not None and facts.partitions == 2


def test_operator_identity_is_least_privilege(testbed, operator_kubeconfig, namespace: str) -> None:  # type: ignore[no-untyped-def]
    """The operator under test runs as its own ServiceAccount; that token cannot read Secrets."""
    denied = testbed.kubectl("get", "secrets", "-n", namespace, kubeconfig=operator_kubeconfig, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    denied = testbed.kubectl(
        "get", "secrets", "-n", "kube-system", kubeconfig=operator_kubeconfig, check=False
    )
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    allowed = testbed.kubectl("get", "dt", "-n", namespace, kubeconfig=operator_kubeconfig, check=False)
    assert allowed.returncode == 0, allowed.stderr
    whoami = testbed.kubectl(
        "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", kubeconfig=operator_kubeconfig
    )
    assert whoami.stdout == "system:serviceaccount:durable-topic-operator:durable-topic-operator"


def test_client_profile_configmap_goes_with_its_topic(kube: Kube, namespace: str) -> None:
    topic = f"{namespace}.profiled"
    created = kube.create(namespace, "profiled", {"topicName": topic, "partitions": 1})
    ready(kube, namespace, "profiled")
    configmap = wait_for(
        "client profile",
        lambda: next(
            (
                c
                for c in kube.core.list_namespaced_config_map(namespace).items
                if c.metadata.name == "profiled-client-profile"
            ),
            None,
        ),
        15,
    )
    (owner,) = configmap.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == ("DurableTopic", "profiled", created["metadata"]["uid"])
    producer = configmap.data["producer.properties"]
    assert "acks=all" in producer and "enable.idempotence=true" in producer
    assert "enable.auto.commit=false" in configmap.data["consumer.properties"]
    assert configmap.data["topic"] == topic
    kube.delete(namespace, "profiled")
    wait_for(
        "client profile garbage-collected",
        lambda: (
            not any(
                c.metadata.name == "profiled-client-profile"
                for c in kube.core.list_namespaced_config_map(namespace).items
            )
        ),
        60,
    )
