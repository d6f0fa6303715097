"""The chart's alert rules, checked and unit-tested by Prometheus's own promtool: every alert fires on
the series that should fire it, with its labels and annotations, and stays quiet on healthy ones."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.monitoring.prometheus import alerts_of, write_yaml
from tests.packaging.conftest import run

UNIT_TESTS = Path(__file__).with_name("alerts.test.yaml")


def test_promtool_check_rules_accepts_the_chart_rules(
    promtool_binary: Path, rules: dict[str, Any], tmp_path: Path
) -> None:
    result = run([promtool_binary, "check", "rules", write_yaml(tmp_path / "rules.yaml", rules)])
    assert f"SUCCESS: {len(alerts_of(rules))} rules found" in result.stdout, result.stdout


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
