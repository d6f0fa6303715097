"""Fixtures of the packaging tests: the chart, deploy/, the Dockerfile and the Argo CD health check.

The tools come from the cache: helm and kubectl from ``tests/testbed/install.sh`` (``make
testbed-install``), which also generates the Prometheus Operator's CRDs (on first use if missing);
hadolint, checkov and lua5.4 from ``tests/packaging/tools.sh``, which installs them on first use.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.testbed import Testbed

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "durable-topic-operator"
DEPLOY = ROOT / "deploy"
TOOLS_SH = Path(__file__).with_name("tools.sh")
INSTALL_SH = ROOT / "tests" / "testbed" / "install.sh"
CRD_FILES = (
    "durabletopics.durabletopic.dev.yaml",
    "durabilitypolicies.durabletopic.dev.yaml",
    "kafkaclusters.durabletopic.dev.yaml",
)
# The Prometheus Operator's CRDs of the objects the chart can create (serviceMonitor, prometheusRule).
MONITORING_CRDS = ("servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com")
# The label of the namespaces a test makes (`scratch`): admission policies of a test are bound to its own.
LABEL = "durabletopic.dev/packaging-test"


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


# ------------------------------------------------------------------------- the real API server


@pytest.fixture(scope="module")
def crd_installed(testbed: Any) -> None:
    testbed.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    testbed.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        *(f"crd/{name.removesuffix('.yaml')}" for name in CRD_FILES),
    )


@pytest.fixture(scope="session")
def prometheus_operator_crds() -> Path:
    """The folder of the Prometheus Operator's CRDs, generated once into the cache (a no-op after)."""
    run(["bash", INSTALL_SH, "prometheus-operator-crds"], timeout=900)
    folder = Testbed().prometheus_operator_crds_dir
    assert (folder / ".complete").exists(), f"{INSTALL_SH} left {folder} incomplete"
    return folder


@pytest.fixture(scope="module")
def monitoring_crds_installed(testbed: Any, prometheus_operator_crds: Path) -> None:
    """ServiceMonitor and PrometheusRule known to the test bed's API server, with their schemas."""
    # controller-gen names each file <group>_<plural>.yaml.
    files = [
        prometheus_operator_crds / "{1}_{0}.yaml".format(*name.split(".", 1)) for name in MONITORING_CRDS
    ]
    testbed.kubectl("apply", "--server-side", "--force-conflicts", *(f"--filename={f}" for f in files))
    testbed.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{name}" for name in MONITORING_CRDS)
    )


@pytest.fixture
def scratch(testbed: Any) -> Iterator[tuple[str, str]]:
    """A fresh namespace carrying a label no other test uses: (namespace, label value)."""
    token = secrets.token_hex(4)
    namespace = f"pkg-{token}"
    testbed.kubectl("create", "namespace", namespace)
    testbed.kubectl("label", "namespace", namespace, f"{LABEL}={token}")
    try:
        yield namespace, token
    finally:
        testbed.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)


@dataclass
class HelmRelease:
    """A release of the chart on the test bed, in a test's scratch namespace."""

    name: str
    namespace: str
    helm: list[str | Path]  # helm with the test bed's kubeconfig and the namespace

    installed: bool = False

    @property
    def fullname(self) -> str:
        return f"{self.name}-durable-topic-operator"

    def install(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = run([*self.helm, "install", self.name, CHART, *args])
        self.installed = True
        return result

    def uninstall(self) -> None:
        run([*self.helm, "uninstall", self.name, "--wait", "--timeout", "60s"])
        self.installed = False


@pytest.fixture
def helm_release(testbed: Any, helm: Path, scratch: tuple[str, str]) -> Iterator[HelmRelease]:
    """A release named after the scratch namespace, uninstalled at the end if the test left it installed."""
    namespace, token = scratch
    release = HelmRelease(
        f"pkg-{token}", namespace, [helm, "--kubeconfig", testbed.kubeconfig, "--namespace", namespace]
    )
    yield release
    if release.installed:
        run([*release.helm, "uninstall", release.name], check=False)


def dry_run_apply(testbed: Any, manifest: str) -> Any:
    """Server-side dry run: admission (CRD schema, CEL, admission policies) runs, nothing is stored,
    so no operator running on the test bed for other tests ever sees these objects."""
    return testbed.kubectl("apply", "--dry-run=server", "-f", "-", input=manifest, check=False)


def only_here(values_namespace_label: str) -> list[str]:
    """Helm flags that bind the chart's admission policy to this test's namespace only: other tests
    on the same test bed create DurableTopics below the floors on purpose."""
    return [
        "--set-json",
        "admissionPolicy.namespaceSelector=" + json.dumps({"matchLabels": {LABEL: values_namespace_label}}),
    ]


def can_i(
    testbed: Any, user: str, verb: str, resource: str, namespace: str | None = None, subresource: str = ""
) -> bool:
    """`resource` may be `resource/name`; a subresource (status) is its own argument."""
    args = ["auth", "can-i", verb, resource, "--as", user]
    args += ["--namespace", namespace] if namespace else ["--all-namespaces"]
    args += [f"--subresource={subresource}"] if subresource else []
    result = testbed.kubectl(*args, check=False)
    return result.stdout.strip() == "yes"
