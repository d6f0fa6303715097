"""The operator applied from deploy/ with `kubectl apply -k`, the image reference overridden in an
overlay (as a user points it at their registry), running in Pods on the test bed's node."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.conftest import Images
from tests.cluster.helpers import ROOT, Cluster, durable_topic
from tests.e2e.helpers import Kube, describe, ready, wait_for
from tests.testbed.operator_process import OPERATOR_NAMESPACE

pytestmark = [pytest.mark.testbed]


def write_overlay(directory: Path, node: Any, images: Images) -> Path:
    """An overlay of deploy/ with the local image and the test bed's addresses."""
    directory.mkdir(parents=True, exist_ok=True)
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "durable-topic-operator", "namespace": OPERATOR_NAMESPACE},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "operator",
                            "imagePullPolicy": "Never",
                            "env": [
                                {
                                    "name": "DURABLETOPIC_BOOTSTRAP_SERVERS",
                                    "value": node.pod_bootstrap_servers,
                                },
                            ],
                        }
                    ]
                }
            }
        },
    }
    (directory / "deployment-patch.yaml").write_text(yaml.safe_dump(patch))
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(ROOT / "deploy", directory)],
        "images": [
            {
                "name": "ghcr.io/durable-topic-operator/durable-topic-operator",
                "newName": images.repository,
                "newTag": images.first,
            }
        ],
        "patches": [{"path": "deployment-patch.yaml"}],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return directory


# What deleting the kustomize install removes: not the namespace, ServiceAccount and RBAC, which the
# session's operator process shares (deploy/ is where its identity comes from too).
KEPT_KINDS = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def test_kubectl_apply_k_deploy_runs_the_operator_in_pods(  # type: ignore[no-untyped-def]
    testbed, node: Any, images: Images, crd_installed: None,
    kube: Kube, namespace: str, kafka_admin: Any, tmp_path: Path,
) -> None:  # fmt: skip
    cluster = Cluster(testbed)
    overlay = write_overlay(tmp_path / "overlay", node, images)
    rendered = [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(overlay))) if d]
    selector = "app.kubernetes.io/name=durable-topic-operator"
    cluster.kubectl("apply", "-k", str(overlay))
    try:
        pods = wait_for(
            "two Running and Ready replicas", lambda: cluster.ready_pods(OPERATOR_NAMESPACE, selector, 2), 180
        )
        for pod in pods:
            assert pod["spec"]["containers"][0]["image"] == images.built.name
        wait_for("one replica to hold the Lease", lambda: cluster.leader_pod(OPERATOR_NAMESPACE, pods), 60)
        kube.create(namespace, "kustomized", durable_topic(namespace, "kustomized"))
        status = ready(kube, namespace, "kustomized", timeout=90)["status"]
        facts = describe(kafka_admin, f"{namespace}.kustomized")
        assert facts is not None and status["topicId"] == facts.topic_id
    finally:
        removable = [d for d in rendered if d["kind"] not in KEPT_KINDS]
        cluster.kubectl(
            "delete", "--ignore-not-found", "--wait=true", "-f", "-", input=yaml.safe_dump_all(removable)
        )
        wait_for("the operator Pods gone", lambda: not cluster.pods(OPERATOR_NAMESPACE, selector) or None, 90)
