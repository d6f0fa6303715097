"""Fixtures of the monitoring tests: Debian's promtool (installed into the cache on first use) and the
chart's alert rules, rendered by the test bed's helm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.monitoring.prometheus import chart_rules, promtool
from tests.packaging.conftest import cached_binary
from tests.testbed import Testbed

# The extra alert label the rules are rendered with, so the unit tests see `alertLabels` applied.
ALERT_LABELS = ("--set", "prometheusRule.alertLabels.team=platform")


@pytest.fixture(scope="session")
def helm_binary() -> Path:
    return cached_binary(Testbed().helm_path)


@pytest.fixture(scope="session")
def promtool_binary() -> Path:
    return promtool()


@pytest.fixture(scope="session")
def rules(helm_binary: Path) -> dict[str, Any]:
    """The chart's alert rules as shipped (default values), with the label team=platform on every alert."""
    return chart_rules(helm_binary, *ALERT_LABELS)
