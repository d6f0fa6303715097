"""The test bed's node (tests/testbed/node.py): a real kubelet on containerd runs the bed's Pods on the
pod network, Pods reach Kafka and the API server from there, and a stopped node leaves nothing behind.

The last test stops and restarts the session's node (and crashes it once); it stays last in this file.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.testbed import K8S_VERSION, Testbed
from tests.testbed.node import NODE_NAME, Node
from tests.testbed.procs import is_alive, wait_until

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def _pause_deployment(name: str, namespace: str, image: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    # The same container port in both replicas: each Pod has an address of its own.
                    "containers": [
                        {
                            "name": "main",
                            "image": image,
                            "imagePullPolicy": "Never",
                            "ports": [{"containerPort": 8080}],
                        }
                    ],
                },
            },
        },
    }


def _ready_pods(bed: Testbed, namespace: str, app: str) -> list[dict[str, Any]]:
    pods = json.loads(bed.kubectl("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "json").stdout)
    return [
        pod
        for pod in pods["items"]
        if pod["status"].get("phase") == "Running"
        and any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))
    ]


def _wait_ready_pods(
    bed: Testbed, namespace: str, app: str, count: int, timeout: float = 90
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def enough() -> bool:
        found[:] = _ready_pods(bed, namespace, app)
        return len(found) == count

    wait_until(enough, timeout, f"{count} Ready Pods of {namespace}/{app}", interval=0.5)
    return found


@pytest.fixture
def namespace(node: Node, unique: str) -> Iterator[str]:
    """A namespace of its own, with its default ServiceAccount (Pods are refused until it exists)."""
    bed = node.bed
    bed.kubectl("create", "namespace", unique)
    wait_until(
        lambda: bed.kubectl("get", "serviceaccount", "default", "-n", unique, check=False).returncode == 0,
        60,
        f"the default ServiceAccount of {unique}",
    )
    yield unique
    bed.kubectl("delete", "namespace", unique, "--wait=false", check=False)


@pytest.fixture
def pause_pod(node: Node, namespace: str) -> str:
    """The one Ready Pod (container ``main``, the pause image) of a Deployment in ``namespace``."""
    node.bed.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(_pause_deployment("solo", namespace, node.programs.pause_image, 1)),
    )
    [pod] = _wait_ready_pods(node.bed, namespace, "solo", 1)
    return str(pod["metadata"]["name"])


def test_the_node_is_ready_with_the_api_servers_version_on_the_pod_network(node: Node) -> None:
    found = json.loads(node.bed.kubectl("get", "node", NODE_NAME, "-o", "json").stdout)
    ready = {c["type"]: c["status"] for c in found["status"]["conditions"]}
    assert ready["Ready"] == "True"
    assert found["status"]["nodeInfo"]["kubeletVersion"] == K8S_VERSION
    assert {"type": "InternalIP", "address": node.network.gateway} in found["status"]["addresses"]
    assert not found["spec"].get("taints"), "the not-ready taint is lifted once the node is Ready"


def test_two_replicas_with_the_same_port_run_on_the_pod_network(node: Node, namespace: str) -> None:
    deployment = _pause_deployment("pair", namespace, node.programs.pause_image, 2)
    node.bed.kubectl("apply", "-f", "-", input=json.dumps(deployment))

    pods = _wait_ready_pods(node.bed, namespace, "pair", 2)

    subnet = ipaddress.ip_network(node.network.subnet)
    addresses = {pod["status"]["podIP"] for pod in pods}
    assert len(addresses) == 2
    assert all(ipaddress.ip_address(a) in subnet and a != node.network.gateway for a in addresses)
    assert {pod["spec"]["nodeName"] for pod in pods} == {NODE_NAME}
    assert not any(pod["spec"].get("hostNetwork") for pod in pods)
    # The API server reaches the kubelet (logs, exec) at the node's address.
    node.bed.kubectl("logs", "-n", namespace, pods[0]["metadata"]["name"])


_KAFKA_PROBE = """
import json, sys
from confluent_kafka.admin import AdminClient
seen = {}
for server in sys.argv[1].split(","):
    metadata = AdminClient({"bootstrap.servers": server}).list_topics(timeout=20)
    seen[server] = sorted(f"{b.host}:{b.port}" for b in metadata.brokers.values())
print(json.dumps(seen))
"""


def test_a_pod_reaches_every_broker_at_its_pod_listener(node: Node, namespace: str, pause_pod: str) -> None:
    servers = node.pod_bootstrap_servers.split(",")

    probe = node.run_in_pod_network(
        namespace, pause_pod, [sys.executable, "-c", _KAFKA_PROBE, ",".join(servers)]
    )

    assert probe.returncode == 0, probe.stderr
    # Each broker answers at its own address, and the cluster advertises those same addresses.
    assert json.loads(probe.stdout) == {server: sorted(servers) for server in servers}


_API_PROBE = """
import json, ssl, sys, urllib.request
host, port, ca_file, token = sys.argv[1:5]
context = ssl.create_default_context(cafile=ca_file)
body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}).encode()
request = urllib.request.Request(
    f"https://{host}:{port}/apis/authentication.k8s.io/v1/selfsubjectreviews",
    data=body,
    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
)
with urllib.request.urlopen(request, context=context, timeout=10) as response:
    print(json.load(response)["status"]["userInfo"]["username"])
"""


def test_a_pod_reaches_the_api_server_as_its_service_account_with_what_the_kubelet_gave_it(
    node: Node, namespace: str, pause_pod: str
) -> None:
    pid = node.container_pid(namespace, pause_pod, "main")
    environ = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    env = dict(item.split("=", 1) for item in environ if "=" in item)
    mounted = Path(f"/proc/{pid}/root{SERVICE_ACCOUNT}")
    host, port = env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]
    assert (host, int(port)) == node.pod_api_server

    # TLS verified against the mounted kube-root-ca.crt, host name included: as in-cluster clients do.
    argv = [
        sys.executable,
        "-c",
        _API_PROBE,
        host,
        port,
        str(mounted / "ca.crt"),
        (mounted / "token").read_text(),
    ]
    probe = node.run_in_pod_network(namespace, pause_pod, argv)

    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == f"system:serviceaccount:{namespace}:default"


def test_an_image_is_imported_under_exactly_the_name_given(node: Node, unique: str) -> None:
    name = f"localhost/durabletopic/{unique}:v1"
    before = set(node.ctr("images", "ls", "-q").stdout.split())

    node.import_image(node.programs.pause_archive, name)

    try:
        assert set(node.ctr("images", "ls", "-q").stdout.split()) - before == {name}
    finally:
        node.ctr("images", "rm", name, check=False)


# ---------------------------------------------------------------------- stopping (keep this last)


def _node_leftovers(node: Node, state: dict[str, Any]) -> list[str]:
    """What of the node recorded in ``state`` is still there."""
    left = [
        f"process {name}" for name, rec in state["procs"].items() if is_alive(rec["pid"], rec["start_time"])
    ]
    socket = str(node.containerd_socket)
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if socket in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    left.append(f"pid {proc.name} serving {socket}")
            except OSError:
                pass
    if Path(f"/sys/class/net/{node.network.bridge}").exists():
        left.append(f"bridge {node.network.bridge}")
    cgroup = node.cgroup_root.lstrip("/")
    left += [f"cgroup {h / cgroup}" for h in Path("/sys/fs/cgroup").iterdir() if (h / cgroup).exists()]
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    left += [f"mount {m}" for m in mounts if m.startswith(str(node.state_dir))]
    for key, value in state["sysctls"].items():
        now = Path("/proc/sys", key).read_text().strip()
        if value is not None and now != value:
            left.append(f"sysctl {key} = {now}, was {value}")
    left += [f"directory {d}" for d in state["machine_dirs_made"] if Path(d).exists()]
    if (node.data_dir).exists():
        left.append(f"data {node.data_dir}")
    return left


def _record(node: Node) -> dict[str, Any]:
    return dict(json.loads(node.state_file.read_text()))


def test_a_stopped_or_crashed_node_leaves_nothing_behind(node: Node, namespace: str) -> None:
    node.bed.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(_pause_deployment("left", namespace, node.programs.pause_image, 2)),
    )
    _wait_ready_pods(node.bed, namespace, "left", 2)
    imported = [f"localhost/durabletopic/{namespace}-{i}:v1" for i in range(3)]
    for name in imported:
        node.import_image(node.programs.pause_archive, name)
    state = _record(node)
    assert _node_leftovers(node, state), "the check sees a running node"
    started_here = node.started

    try:
        began = time.monotonic()
        node.down()
        stopped_in = time.monotonic() - began
        assert _node_leftovers(node, state) == []
        node.down()  # a second stop finds nothing to do

        # A crash: every process of the node killed, its Pods' containers left running.
        node.up()
        _wait_sandboxes(node, namespace, 2)
        # Images outlive a stop; of those imported, the last two are kept.
        images = set(node.ctr("images", "ls", "-q").stdout.split())
        assert {node.programs.pause_image, *imported[1:]} <= images
        assert imported[0] not in images
        crashed = _record(node)
        for record in crashed["procs"].values():
            os.kill(record["pid"], signal.SIGKILL)
        wait_until(
            lambda: not any(is_alive(r["pid"], r["start_time"]) for r in crashed["procs"].values()),
            10,
            "the kill",
        )
        containers = _pids_in_cgroups(node)
        assert containers, "the crashed node's containers still run"

        node.up()  # cleans up the crashed node, then starts afresh
        _wait_sandboxes(node, namespace, 2)
        assert not any(is_alive(pid) for pid in containers)
    finally:
        node.up()
        node.started = started_here
    assert stopped_in < 30


def _wait_sandboxes(node: Node, namespace: str, count: int) -> None:
    """Wait until the runtime runs ``count`` Pods of ``namespace`` (the API may still show old ones)."""

    def running() -> bool:
        ids = node.crictl("pods", "--namespace", namespace, "--state", "ready", "-q", check=False).stdout
        return len(ids.split()) == count

    wait_until(running, 90, f"{count} Pods of {namespace} in containerd", interval=0.5)


def _pids_in_cgroups(node: Node) -> set[int]:
    top = Path("/sys/fs/cgroup/pids") / node.cgroup_root.lstrip("/")
    return {int(pid) for procs in top.rglob("cgroup.procs") for pid in procs.read_text().split()}
