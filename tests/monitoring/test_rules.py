"""The chart's alert rules, checked and unit-tested by Prometheus's own promtool: every alert fires on
the series that should fire it, with its labels and annotations, and stays quiet on healthy ones."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring.conftest import ALERT_LABELS
from tests.monitoring.prometheus import alerts_of, chart_rules, write_yaml
from tests.packaging.conftest import CHART, run

UNIT_TESTS = Path(__file__).with_name("alerts.test.yaml")


@pytest.mark.parametrize(
    "values",
    [[], [*ALERT_LABELS, "--set", "prometheusRule.for.DurableTopicStalled=1h30m"]],
    ids=["defaults", "alert-labels-and-for"],
)
def test_promtool_check_rules_accepts_the_chart_rules(
    promtool_binary: Path, helm_binary: Path, values: list[str], tmp_path: Path
) -> None:
    rules = chart_rules(helm_binary, *values)
    result = run([promtool_binary, "check", "rules", write_yaml(tmp_path / "rules.yaml", rules)])
    assert f"SUCCESS: {len(alerts_of(rules))} rules found" in result.stdout, result.stdout
    assert len(alerts_of(rules)) == 8


def test_promtool_unit_tests_of_every_alert_pass(
    promtool_binary: Path, rules: dict[str, Any], tmp_path: Path
) -> None:
    write_yaml(tmp_path / "rules.yaml", rules)
    tests = shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    result = run([promtool_binary, "test", "rules", tests], check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout, result.stdout


def test_every_alert_has_a_firing_and_a_quiet_unit_test(rules: dict[str, Any]) -> None:
    cases = [c for t in yaml.safe_load(UNIT_TESTS.read_text())["tests"] for c in t["alert_rule_test"]]
    fired = {c["alertname"] for c in cases if c["exp_alerts"]}
    quiet = {c["alertname"] for c in cases if not c["exp_alerts"]}
    alerts = set(alerts_of(rules))
    assert alerts == fired, f"alerts with no test that fires them: {alerts - fired}"
    assert alerts == quiet, f"alerts with no test that they stay quiet: {alerts - quiet}"
    for case in cases:
        for expected in case["exp_alerts"]:
            assert expected["exp_labels"]["team"] == "platform", case
            assert set(expected["exp_annotations"]) == {"summary", "description"}, case


def test_a_wrong_expectation_fails(promtool_binary: Path, rules: dict[str, Any], tmp_path: Path) -> None:
    """The unit tests can fail: the same tests with one expected label changed do."""
    write_yaml(tmp_path / "rules.yaml", rules)
    broken = UNIT_TESTS.read_text().replace("topic: orders", "topic: not-orders", 1)
    assert broken != UNIT_TESTS.read_text()
    tests = tmp_path / UNIT_TESTS.name
    tests.write_text(broken)
    result = run([promtool_binary, "test", "rules", tests], check=False)
    assert result.returncode != 0
    assert "not-orders" in result.stdout + result.stderr


def test_pending_times_are_the_values(helm_binary: Path) -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["prometheusRule"]["for"]
    assert defaults["DurableTopicWeakeningDrift"] == "5m" and defaults["DurableTopicUnderMinIsr"] == "1m"
    shipped = {alert: rule["for"] for alert, rule in alerts_of(chart_rules(helm_binary)).items()}
    assert shipped == defaults
    changed = chart_rules(helm_binary, "--set", "prometheusRule.for.DurableTopicOffline=30s")
    assert {a: r["for"] for a, r in alerts_of(changed).items()} == {**defaults, "DurableTopicOffline": "30s"}
