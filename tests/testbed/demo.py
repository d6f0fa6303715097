"""`make demo`: the operator on the local test bed, with the examples from deploy/examples/.

As users run it: the image built from the Dockerfile (`make image`), imported into the test bed's node,
and the chart installed by Helm: two replicas in Pods, one leading. Where the node cannot run (it needs
root), the operator runs as a local process instead, and the demo says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import TopicCollection
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType  # type: ignore[attr-defined]

from .bed import Testbed
from .image import build_image
from .node import Node

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_NAMESPACE = "default"
METRICS_PORT = int(os.environ.get("DURABLETOPIC_DEMO_METRICS_PORT", "29102"))
HEALTH_PORT = int(os.environ.get("DURABLETOPIC_DEMO_HEALTH_PORT", "29180"))
RELEASE = "durable-topic-operator"
RELEASE_NAMESPACE = "durable-topic-operator"
CHART = ROOT / "charts" / "durable-topic-operator"


def helm(bed: Testbed, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(bed.helm_path), "--kubeconfig", str(bed.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"helm {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


def install_in_pods(bed: Testbed) -> str:
    """The image built and imported into the node, and the chart installed (or upgraded to it); returns
    where the leader's metrics are."""
    node = Node(bed)
    node.up()
    image = build_image()
    node.import_image(image.archive, image.name)
    repository, _, tag = image.name.rpartition(":")
    helm(
        bed, "upgrade", "--install", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE, "--create-namespace",
        "--set", "kafka.bootstrapServers=" + node.pod_bootstrap_servers.replace(",", "\\,"),
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}", "--set", "image.pullPolicy=Never",
        "--wait", "--timeout", "240s",
    )  # fmt: skip
    pods = json.loads(
        bed.kubectl(
            "get",
            "pods",
            "-n",
            RELEASE_NAMESPACE,
            "-l",
            f"app.kubernetes.io/instance={RELEASE}",
            "-o",
            "json",
        ).stdout
    )["items"]
    print(bed.kubectl("get", "pods", "-n", RELEASE_NAMESPACE, "-o", "wide").stdout)
    ip = next((p["status"].get("podIP") for p in pods if p["status"].get("podIP")), None)
    return f"http://{ip}:9102/metrics (each Pod's IP, port 9102)"


def uninstall(bed: Testbed) -> None:
    if bed.kubeconfig.exists():
        helm(bed, "uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, "--wait", check=False)


def operator_pid_file(bed: Testbed) -> Path:
    return bed.state_dir / "demo-operator.pid"


def stop_operator(bed: Testbed) -> None:
    pid_file = operator_pid_file(bed)
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    pid_file.unlink()


def start_operator(bed: Testbed) -> int:
    pid_file = operator_pid_file(bed)
    if pid_file.exists():
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, 0)
            print(f"operator already running (pid {pid}), reused")
            return pid
        except ProcessLookupError:
            pid_file.unlink()
    env = dict(os.environ)
    env.update(
        KUBECONFIG=str(bed.kubeconfig),
        DURABLETOPIC_BOOTSTRAP_SERVERS=bed.bootstrap_servers,
        DURABLETOPIC_METRICS_PORT=str(METRICS_PORT),
        DURABLETOPIC_HEALTH_PORT=str(HEALTH_PORT),
    )
    log = (bed.logs_dir / "operator.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "durabletopic", "run"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    pid_file.write_text(str(process.pid))
    print(f"operator started (pid {process.pid}), log {bed.logs_dir / 'operator.log'}")
    return process.pid


def settled(bed: Testbed) -> tuple[bool, list[dict]]:  # type: ignore[type-arg]
    out = bed.kubectl("get", "dt", "-n", EXAMPLES_NAMESPACE, "-o", "json").stdout
    items = json.loads(out)["items"]
    done = True
    for item in items:
        conditions = {c["type"]: c["status"] for c in (item.get("status") or {}).get("conditions", [])}
        if conditions.get("Ready") != "True" and conditions.get("Stalled") != "True":
            done = False
    return done and bool(items), items


def print_topics(bed: Testbed, items: list[dict]) -> None:  # type: ignore[type-arg]
    admin = AdminClient({"bootstrap.servers": bed.bootstrap_servers})
    print("\nEach topic's durability as Kafka reports it:")
    for item in items:
        topic = (
            (item.get("status") or {}).get("topicName")
            or item["spec"].get("topicName")
            or item["metadata"]["name"]
        )
        try:
            description = admin.describe_topics(TopicCollection([topic]), request_timeout=10)[topic].result()
        except Exception:
            print(f"  {topic:<20} not in Kafka")
            continue
        resource = ConfigResource(ResourceType.TOPIC, topic)
        configs = admin.describe_configs([resource], request_timeout=10)[resource].result()
        rf = min(len(p.replicas) for p in description.partitions)
        print(
            f"  {topic:<20} partitions={len(description.partitions)} replication.factor={rf} "
            f"min.insync.replicas={configs['min.insync.replicas'].value} "
            f"unclean.leader.election.enable={configs['unclean.leader.election.enable'].value}"
        )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    bed = Testbed()
    if args[-1:] == ["--stop"]:
        stop_operator(bed)
        if bed.is_running():
            uninstall(bed)
        return 0
    bed.up()
    bed.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    bed.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(ROOT / "crds"))
    if os.geteuid() == 0 and not Node(bed).programs.missing():
        stop_operator(bed)
        metrics = install_in_pods(bed)
        running = f"The operator runs in Pods (helm release {RELEASE} in {RELEASE_NAMESPACE})"
        more = (
            f"kubectl get pods -n {RELEASE_NAMESPACE}; kubectl logs -n {RELEASE_NAMESPACE} deploy/{RELEASE}"
        )
    else:
        print("the node needs root and `tests/testbed/install.sh node`: the operator runs as a local process")
        start_operator(bed)
        metrics = f"http://127.0.0.1:{METRICS_PORT}/metrics"
        running = "The operator keeps running"
        more = "kubectl describe dt clickstream-weak"
    applied = bed.kubectl("apply", "-f", str(ROOT / "deploy" / "examples"), check=False)
    print(applied.stdout)
    if applied.returncode != 0:
        # In Pods, the chart's ValidatingAdmissionPolicies refuse an unsafe example at `kubectl apply`;
        # the local process has no admission policy, and the operator refuses it (Stalled) instead.
        print(f"refused at admission, as a user would see it:\n{applied.stderr}")
    deadline = time.monotonic() + 90
    done, items = settled(bed)
    while not done and time.monotonic() < deadline:
        time.sleep(1)
        done, items = settled(bed)
    print(bed.kubectl("get", "dt", "-n", EXAMPLES_NAMESPACE).stdout)
    print_topics(bed, items)
    print(
        f"\n{running}: metrics at {metrics}\n"
        f"  export KUBECONFIG={bed.kubeconfig}\n"
        f"  kubectl get dt; {more}\n"
        f"  Kafka bootstrap servers: {bed.bootstrap_servers}\n"
        "Stop everything with: make testbed-down"
    )
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
