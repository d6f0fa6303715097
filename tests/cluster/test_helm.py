"""The operator as users run it: the image built from the Dockerfile, in Pods on the test bed's node,
installed with the README's `helm install` line, upgraded and removed by Helm.

The Pods are on the node's pod network. They reach the API server through the `kubernetes` Service, as
in any cluster, and Kafka at the brokers' listener for Pods, with the chart's ServiceAccount token and
nothing else.
"""

from __future__ import annotations

import re
import shlex
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

from tests.cluster.conftest import Images
from tests.cluster.helpers import CHART, ROOT, Cluster, durable_topic, forget_all, ready_count, topics_of
from tests.e2e.helpers import Kube, describe, ready, wait_for
from tests.e2e.test_rbac import granted, used

pytestmark = [pytest.mark.testbed]

# The README's install: release durable-topic-operator in the namespace of the same name, so the
# chart's full name is the release name.
RELEASE = "durable-topic-operator"
RELEASE_NAMESPACE = "durable-topic-operator"
SELECTOR = f"app.kubernetes.io/instance={RELEASE}"
SERVICE_ACCOUNT_USER = f"system:serviceaccount:{RELEASE_NAMESPACE}:{RELEASE}"
# The chart's default memory limit of the operator container.
MEMORY_LIMIT = 512 * 1024 * 1024
BURST_TOPICS = 1000
# What deploy/ makes the operator's identity of: left by an earlier session on a kept test bed, they
# would keep Helm from installing the same names.
IDENTITY_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def readme_helm_install() -> list[str]:
    """The `helm install` command of the README's install section, word by word."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"^helm install (?:.*\\\n)*.*$", text, re.MULTILINE)
    assert found, "the README has a helm install line"
    return shlex.split(found.group(0).replace("\\\n", " "))


def with_bootstrap(command: list[str], bootstrap: str) -> list[str]:
    """The command with the test bed's Kafka in place of the README's example address."""
    out = list(command)
    for i, word in enumerate(out):
        if word.startswith("kafka.bootstrapServers="):
            escaped = bootstrap.replace(",", "\\,")  # --set splits at unescaped commas
            out[i] = f"kafka.bootstrapServers={escaped}"
            return out
    raise AssertionError(f"no kafka.bootstrapServers in {command}")


def image_values(images: Images, tag: str) -> dict[str, Any]:
    return {"image": {"repository": images.repository, "tag": tag, "pullPolicy": "Never"}}


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def remove_unowned_identity(cluster: Cluster) -> None:
    rendered = [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(ROOT / "deploy"))) if d]
    for doc in rendered:
        if doc["kind"] not in IDENTITY_KINDS:
            continue
        meta = doc["metadata"]
        where = ["-n", meta["namespace"]] if meta.get("namespace") else []
        found = cluster.testbed.kubectl("get", doc["kind"], meta["name"], *where, "-o", "json", check=False)
        if found.returncode == 0 and "meta.helm.sh/release-name" not in found.stdout:
            cluster.kubectl("delete", doc["kind"], meta["name"], *where)


@dataclass
class Release:
    cluster: Cluster
    installed_at: str
    values_dir: Path


@pytest.fixture(scope="module")
def release(  # type: ignore[no-untyped-def]
    testbed, node: Any, images: Images, crd_installed: None, tmp_path_factory
) -> Iterator[Release]:
    cluster = Cluster(testbed)
    # A release of the same name on a reused test bed (`make demo`'s) goes first.
    subprocess.run(
        [str(testbed.helm_path), "--kubeconfig", str(testbed.kubeconfig), "uninstall", RELEASE,
         "-n", RELEASE_NAMESPACE, "--wait", "--timeout", "120s", "--ignore-not-found"],
        capture_output=True, check=False,
    )  # fmt: skip
    remove_unowned_identity(cluster)
    values_dir = tmp_path_factory.mktemp("helm")
    values = values_dir / "image.yaml"
    values.write_text(yaml.safe_dump(image_values(images, images.first)))
    command = with_bootstrap(readme_helm_install(), node.pod_bootstrap_servers)
    installed_at = now_rfc3339()
    cluster.helm(*command[1:], "-f", str(values), "--wait", "--timeout", "240s")
    try:
        yield Release(cluster, installed_at, values_dir)
    finally:
        subprocess.run(
            [str(testbed.helm_path), "--kubeconfig", str(testbed.kubeconfig), "uninstall", RELEASE,
             "-n", RELEASE_NAMESPACE, "--wait", "--timeout", "120s"],
            capture_output=True, check=False,
        )  # fmt: skip


def test_helm_install_runs_both_replicas_one_leads_and_topics_become_ready(
    release: Release, node: Any, images: Images, kube: Kube, namespace: str, kafka_admin: Any
) -> None:
    cluster = release.cluster
    pods = cluster.wait_ready_pods(RELEASE_NAMESPACE, SELECTOR)
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {images.built.name}
    for pod in pods:
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        assert env["DURABLETOPIC_BOOTSTRAP_SERVERS"] == node.pod_bootstrap_servers, "every broker of the list"
    leader = wait_for(
        "one replica to hold the Lease", lambda: cluster.leader_pod(RELEASE_NAMESPACE, pods), 60
    )
    assert leader in {p["metadata"]["name"] for p in pods}

    kube.create(namespace, "orders", durable_topic(namespace, "orders"))
    status = ready(kube, namespace, "orders", timeout=90)["status"]
    facts = describe(kafka_admin, f"{namespace}.orders")
    assert facts is not None and facts.replication_factor == 3
    assert facts.effective["min.insync.replicas"] == "2"
    assert facts.effective["unclean.leader.election.enable"] == "false"
    assert status["topicId"] == facts.topic_id


def test_the_pods_use_the_charts_service_account_and_nothing_more(
    release: Release, testbed: Any, kube: Kube, namespace: str
) -> None:
    cluster = release.cluster
    pods = cluster.wait_ready_pods(RELEASE_NAMESPACE, SELECTOR)
    for pod in pods:
        assert pod["spec"]["serviceAccountName"] == RELEASE
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
    pods = cluster.wait_ready_pods(RELEASE_NAMESPACE, SELECTOR)
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
    pods = cluster.wait_ready_pods(RELEASE_NAMESPACE, SELECTOR)
    leader = wait_for("a leader", lambda: cluster.leader_pod(RELEASE_NAMESPACE, pods), 60)
    cgroup = memory_cgroup(node.container_pid(RELEASE_NAMESPACE, leader, "operator"))
    names = [f"burst-{i:04d}" for i in range(BURST_TOPICS)]
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: kube.create(namespace, n, durable_topic(namespace, n)), names))

    wait_for(
        f"{BURST_TOPICS} DurableTopics Ready",
        lambda: ready_count(kube, namespace) == BURST_TOPICS or None,
        600,
        interval=2,
    )
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


def test_deleting_the_leader_pod_hands_over_at_once_and_the_pod_is_replaced(
    release: Release, kube: Kube, namespace: str
) -> None:
    cluster = release.cluster
    pods = cluster.wait_ready_pods(RELEASE_NAMESPACE, SELECTOR)
    leader = wait_for("a leader", lambda: cluster.leader_pod(RELEASE_NAMESPACE, pods), 60)
    standby = next(p["metadata"]["name"] for p in pods if p["metadata"]["name"] != leader)

    def new_leader() -> str | None:
        led_by = cluster.leader_pod(RELEASE_NAMESPACE, cluster.pods(RELEASE_NAMESPACE, SELECTOR))
        return led_by if led_by != leader else None

    started = time.monotonic()
    cluster.kubectl("delete", "pod", leader, "-n", RELEASE_NAMESPACE, "--wait=false")
    successor = wait_for("another replica to lead", new_leader, 15)
    handover = time.monotonic() - started
    role = "the standby" if successor == standby else "the replacement Pod"
    print(f"\n{role} {successor} led {handover:.1f} s after the leader Pod was deleted")
    # The leader gives the Lease up on SIGTERM, before anything else stops: the standby takes it at its
    # next try (every 2 s), not when the Lease expires (10 s) or when the old Pod has finished exiting.
    # The Pod that replaces the deleted one may start before the kubelet signals the old one, and then
    # its first try can come before the standby's next: either way the handover is at once.
    assert handover < 5, f"the handover took {handover:.1f} s: the Lease was not given up at once"
    replaced = cluster.wait_ready_pods(RELEASE_NAMESPACE, SELECTOR)
    assert leader not in {p["metadata"]["name"] for p in replaced}
    kube.create(namespace, "after-handover", durable_topic(namespace, "after-handover"))
    ready(kube, namespace, "after-handover", timeout=90)


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

    values = release.values_dir / "image-next.yaml"
    values.write_text(yaml.safe_dump(image_values(images, images.next)))
    # --reuse-values: the install's values (the README's, the image's) stay; the tag and one value change.
    cluster.helm(
        "upgrade", RELEASE, str(CHART), "-n", RELEASE_NAMESPACE, "--reuse-values",
        "-f", str(values), "--set", "logLevel=DEBUG", "--wait", "--timeout", "240s",
    )  # fmt: skip
    cluster.kubectl("rollout", "status", f"deployment/{RELEASE}", "-n", RELEASE_NAMESPACE, "--timeout=180s")

    pods = cluster.wait_ready_pods(RELEASE_NAMESPACE, SELECTOR)
    assert not old_pods & {p["metadata"]["name"] for p in pods}, "every Pod replaced"
    for pod in pods:
        container = pod["spec"]["containers"][0]
        assert container["image"].endswith(f":{images.next}")
        assert "--log-level=DEBUG" in container["args"]
    wait_for("a leader of the new tag", lambda: cluster.leader_pod(RELEASE_NAMESPACE, pods), 60)
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
