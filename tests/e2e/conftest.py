"""Fixtures of the end-to-end tests: the CRD installed, the operator running, a namespace per test."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.kube import Kube
from tests.e2e.operator_proc import OperatorProcess

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


@pytest.fixture(scope="session")
def operator(testbed, crd_installed, tmp_path_factory) -> Iterator[OperatorProcess]:  # type: ignore[no-untyped-def]
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    proc = OperatorProcess(
        bootstrap_servers=testbed.bootstrap_servers, kubeconfig=testbed.kubeconfig, log_path=log_path
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
