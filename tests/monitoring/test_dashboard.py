"""The chart's Grafana dashboard: every query is PromQL that Prometheus's own parser accepts (promtool,
each query as a recording rule), and names only metrics the operator exports and the README lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.monitoring.dashboard import (
    as_promql,
    exported_series,
    family_name,
    metric_names,
    queries,
    readme_metrics,
    rendered_dashboard,
)
from tests.monitoring.prometheus import write_yaml
from tests.packaging.conftest import run


@pytest.fixture(scope="module")
def dashboard(helm_binary: Path) -> dict[str, Any]:
    return rendered_dashboard(helm_binary)


def check_as_rules(promtool: Path, exprs: list[str], path: Path) -> tuple[int, str]:
    """promtool check rules on `exprs` as recording rules: (exit code, what it said)."""
    rules = [{"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(exprs)]
    write_yaml(path, {"groups": [{"name": "dashboard", "rules": rules}]})
    result = run([promtool, "check", "rules", path], check=False)
    return result.returncode, result.stdout + result.stderr


def test_every_dashboard_query_parses_as_promql(
    promtool_binary: Path, dashboard: dict[str, Any], tmp_path: Path
) -> None:
    found = queries(dashboard)
    assert len(found) >= 20, found
    code, said = check_as_rules(promtool_binary, [as_promql(e) for _, e in found], tmp_path / "d.yaml")
    assert code == 0, said
    assert f"SUCCESS: {len(found)} rules found" in said, said


def test_a_broken_query_is_refused(promtool_binary: Path, dashboard: dict[str, Any], tmp_path: Path) -> None:
    """The check can fail: the first query with one closing parenthesis too many is refused."""
    _, first = queries(dashboard)[0]
    code, said = check_as_rules(promtool_binary, [as_promql(first) + ")"], tmp_path / "d.yaml")
    assert code != 0
    assert "parse error" in said, said


def test_dashboard_queries_name_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    exported, documented = exported_series(), readme_metrics()
    assert "durabletopic_drift" in documented and len(documented) >= 20, documented
    for where, expr in queries(dashboard):
        names = metric_names(as_promql(expr))
        assert names, f"{where}: no metric selector in {expr}"
        assert names <= exported, f"{where}: {names - exported} not exported by the operator"
        undocumented = {family_name(n) for n in names} - documented
        assert not undocumented, f"{where}: {undocumented} missing from the README's metrics table"


def test_every_panel_query_filters_by_the_job_variable(dashboard: dict[str, Any]) -> None:
    """So the dashboard shows one operator installation when a Prometheus scrapes several."""
    for where, expr in queries(dashboard):
        if where != "variable job":
            assert 'job=~"$job"' in expr, f"{where}: {expr}"
