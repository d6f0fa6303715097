"""The chart's Grafana dashboard as shipped (its ConfigMap, rendered by helm) and its queries as plain
PromQL: Grafana's variables replaced by values Prometheus understands."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from durabletopic.adapters.prometheus import Metrics
from tests.monitoring.prometheus import render_one
from tests.packaging.conftest import ROOT

# Grafana's variables of the dashboard, as a query would have them with "All" selected.
ALL = {"job": ".*", "cluster": ".*", "__rate_interval": "1m"}
# The metric name of a selector: an identifier right before `{` (every query of the dashboard but one
# filters by job), or the whole expression.
METRIC = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SELECTOR = re.compile(rf"({METRIC})\s*\{{")
# Grafana's `label_values(SELECTOR, LABEL)` of a variable: the selector is PromQL.
LABEL_VALUES = re.compile(r"^label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$")


def rendered_dashboard(helm: Path) -> dict[str, Any]:
    """The dashboard JSON of the chart's ConfigMap."""
    configmap = render_one(helm, "grafana-dashboard.yaml", "--set", "grafanaDashboard.enabled=true")
    dashboard: dict[str, Any] = json.loads(configmap["data"]["durable-topic-operator.json"])
    return dashboard


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included."""

    def walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from walk(panel.get("panels", []))

    yield from walk(dashboard["panels"])


def queries(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(where, Grafana expression) of every panel target and every query variable's selector."""
    found = [
        (f"panel {panel['title']!r} target {target.get('refId', '?')}", target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = LABEL_VALUES.match(variable["definition"])
            assert match, f"variable {variable['name']}: not label_values(...): {variable['definition']}"
            found.append((f"variable {variable['name']}", match.group(1)))
    return found


def as_promql(expr: str, values: Mapping[str, str] = ALL) -> str:
    """`expr` with Grafana's $name and ${name} variables replaced by `values`."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"unknown dashboard variable ${name} in {expr}"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def metric_names(expr: str) -> set[str]:
    if re.fullmatch(METRIC, expr.strip()):
        return {expr.strip()}
    return set(SELECTOR.findall(expr))


def exported_series() -> set[str]:
    """Every series name the operator's /metrics can show (histogram and counter suffixes included)."""
    names = set()
    for family in Metrics().registry.collect():
        names.add(family.name)
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


def readme_metrics() -> set[str]:
    """The metric names of the README's metrics reference table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))


def family_name(series: str) -> str:
    """The metric a series belongs to: a histogram's _bucket, _sum and _count are the histogram's."""
    return re.sub(r"_(bucket|sum|count)$", "", series)
