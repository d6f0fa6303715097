"""Fixtures of the end-to-end tests: the CRD installed, the operator running, a namespace per test."""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helpers import Kube
from tests.testbed.operator_process import OPERATOR_NAMESPACE, OperatorProcess

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def kube(testbed) -> Kube:  # type: ignore[no-untyped-def]
    return Kube(str(testbed.kubeconfig))


@pytest.fixture(scope="session")
def crd_installed(testbed) -> None:  # type: ignore[no-untyped-def]
    testbed.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    # Every CRD of crds/: the operator watches them all from its start.
    testbed.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(ROOT / "crds"))


# The Secret and ConfigMap of the KafkaCluster the RBAC tests create (see namespaced_identity).
CLUSTER_SECRET = "rbac-kafka-credentials"
CLUSTER_CA = "rbac-kafka-ca"
RBAC_KINDS = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


@pytest.fixture(scope="session")
def operator_kubeconfig(testbed, crd_installed, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """A kubeconfig holding the token of the operator's own ServiceAccount, bound by deploy/'s RBAC.

    Only the identity and its RBAC are installed from deploy/: its Deployment would never run
    here (no kubelet) and its admission policy would change what other tests see.
    """
    rendered = testbed.kubectl("kustomize", str(ROOT / "deploy")).stdout
    identity = [doc for doc in yaml.safe_load_all(rendered) if doc and doc.get("kind") in RBAC_KINDS]
    testbed.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(identity))
    token = testbed.kubectl(
        "create", "token", "durable-topic-operator", "-n", OPERATOR_NAMESPACE, "--duration", "24h"
    ).stdout.strip()
    return Path(
        testbed.kubeconfig_for_token(token, tmp_path_factory.mktemp("sa") / "kubeconfig", user="operator")
    )


@pytest.fixture(scope="session")
def operator(testbed, operator_kubeconfig, tmp_path_factory) -> Iterator[OperatorProcess]:  # type: ignore[no-untyped-def]
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    proc = OperatorProcess(
        bootstrap_servers=testbed.bootstrap_servers,
        kubeconfig=operator_kubeconfig,
        log_path=log_path,
        env={"DURABLETOPIC_LEADER_ELECTION_NAMESPACE": OPERATOR_NAMESPACE},
    )
    proc.start()
    yield proc
    proc.stop()
    print(f"operator log: {log_path}")


@pytest.fixture
def namespace(kube: Kube, testbed) -> Iterator[str]:  # type: ignore[no-untyped-def]
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    testbed.kubectl("create", "namespace", name)
    yield name
    subprocess.run(
        [
            str(testbed.kubectl_path),
            "--kubeconfig",
            str(testbed.kubeconfig),
            "delete",
            "namespace",
            name,
            "--wait=false",
        ],
        capture_output=True,
        check=False,
    )


@contextlib.contextmanager
def operator_instead(
    session: OperatorProcess, log_path: Path, *, kubeconfig: Path | None = None, **env: str
) -> Iterator[OperatorProcess]:
    """Another operator process in place of the session's (which is stopped meanwhile, so that only
    one reconciles): the same settings, with `env` on top."""
    session.stop()
    other = OperatorProcess(
        bootstrap_servers=session.bootstrap_servers,
        kubeconfig=kubeconfig or session.kubeconfig,
        log_path=log_path,
        env={**session.extra_env, **env},
    )
    try:
        other.start()
        yield other
    finally:
        other.stop()
        session.start()


# The throttle of `slow_operator`: a 10 MB move takes tens of seconds, long enough to interrupt.
SLOW_THROTTLE = 256 * 1024


@pytest.fixture
def slow_operator(operator: OperatorProcess, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The operator with a tight replication throttle, so that a move lasts long enough to interrupt."""
    throttle = {"DURABLETOPIC_REASSIGNMENT_THROTTLE_BYTES_PER_SECOND": str(SLOW_THROTTLE)}
    with operator_instead(operator, tmp_path / "slow-operator.log", **throttle) as slow:
        yield slow


@dataclass(frozen=True)
class Identity:
    """An operator identity from the chart: its ServiceAccount (as a user name), the RBAC documents the
    chart rendered for it, a kubeconfig with its token, and the namespace it lives in."""

    user: str
    rbac: list[dict[str, Any]]
    kubeconfig: Path
    namespace: str


@pytest.fixture
def namespaced_identity(testbed, crd_installed, namespace: str, tmp_path: Path) -> Iterator[Identity]:  # type: ignore[no-untyped-def]
    """The chart's ServiceAccount and RBAC in namespaced mode (watchNamespaces: [namespace]), installed
    under a release of its own: what a team that runs the operator for one namespace gets."""
    release = f"r{uuid.uuid4().hex[:6]}"
    home = f"{namespace}-op"
    testbed.kubectl("create", "namespace", home)
    chart = str(ROOT / "charts" / "durable-topic-operator")
    watched = f"watchNamespaces={{{namespace}}}"
    # The KafkaCluster credentials the RBAC test reads: granted by name, in the release's namespace.
    access = json.dumps([{"namespace": home, "secrets": [CLUSTER_SECRET], "configMaps": [CLUSTER_CA]}])
    rendered = subprocess.run(
        [
            str(testbed.helm_path),
            "template",
            release,
            chart,
            "--namespace",
            home,
            "--set",
            watched,
            "--set-json",
            f"clusterSecretAccess={access}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    identity_docs = [d for d in yaml.safe_load_all(rendered) if d and d.get("kind") in RBAC_KINDS]
    testbed.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(identity_docs))
    (account,) = [d["metadata"]["name"] for d in identity_docs if d["kind"] == "ServiceAccount"]
    token = testbed.kubectl("create", "token", account, "-n", home, "--duration", "2h").stdout.strip()
    kubeconfig = Path(testbed.kubeconfig_for_token(token, tmp_path / "identity-kubeconfig", user=account))
    try:
        yield Identity(
            user=f"system:serviceaccount:{home}:{account}",
            rbac=[d for d in identity_docs if d["kind"] in ("ClusterRole", "Role")],
            kubeconfig=kubeconfig,
            namespace=home,
        )
    finally:
        for doc in identity_docs:
            if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                testbed.kubectl(
                    "delete", doc["kind"].lower(), doc["metadata"]["name"], "--ignore-not-found", check=False
                )
        testbed.kubectl("delete", "namespace", home, "--wait=false", check=False)
