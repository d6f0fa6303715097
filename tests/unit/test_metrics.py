"""The Prometheus adapter: series that go with their object, gauges only the leader exports, kafka_up."""

from __future__ import annotations

from durabletopic.adapters.prometheus import Metrics
from durabletopic.core.health import ReplicaHealth
from durabletopic.core.model import ObjectRef

REF = ObjectRef("team", "orders")


def series(metrics: Metrics, name: str) -> list[str]:
    return [line for line in metrics.text().splitlines() if line.startswith(name + "{")]


def test_every_series_of_a_deleted_object_goes() -> None:
    metrics = Metrics()
    metrics.count_drift(REF, "orders", "min.insync.replicas", "weakening", "reverted")
    metrics.set_drift(REF, "orders", [("retention.ms", "benign")])
    metrics.set_health(REF, "orders", ReplicaHealth(3, 1, 0, 0, 0))
    assert series(metrics, "durabletopic_drift_detected_total")
    metrics.forget(REF)
    for name in (
        "durabletopic_drift_detected_total",
        "durabletopic_drift",
        "durabletopic_partitions_under_replicated",
    ):
        assert series(metrics, name) == [], name


def test_health_of_a_topic_two_objects_name_stays_until_the_last_goes() -> None:
    metrics = Metrics()
    other = ObjectRef("other", "orders")
    metrics.set_health(REF, "orders", ReplicaHealth(3, 0, 0, 0, 0))
    metrics.set_health(other, "orders", ReplicaHealth(3, 0, 0, 0, 0))
    metrics.forget(REF)
    assert series(metrics, "durabletopic_partitions_offline")
    metrics.forget(other)
    assert series(metrics, "durabletopic_partitions_offline") == []


def test_a_replica_that_stops_leading_stops_exporting_leader_gauges() -> None:
    metrics = Metrics()
    metrics.set_leader(True)
    metrics.set_health(REF, "orders", ReplicaHealth(3, 0, 1, 0, 0))
    metrics.set_drift(REF, "orders", [("min.insync.replicas", "weakening")])
    metrics.set_resources({"Ready": 3})
    metrics.set_audit({("replication-factor-below-floor", "high"): 2})
    metrics.set_leader(False)
    text = metrics.text()
    for name in (
        "durabletopic_partitions_under_min_isr{",
        "durabletopic_partitions_with_eligible_leader_replicas{",
        "durabletopic_drift{",
        "durabletopic_resources{",
        "durabletopic_audit_findings{",
    ):
        assert name not in text, name
    assert "durabletopic_leader 0.0" in text


def test_each_topic_has_its_five_health_series_with_their_numbers() -> None:
    metrics = Metrics()
    metrics.set_health(REF, "orders", ReplicaHealth(3, 2, 1, 0, 1, with_eligible_leaders=1))
    metrics.set_health(ObjectRef("team", "payments"), "payments", ReplicaHealth(1, 0, 0, 1, 0), cluster="b")
    metrics.set_health(REF, "orders", ReplicaHealth(3, 2, 1, 0, 0, with_eligible_leaders=1))
    text = metrics.text().splitlines()
    assert "# TYPE durabletopic_partitions_under_replicated gauge" in text
    for name, orders, payments in (
        ("durabletopic_partitions_under_replicated", "2.0", "0.0"),
        ("durabletopic_partitions_under_min_isr", "1.0", "0.0"),
        ("durabletopic_partitions_at_min_isr", "0.0", "1.0"),
        ("durabletopic_partitions_offline", "0.0", "0.0"),
        ("durabletopic_partitions_with_eligible_leader_replicas", "1.0", "0.0"),
    ):
        assert series(metrics, name) == [
            f'{name}{{cluster="default",topic="orders"}} {orders}',
            f'{name}{{cluster="b",topic="payments"}} {payments}',
        ], name


def test_kafka_up_says_whether_kafka_answers() -> None:
    metrics = Metrics()
    metrics.record_admin_request("alter_configs", "error", 0.01)  # Kafka refused one topic's change
    assert 'durabletopic_kafka_up{cluster="default"} 1.0' in metrics.text()
    metrics.record_admin_request("describe_topics", "unreachable", 10.0)
    metrics.record_admin_request("describe_topics", "ok", 0.01, cluster="b")
    assert 'durabletopic_kafka_up{cluster="default"} 0.0' in metrics.text()
    assert 'durabletopic_kafka_up{cluster="b"} 1.0' in metrics.text(), (
        "one cluster down says nothing of another"
    )
    assert (
        'durabletopic_admin_requests_total{cluster="default",op="describe_topics",result="error"} 1.0'
        in metrics.text()
    )
    metrics.forget_cluster("b")
    assert 'durabletopic_kafka_up{cluster="b"}' not in metrics.text(), (
        "a cluster that is gone is not up or down"
    )
