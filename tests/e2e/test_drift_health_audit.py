"""Drift, replica health, the cluster audit and the metrics, end to end on the test bed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
from confluent_kafka import Producer

from tests.e2e import helpers
from tests.e2e.helpers import Kube, condition, metric_value, ready, reason_of, wait_for
from tests.testbed.operator_process import OperatorProcess

pytestmark = [pytest.mark.testbed, pytest.mark.usefixtures("operator")]

SWEEP = 2.0  # the e2e operator's sweep interval


def test_weakened_min_isr_is_reverted(
    kube: Kube, namespace: str, kafka_admin, operator: OperatorProcess
) -> None:  # type: ignore[no-untyped-def]
    topic = f"{namespace}.enforced"
    kube.create(namespace, "enforced", {"topicName": topic, "partitions": 1})
    ready(kube, namespace, "enforced")
    helpers.set_config(kafka_admin, topic, "min.insync.replicas", "1")
    weakened_at = time.monotonic()
    wait_for(
        "min.insync.replicas put back",
        lambda: (
            (helpers.describe(kafka_admin, topic) or helpers.TopicFacts("", 0, 0, {}, {})).overrides.get(
                "min.insync.replicas"
            )
            == "2"
        ),
        timeout=4 * SWEEP + 5,
        interval=0.1,
    )
    assert time.monotonic() - weakened_at <= 2 * SWEEP + 2
    events = wait_for(
        "drift events",
        lambda: (
            {r for _, r, _ in kube.events(namespace, "enforced")} >= {"DriftDetected", "DriftReverted"}
            and kube.events(namespace, "enforced")
        ),
        10,
    )
    detected = next(m for _, r, m in events if r == "DriftDetected")
    assert "min.insync.replicas" in detected and "weakening" in detected
    metrics = operator.metrics()
    assert (
        metric_value(
            metrics,
            "durabletopic_drift_detected_total",
            name="enforced",
            key="min.insync.replicas",
            severity="weakening",
            action="reverted",
        )
        == 1.0
    )
    obj = ready(kube, namespace, "enforced")
    assert condition(obj, "Drifted")["status"] == "False"  # type: ignore[index]


def test_report_policy_reports_and_changes_nothing(
    kube: Kube, namespace: str, kafka_admin, operator: OperatorProcess
) -> None:  # type: ignore[no-untyped-def]
    topic = f"{namespace}.reported"
    kube.create(namespace, "reported", {"topicName": topic, "partitions": 1, "driftPolicy": "Report"})
    ready(kube, namespace, "reported")
    helpers.set_config(kafka_admin, topic, "min.insync.replicas", "1")
    obj = reason_of(kube, namespace, "reported", "Drifted", "DriftDetected", timeout=4 * SWEEP + 5)
    (entry,) = obj["status"]["drift"]
    assert (entry["key"], entry["expected"], entry["actual"], entry["severity"], entry["action"]) == (
        "min.insync.replicas",
        "2",
        "1",
        "weakening",
        "reported",
    )
    assert entry["firstSeen"]
    time.sleep(2 * SWEEP)
    facts = helpers.describe(kafka_admin, topic)
    assert facts is not None and facts.overrides["min.insync.replicas"] == "1"
    metrics = operator.metrics()
    assert (
        metric_value(
            metrics, "durabletopic_drift", name="reported", key="min.insync.replicas", severity="weakening"
        )
        == 1.0
    )
    assert "DriftDetected" in {r for _, r, _ in kube.events(namespace, "reported")}
    # a deleted DurableTopic takes its series with it
    kube.delete(namespace, "reported")
    wait_for("object gone", lambda: not kube.exists(namespace, "reported"), 15)
    wait_for(
        "drift series gone",
        lambda: metric_value(operator.metrics(), "durabletopic_drift", name="reported") is None,
        10,
    )
    assert metric_value(operator.metrics(), "durabletopic_partitions_under_replicated", topic=topic) is None


def test_topic_deleted_out_of_band(kube: Kube, namespace: str, kafka_admin) -> None:  # type: ignore[no-untyped-def]
    enforced, reported = f"{namespace}.recreated", f"{namespace}.missing"
    kube.create(namespace, "recreated", {"topicName": enforced, "partitions": 2})
    kube.create(namespace, "missing", {"topicName": reported, "partitions": 1, "driftPolicy": "Report"})
    first_id = ready(kube, namespace, "recreated")["status"]["topicId"]
    ready(kube, namespace, "missing")
    helpers.delete(kafka_admin, enforced)
    helpers.delete(kafka_admin, reported)

    def recreated() -> bool:
        facts = helpers.describe(kafka_admin, enforced)
        return facts is not None and facts.topic_id != first_id

    wait_for("topic recreated", recreated, 6 * SWEEP + 10)

    def status_has_new_id() -> dict | None:  # type: ignore[type-arg]
        current = ready(kube, namespace, "recreated")
        return current if current["status"]["topicId"] != first_id else None

    obj = wait_for("status shows the new topic id", status_has_new_id, 20)
    facts = helpers.describe(kafka_admin, enforced)
    assert facts is not None and facts.partitions == 2 and facts.overrides["min.insync.replicas"] == "2"
    reverted = wait_for(
        "recreate event",
        lambda: [m for _, r, m in kube.events(namespace, "recreated") if r == "DriftReverted"],
        10,
    )
    assert "data was lost" in reverted[0]

    obj = reason_of(kube, namespace, "missing", "Drifted", "DriftDetected", timeout=4 * SWEEP + 5)
    assert [d["key"] for d in obj["status"]["drift"]] == ["topic"]
    assert helpers.describe(kafka_admin, reported) is None


def test_replica_health_follows_broker_failures(
    kube: Kube, namespace: str, testbed_faults, operator: OperatorProcess
) -> None:  # type: ignore[no-untyped-def]
    topic = f"{namespace}.health"
    kube.create(namespace, "health", {"topicName": topic, "partitions": 2})
    ready(kube, namespace, "health")

    def healthy_reason(reason: str) -> dict | None:  # type: ignore[type-arg]
        obj = kube.get(namespace, "health")
        c = condition(obj, "ReplicasHealthy")
        return obj if c and c["reason"] == reason else None

    testbed_faults.kill_broker(3)
    obj = wait_for("under-replicated", lambda: healthy_reason("UnderReplicated"), 60)
    health = obj["status"]["health"]
    assert health["underReplicated"] == 2 and health["underMinIsr"] == 0 and health["atMinIsr"] == 2
    assert metric_value(operator.metrics(), "durabletopic_partitions_under_replicated", topic=topic) == 2.0
    assert metric_value(operator.metrics(), "durabletopic_partitions_under_min_isr", topic=topic) == 0.0

    testbed_faults.kill_broker(2)
    obj = wait_for("under min ISR", lambda: healthy_reason("UnderMinIsr"), 60)
    assert obj["status"]["health"]["underMinIsr"] == 2
    assert metric_value(operator.metrics(), "durabletopic_partitions_under_min_isr", topic=topic) == 2.0

    testbed_faults.start_broker(2)
    testbed_faults.start_broker(3)
    wait_for("all in sync", lambda: healthy_reason("AllInSync"), 90)


def run_audit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durabletopic", "audit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_audit_finds_weak_topics_and_broker_defaults(
    kube: Kube, namespace: str, testbed_faults, kafka_admin
) -> None:  # type: ignore[no-untyped-def]
    bootstrap = testbed_faults.bootstrap_servers
    by_hand = f"{namespace}.by-hand"
    auto = f"{namespace}.auto-created"
    managed = f"{namespace}.managed"
    helpers.create(kafka_admin, by_hand, 1, 1, {})
    producer = Producer({"bootstrap.servers": bootstrap, "allow.auto.create.topics": True})
    deadline = time.monotonic() + 30
    while auto not in helpers.list_topics(kafka_admin) and time.monotonic() < deadline:
        producer.produce(auto, b"x")
        producer.flush(5)
        time.sleep(0.5)
    kube.create(namespace, "managed", {"topicName": managed, "partitions": 1})
    ready(kube, namespace, "managed")

    testbed_faults.set_broker_default("unclean.leader.election.enable", "true")
    try:
        wait_for(
            "broker default visible",
            lambda: (
                "broker-default-unclean-leader-election-enabled"
                in run_audit("--bootstrap-servers", bootstrap).stdout
            ),
            30,
            interval=1,
        )
        result = run_audit("--bootstrap-servers", bootstrap, "--output", "json")
        assert result.returncode == 1, result.stderr
        findings = json.loads(result.stdout)["findings"]
        subjects = {(f["subject"], f["rule"]) for f in findings}
        assert (f"topic/{by_hand}", "replication-factor-below-floor") in subjects
        assert (f"topic/{auto}", "replication-factor-below-floor") in subjects
        assert (
            "broker-default/unclean.leader.election.enable",
            "broker-default-unclean-leader-election-enabled",
        ) in subjects
        assert not any(s == f"topic/{managed}" for s, _ in subjects), (
            "managed topics hold their own overrides"
        )
        facts = helpers.describe(kafka_admin, managed)
        assert facts is not None
        assert facts.overrides["unclean.leader.election.enable"] == "false"
        assert facts.effective["unclean.leader.election.enable"] == "false"
        table = run_audit("--bootstrap-servers", bootstrap)
        assert table.returncode == 1 and by_hand in table.stdout
    finally:
        testbed_faults.delete_broker_default("unclean.leader.election.enable")


def test_audit_cannot_run_without_kafka() -> None:
    result = run_audit("--bootstrap-servers", "127.0.0.1:1", "--timeout", "2")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot audit 127.0.0.1:1" in lines[0]
    assert "Traceback" not in result.stderr


def test_metrics_text_has_the_contract_names(kube: Kube, namespace: str, operator: OperatorProcess) -> None:
    kube.create(namespace, "metered", {"topicName": f"{namespace}.metered", "partitions": 1})
    ready(kube, namespace, "metered")
    text = operator.metrics()
    for name in (
        "durabletopic_reconcile_total",
        "durabletopic_reconcile_duration_seconds_bucket",
        "durabletopic_resources",
        "durabletopic_partitions_under_replicated",
        "durabletopic_partitions_under_min_isr",
        "durabletopic_partitions_at_min_isr",
        "durabletopic_partitions_offline",
        "durabletopic_kafka_up",
        "durabletopic_admin_requests_total",
        "durabletopic_admin_request_duration_seconds_bucket",
        "durabletopic_sweep_duration_seconds_bucket",
    ):
        assert re.search(rf"^{name}[{{ ]", text, re.MULTILINE), name
    assert metric_value(text, "durabletopic_kafka_up") == 1.0
    ready_count = metric_value(text, "durabletopic_resources", condition="Ready")
    assert ready_count is not None and ready_count >= 1


def test_idle_sweeps_write_nothing(kube: Kube, namespace: str, operator: OperatorProcess) -> None:
    """Status is written only when it changes: sweeps over an unchanged topic make no write.

    Status, finalizers, events and client profiles are PATCH and POST requests; the Lease is
    renewed with GET and PUT and is left out.
    """
    kube.create(namespace, "idle", {"topicName": f"{namespace}.idle", "partitions": 1})
    ready(kube, namespace, "idle")
    time.sleep(SWEEP)

    def writes() -> float:
        text = operator.metrics()
        return sum(
            metric_value(text, "durabletopic_api_requests_total", method=method, result=result) or 0.0
            for method in ("PATCH", "POST")
            for result in ("ok", "error")
        )

    def sweeps() -> float:
        return metric_value(operator.metrics(), "durabletopic_sweep_duration_seconds_count") or 0.0

    before, swept = writes(), sweeps()
    wait_for("three more sweeps", lambda: sweeps() >= swept + 3, 10 * SWEEP)
    assert writes() == before
