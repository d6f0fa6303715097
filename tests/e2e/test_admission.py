"""Bad manifests are rejected by `kubectl apply` with a message that names the field."""

from __future__ import annotations

import subprocess

import pytest
import yaml

pytestmark = [pytest.mark.testbed, pytest.mark.usefixtures("crd_installed")]


def apply(testbed, namespace: str, spec: dict, name: str = "bad") -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def, type-arg]
    manifest = {
        "apiVersion": "durabletopic.dev/v1alpha1",
        "kind": "DurableTopic",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    return subprocess.run(
        [str(testbed.kubectl_path), "--kubeconfig", str(testbed.kubeconfig), "apply", "-f", "-"],
        input=yaml.safe_dump(manifest),
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"partitions": 1, "replicationFactor": 3, "minInSyncReplicas": 3},
            "spec.minInSyncReplicas must be less than spec.replicationFactor",
        ),
        ({"partitions": 1, "minInSyncReplicas": 0}, "spec.minInSyncReplicas"),
        ({"partitions": 1, "replicationFactor": 0}, "spec.replicationFactor"),
        (
            {"partitions": 1, "config": {"min.insync.replicas": "1"}},
            "spec.config must not set min.insync.replicas",
        ),
        ({"partitions": 1, "config": {"unclean.leader.election.enable": "true"}}, "spec.config must not set"),
        ({"partitions": 1, "topicName": "no/slashes"}, "spec.topicName"),
        ({"partitions": 1, "topicName": ".."}, "spec.topicName must be a legal Kafka topic name"),
        ({"partitions": 0}, "spec.partitions"),
        ({"replicationFactor": 3}, "spec.partitions"),
    ],
)
def test_invalid_manifest_rejected(testbed, namespace: str, spec: dict, expected: str) -> None:  # type: ignore[no-untyped-def, type-arg]
    result = apply(testbed, namespace, spec)
    assert result.returncode != 0, result.stdout
    assert expected in result.stderr


def test_transitions_rejected(testbed, namespace: str) -> None:  # type: ignore[no-untyped-def]
    assert apply(testbed, namespace, {"partitions": 3, "topicName": f"{namespace}.t"}, "t").returncode == 0
    shrink = apply(testbed, namespace, {"partitions": 2, "topicName": f"{namespace}.t"}, "t")
    assert shrink.returncode != 0 and "spec.partitions may only grow" in shrink.stderr
    rename = apply(testbed, namespace, {"partitions": 3, "topicName": f"{namespace}.other"}, "t")
    assert rename.returncode != 0 and "spec.topicName is immutable" in rename.stderr
