"""kubectl and helm on the test bed as its administrator, and what the in-cluster tests read back."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from tests.e2e.helpers import Kube, TopicFacts, describe, wait_for

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "durable-topic-operator"
LEASE = "durable-topic-operator"


class Cluster:
    def __init__(self, testbed: Any) -> None:
        self.testbed = testbed

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return str(self.testbed.kubectl(*args, input=input).stdout)

    def helm(self, *args: str, timeout: float = 300) -> str:
        cmd = [str(self.testbed.helm_path), "--kubeconfig", str(self.testbed.kubeconfig), *args]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return [
            p
            for p in self.json("get", "pods", "-n", namespace, "-l", selector)["items"]
            if not p["metadata"].get("deletionTimestamp")
        ]

    def ready_pods(self, namespace: str, selector: str, count: int) -> list[dict[str, Any]] | None:
        """Exactly `count` Pods, every one Running and Ready; None otherwise."""
        pods = self.pods(namespace, selector)
        ready_ones = [p for p in pods if p["status"].get("phase") == "Running" and _ready(p)]
        return ready_ones if len(ready_ones) == count and len(pods) == count else None

    def wait_ready_pods(
        self, namespace: str, selector: str, count: int = 2, timeout: float = 120
    ) -> list[dict[str, Any]]:
        return wait_for(
            f"{count} Running and Ready Pods ({selector})",
            lambda: self.ready_pods(namespace, selector, count),
            timeout,
        )

    def lease_holder(self, namespace: str) -> str | None:
        found = self.testbed.kubectl("get", "lease", LEASE, "-n", namespace, "-o", "json", check=False)
        if found.returncode != 0:
            return None
        holder = json.loads(found.stdout)["spec"].get("holderIdentity")
        return str(holder) if holder else None

    def leader_pod(self, namespace: str, pods: list[dict[str, Any]]) -> str | None:
        """The Pod whose operator holds the Lease (its identity is the Pod's host name and a suffix)."""
        holder = self.lease_holder(namespace)
        names = [p["metadata"]["name"] for p in pods]
        return next((n for n in names if holder and holder.startswith(f"{n}-")), None)


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def durable_topic(namespace: str, name: str) -> dict[str, Any]:
    return {
        "topicName": f"{namespace}.{name}",
        "partitions": 1,
        "replicationFactor": 3,
        "minInSyncReplicas": 2,
    }


def topics_of(kafka_admin: AdminClient, namespace: str) -> dict[str, TopicFacts]:
    """Every topic of the test's namespace as Kafka describes it: id, partitions, RF, configs."""
    return {
        name: facts
        for name in sorted(kafka_admin.list_topics(timeout=10).topics)
        if name.startswith(f"{namespace}.") and (facts := describe(kafka_admin, name)) is not None
    }


def ready_count(kube: Kube, namespace: str) -> int:
    items = kube.custom.list_namespaced_custom_object(
        "durabletopic.dev", "v1alpha1", namespace, "durabletopics"
    )["items"]
    return sum(
        1
        for o in items
        if any(
            c["type"] == "Ready" and c["status"] == "True" for c in o.get("status", {}).get("conditions", [])
        )
    )


def forget_all(kube: Kube, kafka_admin: AdminClient, namespace: str) -> None:
    """Every DurableTopic of `namespace` deleted (the default deletion policy keeps their topics), then
    their topics, so that the rest of the session does not carry them."""
    kube.custom.delete_collection_namespaced_custom_object(
        "durabletopic.dev", "v1alpha1", namespace, "durabletopics"
    )

    def gone() -> bool | None:
        left = kube.custom.list_namespaced_custom_object(
            "durabletopic.dev", "v1alpha1", namespace, "durabletopics"
        )
        return not left["items"] or None

    wait_for("the DurableTopics deleted", gone, 300, interval=1)
    topics = [t for t in kafka_admin.list_topics(timeout=10).topics if t.startswith(f"{namespace}.")]
    if topics:
        for future in kafka_admin.delete_topics(topics, operation_timeout=60).values():
            future.result()
