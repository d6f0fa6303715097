"""The chart's alerts and dashboard on a real Prometheus that scrapes the operator under test.

Prometheus (Debian's, from the cache) scrapes the operator's /metrics on loopback every second the way
the chart's ServiceMonitor has it scraped (the Service's name as job, the release's namespace as a
target label, the operator's own labels kept), and evaluates the chart's rules every second, rendered
with short pending times (`prometheusRule.for`) so an alert fires within seconds. Three alerts are
made to fire and then resolve: weakening drift (an incremental alter behind the operator's back),
partitions under min ISR (two brokers killed) and operator down (the operator stopped).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e import helpers
from tests.e2e.helpers import Kube, metric_value, ready, wait_for
from tests.monitoring.dashboard import as_promql, queries, rendered_dashboard
from tests.monitoring.prometheus import (
    JOB,
    RELEASE_NAMESPACE,
    PrometheusServer,
    chart_rules,
    promtool,
    render_one,
    write_yaml,
)
from tests.packaging.conftest import run
from tests.testbed.operator_process import OperatorProcess

pytestmark = [pytest.mark.testbed, pytest.mark.usefixtures("operator")]

# The pending time of the alerts these tests make fire, instead of the chart's minutes.
SHORT_FOR = "4s"
SHORT = tuple(
    arg
    for alert in ("DurableTopicWeakeningDrift", "DurableTopicOperatorDown", "DurableTopicUnderMinIsr")
    for arg in ("--set", f"prometheusRule.for.{alert}={SHORT_FOR}")
)


@pytest.fixture(scope="module")
def prometheus(testbed, operator: OperatorProcess, tmp_path_factory) -> Iterator[PrometheusServer]:  # type: ignore[no-untyped-def]
    workdir = tmp_path_factory.mktemp("prometheus")
    rules = write_yaml(workdir / "rules.yaml", chart_rules(testbed.helm_path, *SHORT))
    (endpoint,) = render_one(
        testbed.helm_path, "servicemonitor.yaml", "--set", "serviceMonitor.enabled=true"
    )["spec"]["endpoints"]
    server = PrometheusServer(
        workdir=workdir,
        targets=[f"127.0.0.1:{operator.metrics_port}"],
        job=JOB,
        labels={"namespace": RELEASE_NAMESPACE},
        rule_files=[rules],
        honor_labels=endpoint["honorLabels"],
    )
    server.start()
    try:
        wait_for("the operator scraped", server.targets_up, 30)
        yield server
    finally:
        server.stop()
        print(f"prometheus log: {server.log_path}")


def active(prometheus: PrometheusServer, alert: str, **labels: str) -> list[dict[str, Any]]:
    return [a for a in prometheus.alerts(alert) if labels.items() <= a["labels"].items()]


def value_of(prometheus: PrometheusServer, expr: str) -> float | None:
    result = prometheus.query(expr)
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


def test_weakening_drift_alert_fires_and_resolves(
    prometheus: PrometheusServer, kube: Kube, namespace: str, kafka_admin, operator: OperatorProcess
) -> None:  # type: ignore[no-untyped-def]
    topic = f"{namespace}.watched"
    kube.create(namespace, "watched", {"topicName": topic, "partitions": 1, "driftPolicy": "Report"})
    ready(kube, namespace, "watched")
    assert not active(prometheus, "DurableTopicWeakeningDrift", topic=topic)

    helpers.set_config(kafka_admin, topic, "min.insync.replicas", "1")
    (alert,) = wait_for(
        "the alert firing",
        lambda: [
            a for a in active(prometheus, "DurableTopicWeakeningDrift", topic=topic) if a["state"] == "firing"
        ],
        30,
    )
    # The pending time held it back first: Prometheus recorded it pending on several evaluations.
    pending = f'ALERTS{{alertname="DurableTopicWeakeningDrift",topic="{topic}",alertstate="pending"}}'
    assert (value_of(prometheus, f"count_over_time({pending}[1m])") or 0) >= 3
    expected = {
        "alertname": "DurableTopicWeakeningDrift",
        "severity": "warning",
        "namespace": namespace,
        "name": "watched",
        "topic": topic,
        "key": "min.insync.replicas",
    }
    assert alert["labels"] == expected
    assert alert["annotations"]["summary"] == (
        f"Topic {topic} was weakened behind the operator's back (min.insync.replicas)."
    )
    assert f"DurableTopic {namespace}/watched: min.insync.replicas" in alert["annotations"]["description"]
    assert f"has stayed so for {SHORT_FOR}" in alert["annotations"]["description"]
    firing = prometheus.query(f'ALERTS{{alertname="DurableTopicWeakeningDrift",topic="{topic}"}}')
    assert [(s["metric"]["alertstate"], s["value"][1]) for s in firing] == [("firing", "1")]

    # The scraped series carry the values of the operator's own /metrics.
    drift = f'durabletopic_drift{{job="{JOB}",namespace="{namespace}",topic="{topic}",severity="weakening"}}'
    assert value_of(prometheus, drift) == 1.0
    assert metric_value(operator.metrics(), "durabletopic_drift", topic=topic, severity="weakening") == 1.0
    detected = f'durabletopic_drift_detected_total{{topic="{topic}",action="reported"}}'
    wait_for(
        "the drift counter scraped",
        lambda: (
            value_of(prometheus, detected)
            == metric_value(
                operator.metrics(), "durabletopic_drift_detected_total", topic=topic, action="reported"
            )
            == 1.0
        ),
        10,
    )

    # Someone puts the topic right: the drift series goes, and the alert with it.
    helpers.set_config(kafka_admin, topic, "min.insync.replicas", "2")
    wait_for(
        "the alert resolved", lambda: not active(prometheus, "DurableTopicWeakeningDrift", topic=topic), 30
    )
    assert metric_value(operator.metrics(), "durabletopic_drift", topic=topic) is None
    assert value_of(prometheus, drift) is None
    assert prometheus.query(f'ALERTS{{alertname="DurableTopicWeakeningDrift",topic="{topic}"}}') == []


def test_under_min_isr_alert_fires_while_two_brokers_are_down(
    prometheus: PrometheusServer, kube: Kube, namespace: str, testbed_faults, operator: OperatorProcess
) -> None:  # type: ignore[no-untyped-def]
    topic = f"{namespace}.replicated"
    kube.create(namespace, "replicated", {"topicName": topic, "partitions": 2})
    ready(kube, namespace, "replicated")
    series = f'durabletopic_partitions_under_min_isr{{cluster="default",topic="{topic}"}}'
    wait_for("the healthy topic scraped", lambda: value_of(prometheus, series) == 0.0, 30)
    assert not active(prometheus, "DurableTopicUnderMinIsr", topic=topic)

    testbed_faults.kill_broker(2)
    testbed_faults.kill_broker(3)
    (alert,) = wait_for(
        "the under-min-ISR alert firing",
        lambda: [
            a for a in active(prometheus, "DurableTopicUnderMinIsr", topic=topic) if a["state"] == "firing"
        ],
        60,
    )
    assert alert["labels"] == {
        "alertname": "DurableTopicUnderMinIsr",
        "severity": "critical",
        "cluster": "default",
        "topic": topic,
    }
    assert alert["annotations"]["description"].startswith(f"2 partitions of {topic} have no leader or fewer")
    assert value_of(prometheus, series) == 2.0
    assert metric_value(operator.metrics(), "durabletopic_partitions_under_min_isr", topic=topic) == 2.0

    testbed_faults.start_broker(2)
    testbed_faults.start_broker(3)
    wait_for(
        "the under-min-ISR alert resolved",
        lambda: not active(prometheus, "DurableTopicUnderMinIsr", topic=topic),
        90,
    )
    assert value_of(prometheus, series) == 0.0


def test_operator_down_alert_fires_while_the_operator_is_stopped(
    prometheus: PrometheusServer, operator: OperatorProcess
) -> None:
    up = f'up{{job="{JOB}",namespace="{RELEASE_NAMESPACE}"}}'
    assert value_of(prometheus, up) == 1.0
    assert not prometheus.alerts("DurableTopicOperatorDown")
    operator.stop()
    try:
        (alert,) = wait_for(
            "the operator-down alert firing",
            lambda: [a for a in prometheus.alerts("DurableTopicOperatorDown") if a["state"] == "firing"],
            30,
        )
        assert value_of(prometheus, up) == 0.0
        assert alert["labels"]["severity"] == "critical"
        assert (alert["labels"]["job"], alert["labels"]["namespace"]) == (JOB, RELEASE_NAMESPACE)
    finally:
        operator.start()
    wait_for(
        "the operator-down alert resolved", lambda: not prometheus.alerts("DurableTopicOperatorDown"), 30
    )
    assert value_of(prometheus, up) == 1.0


def test_healthy_operator_raises_no_alert_and_feeds_every_dashboard_query(
    prometheus: PrometheusServer, testbed, operator: OperatorProcess
) -> None:  # type: ignore[no-untyped-def]
    wait_for("kafka_up scraped", lambda: value_of(prometheus, 'durabletopic_kafka_up{cluster="default"}'), 30)
    assert value_of(prometheus, 'durabletopic_kafka_up{cluster="default"}') == metric_value(
        operator.metrics(), "durabletopic_kafka_up", cluster="default"
    )
    for alert in ("DurableTopicOperatorDown", "DurableTopicKafkaUnreachable"):
        assert not prometheus.alerts(alert), alert

    # Each query of the dashboard, as Grafana sends it for this job, is answered without an error;
    # those of the overview have data.
    values = {"job": JOB, "cluster": ".*", "__rate_interval": "1m"}
    answered = {
        where: prometheus.query(as_promql(expr, values))
        for where, expr in queries(rendered_dashboard(testbed.helm_path))
    }
    for where in ("panel 'Kafka reachable' target A", "panel 'Leader replicas' target A", "variable cluster"):
        assert answered[where], f"{where}: no data"
    leaders = wait_for(
        "one leader", lambda: value_of(prometheus, f'sum(durabletopic_leader{{job="{JOB}"}})'), 30
    )
    assert leaders == 1.0 == metric_value(operator.metrics(), "durabletopic_leader")


def test_operator_metrics_pass_promtool_check_metrics(operator: OperatorProcess) -> None:
    """Prometheus's own lint of the exposition (names, units, help texts, counters' _total)."""
    text = operator.metrics()
    assert "durabletopic_kafka_up" in text
    result = run([promtool(), "check", "metrics"], input=text, check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
