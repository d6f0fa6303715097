"""Fixtures of the packaging tests: the chart, deploy/, the Dockerfile and the Argo CD health check.

The tools come from the cache: helm and kubectl from ``tests/testbed/install.sh`` (``make
testbed-install``), hadolint, checkov and lua5.4 from ``tests/packaging/tools.sh``, which installs
them on first use.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.testbed import Testbed

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "durable-topic-operator"
DEPLOY = ROOT / "deploy"
TOOLS_SH = Path(__file__).with_name("tools.sh")


def run(
    cmd: Sequence[str | Path],
    *,
    check: bool = True,
    input: str | None = None,
    timeout: float = 300,
    **kw: Any,
) -> subprocess.CompletedProcess[str]:
    """Runs a command; on an unexpected failure the assertion shows what it printed."""
    result = subprocess.run(
        [str(c) for c in cmd], input=input, capture_output=True, text=True, timeout=timeout, check=False, **kw
    )
    if check:
        assert result.returncode == 0, (
            f"{' '.join(map(str, cmd))} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def tool(name: str) -> Path:
    """Installs (once, cached) and returns one of hadolint, checkov, lua."""
    run(["bash", TOOLS_SH, name], timeout=900)
    return Path(run(["bash", TOOLS_SH, "path", name]).stdout.strip())


def cached_binary(path: Path) -> Path:
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: run `make testbed-install` (tests/testbed/install.sh)")
    return path


@pytest.fixture(scope="session")
def helm() -> Path:
    return cached_binary(Testbed().helm_path)


@pytest.fixture(scope="session")
def kubectl() -> Path:
    return cached_binary(Testbed().kubectl_path)


@pytest.fixture(scope="session")
def hadolint() -> Path:
    return tool("hadolint")


@pytest.fixture(scope="session")
def checkov() -> Path:
    return tool("checkov")


@pytest.fixture(scope="session")
def lua() -> Path:
    return tool("lua")


Render = Callable[..., list[dict[str, Any]]]


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="session")
def helm_template(helm: Path) -> Render:
    """``helm template`` of the chart: a list of objects (``text=True`` returns the YAML instead)."""

    def render(
        *args: str,
        release: str = "durable-topic-operator",
        namespace: str = "durable-topic-operator",
        text: bool = False,
    ) -> Any:
        out = run([helm, "template", release, CHART, "--namespace", namespace, *args]).stdout
        return out if text else docs(out)

    return render


@pytest.fixture(scope="session")
def kustomized(kubectl: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize deploy/``: what ``kubectl apply -k deploy/`` applies."""
    return docs(run([kubectl, "kustomize", DEPLOY]).stdout)


def by_kind(objects: Sequence[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: Sequence[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def rule_set(role: dict[str, Any]) -> frozenset[tuple[str, str, str, str]]:
    """A Role's or ClusterRole's rules as (apiGroup, resource, verb, resourceName) tuples."""
    out = set()
    for rule in role.get("rules") or []:
        for group in rule.get("apiGroups", [""]):
            for resource in rule.get("resources", []):
                for verb in rule.get("verbs", []):
                    for name in rule.get("resourceNames") or ["*"]:
                        out.add((group, resource, verb, name))
    return frozenset(out)
