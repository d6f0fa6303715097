"""The operator as users run it: the image built from the Dockerfile, in Pods on the test bed's node,
installed, upgraded and removed by Helm, and applied from deploy/ with kustomize.

The Pods are on the node's pod network. They reach the API server through the `kubernetes` Service, as
in any cluster, and Kafka at the brokers' listener for Pods, with the chart's ServiceAccount token and
nothing else. The session's own operator process is stopped while
this module runs, so that only the operator in the Pods reconciles.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.helpers import Kube, describe, ready, wait_for
from tests.e2e.test_rbac import granted, used
from tests.testbed.image import BuiltImage, build_image
from tests.testbed.operator_process import OPERATOR_NAMESPACE, OperatorProcess

pytestmark = [pytest.mark.testbed]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "durable-topic-operator"
RELEASE = "dto"
RELEASE_NAMESPACE = "dto-system"
FULLNAME = f"{RELEASE}-durable-topic-operator"
LEASE = "durable-topic-operator"
SERVICE_ACCOUNT_USER = f"system:serviceaccount:{RELEASE_NAMESPACE}:{FULLNAME}"
SELECTOR = f"app.kubernetes.io/instance={RELEASE}"
# The chart's default memory limit of the operator container.
MEMORY_LIMIT = 512 * 1024 * 1024
BURST_TOPICS = 1000


@dataclass(frozen=True)
class Images:
    built: BuiltImage
    first: str  # the tag of the first install
    next: str  # the tag an upgrade moves to: the same image under a new name

    @property
    def repository(self) -> str:
        return self.built.name.rpartition(":")[0]


@pytest.fixture(scope="module")
def images(node: Any) -> Images:
    built = build_image()
    first = built.name.rpartition(":")[2]
    following = f"{first}-next"
    node.import_image(built.archive, built.name)
    node.import_image(built.archive, f"{built.name}-next")
    return Images(built, first, following)


@pytest.fixture(scope="module")
def only_pods_reconcile(operator: OperatorProcess) -> Iterator[None]:
    """The session's operator process stopped while the operator runs in Pods."""
    operator.stop()
    try:
        yield
    finally:
        operator.start()


class Cluster:
    """kubectl and helm on the test bed, as the cluster's administrator."""

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
        pods = self.pods(namespace, selector)
        ready_ones = [p for p in pods if p["status"].get("phase") == "Running" and _ready(p)]
        return ready_ones if len(ready_ones) == count and len(pods) == count else None

    def lease_holder(self, namespace: str) -> str | None:
        found = self.testbed.kubectl("get", "lease", LEASE, "-n", namespace, "-o", "json", check=False)
        if found.returncode != 0:
            return None
        holder = json.loads(found.stdout)["spec"].get("holderIdentity")
        return str(holder) if holder else None


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def leader_pod(cluster: Cluster, namespace: str, pods: list[dict[str, Any]]) -> str | None:
    """The Pod whose operator holds the Lease (its identity is the Pod's host name and a suffix)."""
    holder = cluster.lease_holder(namespace)
    names = [p["metadata"]["name"] for p in pods]
    return next((n for n in names if holder and holder.startswith(f"{n}-")), None)


def pod_values(node: Any, images: Images, tag: str, **extra: Any) -> dict[str, Any]:
    """The values a user on this cluster would give: the image and the Kafka address, nothing else."""
    return {
        "image": {"repository": images.repository, "tag": tag, "pullPolicy": "Never"},
        "kafka": {"bootstrapServers": node.pod_bootstrap_servers},
        **extra,
    }


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Release:
    cluster: Cluster
    values_file: Path
    installed_at: str


@pytest.fixture(scope="module")
def release(  # type: ignore[no-untyped-def]
    testbed, node: Any, images: Images, crd_installed: None, only_pods_reconcile: None, tmp_path_factory
) -> Iterator[Release]:
    cluster = Cluster(testbed)
    values = tmp_path_factory.mktemp("helm") / "values.yaml"
    values.write_text(yaml.safe_dump(pod_values(node, images, images.first)))
    installed_at = now_rfc3339()
    cluster.helm(
        "install", RELEASE, str(CHART), "-n", RELEASE_NAMESPACE, "--create-namespace",
        "-f", str(values), "--wait", "--timeout", "240s",
    )  # fmt: skip
    try:
        yield Release(cluster, values, installed_at)
    finally:
        subprocess.run(
            [str(testbed.helm_path), "--kubeconfig", str(testbed.kubeconfig), "uninstall", RELEASE,
             "-n", RELEASE_NAMESPACE, "--wait", "--timeout", "120s"],
            capture_output=True, check=False,
        )  # fmt: skip


def durable_topic(namespace: str, name: str) -> dict[str, Any]:
    return {
        "topicName": f"{namespace}.{name}",
        "partitions": 1,
        "replicationFactor": 3,
        "minInSyncReplicas": 2,
    }


def test_helm_install_runs_both_replicas_one_leads_and_topics_become_ready(
    release: Release, kube: Kube, namespace: str, kafka_admin: Any
) -> None:
    cluster = release.cluster
    pods = wait_for(
        "two Running and Ready replicas", lambda: cluster.ready_pods(RELEASE_NAMESPACE, SELECTOR, 2), 120
    )
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {
        f"localhost/durable-topic-operator:{release_tag(cluster)}"
    }
    leader = wait_for(
        "one replica to hold the Lease", lambda: leader_pod(cluster, RELEASE_NAMESPACE, pods), 60
    )
    assert leader in {p["metadata"]["name"] for p in pods}

    kube.create(namespace, "orders", durable_topic(namespace, "orders"))
    status = ready(kube, namespace, "orders", timeout=90)["status"]
    facts = describe(kafka_admin, f"{namespace}.orders")
    assert facts is not None and facts.replication_factor == 3
    assert facts.effective["min.insync.replicas"] == "2"
    assert facts.effective["unclean.leader.election.enable"] == "false"
    assert status["topicId"] == facts.topic_id


def release_tag(cluster: Cluster) -> str:
    deployment = cluster.json("get", "deployment", FULLNAME, "-n", RELEASE_NAMESPACE)
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"]).rpartition(":")[2]


def test_the_pods_use_the_charts_service_account_and_nothing_more(
    release: Release, testbed: Any, kube: Kube, namespace: str
) -> None:
    cluster = release.cluster
    pods = wait_for("two Ready replicas", lambda: cluster.ready_pods(RELEASE_NAMESPACE, SELECTOR, 2), 120)
    for pod in pods:
        assert pod["spec"]["serviceAccountName"] == FULLNAME
        env = {e["name"] for e in pod["spec"]["containers"][0].get("env") or []}
        assert "KUBECONFIG" not in env, "no kubeconfig: the in-cluster ServiceAccount token only"
    kube.create(namespace, "audited", durable_topic(namespace, "audited"))
    ready(kube, namespace, "audited", timeout=90)
    rendered = cluster.helm("get", "manifest", RELEASE, "-n", RELEASE_NAMESPACE)
    roles = [d for d in yaml.safe_load_all(rendered) if d and d.get("kind") in ("ClusterRole", "Role")]
    asked, refused = used(testbed.audit_log, SERVICE_ACCOUNT_USER, release.installed_at)
    assert asked, f"no request of {SERVICE_ACCOUNT_USER}: the Pods did not use the chart's identity"
    assert refused == [], [f"{e['verb']} {e['requestURI']}" for e in refused]
    assert asked <= granted(roles), sorted(asked - granted(roles))


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def root_mount_options(pid: int) -> set[str]:
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            return set(fields[5].split(","))
    raise AssertionError(f"no root mount in /proc/{pid}/mountinfo")


def memory_cgroup(pid: int) -> Path:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory") / path.lstrip("/")
    raise AssertionError(f"no memory cgroup for {pid}")


def test_the_security_context_holds_in_the_running_container(release: Release, node: Any) -> None:
    cluster = release.cluster
    pods = wait_for("two Ready replicas", lambda: cluster.ready_pods(RELEASE_NAMESPACE, SELECTOR, 2), 120)
    for pod in pods:
        pid = node.container_pid(RELEASE_NAMESPACE, pod["metadata"]["name"], "operator")
        status = proc_status(pid)
        assert status["Uid"].split() == ["10001"] * 4, status["Uid"]
        assert status["Gid"].split() == ["10001"] * 4, status["Gid"]
        assert status["NoNewPrivs"] == "1", "allowPrivilegeEscalation: false"
        for capabilities in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(status[capabilities], 16) == 0, f"{capabilities} {status[capabilities]}: all dropped"
        assert status["Seccomp"] == "2", "RuntimeDefault seccomp filter"
        assert "ro" in root_mount_options(pid), "readOnlyRootFilesystem"
        assert int((memory_cgroup(pid) / "memory.limit_in_bytes").read_text()) == MEMORY_LIMIT


def test_a_burst_of_a_thousand_topics_stays_inside_the_memory_limit(
    release: Release, node: Any, kube: Kube, namespace: str, kafka_admin: Any
) -> None:
    cluster = release.cluster
    pods = wait_for("two Ready replicas", lambda: cluster.ready_pods(RELEASE_NAMESPACE, SELECTOR, 2), 120)
    leader = wait_for("a leader", lambda: leader_pod(cluster, RELEASE_NAMESPACE, pods), 60)
    cgroup = memory_cgroup(node.container_pid(RELEASE_NAMESPACE, leader, "operator"))
    names = [f"burst-{i:04d}" for i in range(BURST_TOPICS)]
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: kube.create(namespace, n, durable_topic(namespace, n)), names))

    def all_ready() -> bool | None:
        items = kube.custom.list_namespaced_custom_object(
            "durabletopic.dev", "v1alpha1", namespace, "durabletopics"
        )["items"]
        done = sum(
            1
            for o in items
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in o.get("status", {}).get("conditions", [])
            )
        )
        return done == BURST_TOPICS or None

    wait_for(f"{BURST_TOPICS} DurableTopics Ready", all_ready, 600, interval=2)
    elapsed = time.monotonic() - started
    peak = int((cgroup / "memory.max_usage_in_bytes").read_text())
    limit = int((cgroup / "memory.limit_in_bytes").read_text())
    print(
        f"\n{BURST_TOPICS} topics Ready in the Pod in {elapsed:.1f} s; memory peak {peak / 2**20:.1f} MiB of {limit / 2**20:.0f} MiB"
    )
    assert peak < limit
    assert int((cgroup / "memory.failcnt").read_text()) == 0, "the limit was never hit"
    for pod in cluster.pods(RELEASE_NAMESPACE, SELECTOR):
        for status in pod["status"]["containerStatuses"]:
            assert status["restartCount"] == 0, status
            assert "terminated" not in (status.get("lastState") or {}), status["lastState"]
    assert describe(kafka_admin, f"{namespace}.{names[-1]}") is not None
    forget_all(kube, kafka_admin, namespace)


def forget_all(kube: Kube, kafka_admin: Any, namespace: str) -> None:
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


def test_deleting_the_leader_pod_hands_over_at_once_and_the_pod_is_replaced(
    release: Release, kube: Kube, namespace: str
) -> None:
    cluster = release.cluster
    pods = wait_for("two Ready replicas", lambda: cluster.ready_pods(RELEASE_NAMESPACE, SELECTOR, 2), 120)
    leader = wait_for("a leader", lambda: leader_pod(cluster, RELEASE_NAMESPACE, pods), 60)
    other = next(p["metadata"]["name"] for p in pods if p["metadata"]["name"] != leader)
    started = time.monotonic()
    cluster.kubectl("delete", "pod", leader, "-n", RELEASE_NAMESPACE, "--wait=false")
    wait_for(
        "the other replica to lead", lambda: leader_pod(cluster, RELEASE_NAMESPACE, pods) == other or None, 15
    )
    handover = time.monotonic() - started
    print(f"\nthe other replica led {handover:.1f} s after the leader Pod was deleted")
    # The leader gives the Lease up on SIGTERM, before anything else stops: the standby takes it at its
    # next try (every 2 s), not when the Lease expires (10 s) or when the old Pod has finished exiting.
    assert handover < 5, f"the handover took {handover:.1f} s: the Lease was not given up at once"
    replaced = wait_for(
        "two Ready replicas again", lambda: cluster.ready_pods(RELEASE_NAMESPACE, SELECTOR, 2), 120
    )
    assert leader not in {p["metadata"]["name"] for p in replaced}
    kube.create(namespace, "after-handover", durable_topic(namespace, "after-handover"))
    ready(kube, namespace, "after-handover", timeout=90)


def topics_of(kafka_admin: Any, namespace: str) -> dict[str, Any]:
    return {
        name: facts
        for name in sorted(kafka_admin.list_topics(timeout=10).topics)
        if name.startswith(f"{namespace}.") and (facts := describe(kafka_admin, name)) is not None
    }


def test_helm_upgrade_rolls_to_a_new_tag_and_changes_no_topic(
    release: Release, node: Any, images: Images, kube: Kube, namespace: str, kafka_admin: Any
) -> None:
    cluster = release.cluster
    names = [f"kept-{i}" for i in range(5)]
    for name in names:
        kube.create(namespace, name, durable_topic(namespace, name))
    before_status = {name: ready(kube, namespace, name, timeout=90)["status"] for name in names}
    before = topics_of(kafka_admin, namespace)
    old_pods = {p["metadata"]["name"] for p in cluster.pods(RELEASE_NAMESPACE, SELECTOR)}

    values = release.values_file.parent / "values-next.yaml"
    values.write_text(yaml.safe_dump(pod_values(node, images, images.next, logLevel="DEBUG")))
    cluster.helm(
        "upgrade",
        RELEASE,
        str(CHART),
        "-n",
        RELEASE_NAMESPACE,
        "-f",
        str(values),
        "--wait",
        "--timeout",
        "240s",
    )
    cluster.kubectl("rollout", "status", f"deployment/{FULLNAME}", "-n", RELEASE_NAMESPACE, "--timeout=180s")

    pods = wait_for(
        "two Ready replicas of the new tag", lambda: cluster.ready_pods(RELEASE_NAMESPACE, SELECTOR, 2), 120
    )
    assert not old_pods & {p["metadata"]["name"] for p in pods}, "every Pod replaced"
    for pod in pods:
        container = pod["spec"]["containers"][0]
        assert container["image"].endswith(f":{images.next}")
        assert "--log-level=DEBUG" in container["args"]
    wait_for("a leader of the new tag", lambda: leader_pod(cluster, RELEASE_NAMESPACE, pods), 60)
    time.sleep(12)  # a sweep of the new leader over the kept topics
    assert topics_of(kafka_admin, namespace) == before, "no topic changed by the upgrade"
    for name in names:
        status = ready(kube, namespace, name, timeout=30)["status"]
        assert status["topicId"] == before_status[name]["topicId"]
    kube.create(namespace, "after-upgrade", durable_topic(namespace, "after-upgrade"))
    ready(kube, namespace, "after-upgrade", timeout=90)


def test_helm_uninstall_removes_the_operator_and_keeps_every_topic_and_the_crd(
    release: Release, kube: Kube, namespace: str, kafka_admin: Any
) -> None:
    cluster = release.cluster
    kube.create(namespace, "retained", durable_topic(namespace, "retained"))
    ready(kube, namespace, "retained", timeout=90)
    before = topics_of(kafka_admin, namespace)
    cluster.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", "--timeout", "120s")
    wait_for("the operator Pods gone", lambda: not cluster.pods(RELEASE_NAMESPACE, SELECTOR) or None, 90)
    assert cluster.kubectl("get", "deployments", "-n", RELEASE_NAMESPACE, "-o", "name").strip() == ""
    assert topics_of(kafka_admin, namespace) == before, "every topic stays (Retain)"
    assert kube.exists(namespace, "retained"), "the DurableTopic stays"
    crd = cluster.json("get", "crd", "durabletopics.durabletopic.dev")
    assert crd["metadata"]["name"] == "durabletopics.durabletopic.dev", "Helm keeps the CRDs of crds/"


# ----- kubectl apply -k deploy/


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
    testbed, node: Any, images: Images, crd_installed: None, only_pods_reconcile: None,
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
        wait_for("one replica to hold the Lease", lambda: leader_pod(cluster, OPERATOR_NAMESPACE, pods), 60)
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
