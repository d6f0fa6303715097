"""One operator, two real Kafka clusters: cluster A (the test bed's, unauthenticated, the operator's
default) and cluster B (a second KRaft cluster with SASL/SCRAM, reached through a KafkaCluster and a
Secret). Topics per cluster, failures isolated per cluster, the pinned cluster id, authentication
failures, and the KafkaCluster's status, read from the real API server, Kafka and /metrics."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from tests.e2e import helpers
from tests.e2e.helpers import Kube, condition, metric_value, ready, reason_of, wait_for
from tests.testbed.operator_process import OPERATOR_NAMESPACE, OperatorProcess

pytestmark = [pytest.mark.testbed, pytest.mark.usefixtures("operator")]


def apply(testbed: Any, document: dict[str, Any]) -> None:
    testbed.kubectl("apply", "-f", "-", input=json.dumps(document))


def cluster_status(testbed: Any, name: str) -> dict[str, Any]:
    found = testbed.kubectl("get", "kafkacluster", name, "-o", "json", check=False)
    return dict(json.loads(found.stdout).get("status") or {}) if found.returncode == 0 else {}


def cluster_ready(testbed: Any, name: str, reason: str = "Connected", timeout: float = 60) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        status = cluster_status(testbed, name)
        ready_condition = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
        return status if ready_condition and ready_condition["reason"] == reason else None

    return wait_for(f"KafkaCluster {name} Ready reason {reason}", probe, timeout)


@pytest.fixture
def cluster_b(testbed: Any, second_kafka: Any, crd_installed: None) -> Iterator[str]:
    """A KafkaCluster for cluster B, its SCRAM credentials in a Secret of the operator's namespace."""
    name = f"b-{uuid.uuid4().hex[:6]}"
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{name}-credentials", "namespace": OPERATOR_NAMESPACE},
        "stringData": {"username": second_kafka.username, "password": second_kafka.password},
    }
    apply(testbed, secret)
    apply(testbed, kafka_cluster(name, second_kafka.bootstrap_servers, f"{name}-credentials"))
    yield name
    testbed.kubectl("delete", "kafkacluster", name, "--ignore-not-found", check=False)
    testbed.kubectl("delete", "secret", f"{name}-credentials", "-n", OPERATOR_NAMESPACE, check=False)


def kafka_cluster(name: str, bootstrap: str, secret: str | None, **spec: Any) -> dict[str, Any]:
    auth = (
        {
            "authentication": {
                "sasl": {
                    "mechanism": "SCRAM-SHA-512",
                    "secretRef": {"namespace": OPERATOR_NAMESPACE, "name": secret},
                }
            }
        }
        if secret
        else {}
    )
    return {
        "apiVersion": "durabletopic.dev/v1alpha1",
        "kind": "KafkaCluster",
        "metadata": {"name": name},
        "spec": {"bootstrapServers": bootstrap, **auth, **spec},
    }


@pytest.fixture
def other_namespace(testbed: Any) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    testbed.kubectl("create", "namespace", name)
    yield name
    testbed.kubectl("delete", "namespace", name, "--wait=false", check=False)


def on_b(cluster: str, topic: str, **spec: Any) -> dict[str, Any]:
    return {"partitions": 3, "topicName": topic, "clusterRef": {"name": cluster}, **spec}


def test_one_operator_manages_both_clusters_and_the_same_name_is_two_topics(
    testbed: Any,
    kube: Kube,
    namespace: str,
    other_namespace: str,
    cluster_b: str,
    second_kafka: Any,
    kafka_admin: AdminClient,
    operator: OperatorProcess,
) -> None:
    status = cluster_ready(testbed, cluster_b)
    assert status["clusterId"] == second_kafka.cluster_id
    assert status["brokerCount"] == 3
    assert sorted(b["rack"] for b in status["brokers"]) == ["b1", "b2", "b3"]
    topic = f"{namespace}.orders"
    kube.create(namespace, "orders", {"partitions": 2, "topicName": topic})
    kube.create(other_namespace, "orders", on_b(cluster_b, topic))
    ready(kube, namespace, "orders")
    ready(kube, other_namespace, "orders", timeout=60)
    on_a = helpers.describe(kafka_admin, topic)
    on_second = helpers.describe(second_kafka.admin_client(), topic)
    assert on_a is not None and on_second is not None
    assert (on_a.partitions, on_second.partitions) == (2, 3), "not a conflict: two topics on two clusters"
    assert on_a.topic_id != on_second.topic_id
    assert on_second.overrides["min.insync.replicas"] == "2"
    wait_for(
        "the topic counted on cluster B",
        lambda: cluster_status(testbed, cluster_b).get("durableTopics") == 1 or None,
    )
    listed = testbed.kubectl("get", "kafkaclusters", cluster_b).stdout
    assert all(column in listed for column in ("READY", "CLUSTER-ID", "BROKERS", "TOPICS"))
    assert second_kafka.cluster_id in listed
    metrics = operator.metrics()
    assert metric_value(metrics, "durabletopic_kafka_up", cluster=cluster_b) == 1
    assert metric_value(metrics, "durabletopic_kafka_up", cluster="default") == 1


def test_cluster_b_down_never_delays_cluster_a(
    testbed: Any,
    kube: Kube,
    namespace: str,
    other_namespace: str,
    cluster_b: str,
    second_kafka: Any,
    second_kafka_faults: Any,
    kafka_admin: AdminClient,
) -> None:
    cluster_ready(testbed, cluster_b)
    second_kafka.kill_all_brokers()
    try:
        kube.create(other_namespace, "waiting", on_b(cluster_b, f"{other_namespace}.waiting"))
        started = time.monotonic()
        for i in range(5):
            kube.create(namespace, f"a{i}", {"partitions": 1, "topicName": f"{namespace}.a{i}"})
        for i in range(5):
            ready(kube, namespace, f"a{i}")
        seconds_on_a = time.monotonic() - started
        reason_of(kube, other_namespace, "waiting", "Reconciling", "KafkaUnavailable", timeout=60)
        assert seconds_on_a < 30, f"cluster A's objects took {seconds_on_a:.1f} s with cluster B down"
        unready = cluster_ready(testbed, cluster_b, reason="Unreachable")
        assert unready["clusterId"] == second_kafka.cluster_id, "what was known is kept"
    finally:
        second_kafka.start_all_brokers()
    back = time.monotonic()
    ready(kube, other_namespace, "waiting", timeout=60)
    assert time.monotonic() - back < 30
    assert helpers.describe(second_kafka.admin_client(), f"{other_namespace}.waiting") is not None


def test_a_kafkacluster_pointed_at_another_cluster_writes_and_deletes_nothing(
    testbed: Any,
    kube: Kube,
    other_namespace: str,
    cluster_b: str,
    second_kafka: Any,
    kafka_admin: AdminClient,
) -> None:
    pinned = cluster_ready(testbed, cluster_b)["clusterId"]
    topic = f"{other_namespace}.orders"
    kube.create(other_namespace, "orders", on_b(cluster_b, topic, deletionPolicy="Delete"))
    ready(kube, other_namespace, "orders", timeout=60)
    # Cluster A gets a topic of the same name, which must not be touched.
    helpers.create(kafka_admin, topic, 1, 3, {"retention.ms": "123456"})
    before_a = helpers.snapshot(kafka_admin)[topic]
    apply(testbed, kafka_cluster(cluster_b, testbed.bootstrap_servers, None))  # now it leads to cluster A
    status = cluster_ready(testbed, cluster_b, reason="ClusterIdMismatch")
    assert status["clusterId"] == pinned
    message = next(c["message"] for c in status["conditions"] if c["type"] == "Ready")
    assert f"set spec.clusterId of KafkaCluster {cluster_b}" in message
    reason_of(kube, other_namespace, "orders", "Stalled", "ClusterIdMismatch", timeout=60)
    kube.delete(other_namespace, "orders")
    reason_of(kube, other_namespace, "orders", "Reconciling", "DeletePending", timeout=60)
    time.sleep(2)
    assert helpers.snapshot(kafka_admin)[topic] == before_a, "nothing written to cluster A"
    assert helpers.describe(second_kafka.admin_client(), topic) is not None, "nothing deleted on cluster B"
    kube.patch(
        other_namespace, "orders", {"metadata": {"annotations": {"durabletopic.dev/retain-topic": "true"}}}
    )
    wait_for("released", lambda: not kube.exists(other_namespace, "orders") or None)


def test_a_wrong_password_is_authentication_failed(
    testbed: Any, kube: Kube, other_namespace: str, second_kafka: Any, crd_installed: None
) -> None:
    name = f"bad-{uuid.uuid4().hex[:6]}"
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": OPERATOR_NAMESPACE},
        "stringData": {"username": second_kafka.username, "password": "not-the-password"},
    }
    apply(testbed, secret)
    apply(testbed, kafka_cluster(name, second_kafka.bootstrap_servers, name))
    try:
        status = cluster_ready(testbed, name, reason="AuthenticationFailed", timeout=90)
        assert "clusterId" not in status
        kube.create(other_namespace, "locked", on_b(name, f"{other_namespace}.locked"))
        obj = reason_of(kube, other_namespace, "locked", "Reconciling", "KafkaUnavailable", timeout=60)
        assert "authentication" in (condition(obj, "Reconciling") or {}).get("message", "").lower()
        missing = f"gone-{uuid.uuid4().hex[:6]}"
        apply(testbed, kafka_cluster(missing, second_kafka.bootstrap_servers, missing))
        try:
            cluster_ready(testbed, missing, reason="SecretNotFound")
        finally:
            testbed.kubectl("delete", "kafkacluster", missing, check=False)
    finally:
        testbed.kubectl("delete", "kafkacluster", name, check=False)
        testbed.kubectl("delete", "secret", name, "-n", OPERATOR_NAMESPACE, check=False)
