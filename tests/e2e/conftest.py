"""Fixtures of the end-to-end tests: the CRD installed, the operator running, a namespace per test."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

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
    testbed.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/durabletopics.durabletopic.dev"
    )


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
