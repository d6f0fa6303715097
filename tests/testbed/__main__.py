"""``python -m tests.testbed up|down|status|env|demo|up-second|down-second|status-second`` (run from the
repository root).

up             start the test bed, or reuse the one running in the state directory, and say how to reach it
down           stop the test bed recorded in the state directory (works from any shell, e.g. after `make demo`)
status         what runs and whether it is healthy; exit status 0 healthy, 1 not running, 2 running but unhealthy
env            shell export lines: eval "$(python -m tests.testbed env)"
demo           the demo (tests/testbed/demo.py), when it exists
up-second      start the second Kafka cluster (SCRAM; tests/testbed/second.py), or reuse the running one
down-second    stop the second Kafka cluster
status-second  the same as status, for the second Kafka cluster
node-up        start the test bed's node (kubelet, containerd, kube-scheduler; root; the bed must run)
node-down      stop the node and undo everything it did to the machine
node-status    the same as status, for the node
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from .bed import Testbed, TestbedError
from .node import Node
from .second import SecondKafka
from .supervisor import Supervisor


def _env_lines(bed: Testbed) -> list[str]:
    path_dirs = [str(bed.kubectl_path.parent), str(bed.helm_path.parent)]
    return [
        f"export KUBECONFIG={shlex.quote(str(bed.kubeconfig))}",
        f"export DURABLETOPIC_BOOTSTRAP_SERVERS={shlex.quote(bed.bootstrap_servers)}",
        f"export DURABLETOPIC_TESTBED_DIR={shlex.quote(str(bed.state_dir))}",
        f'export PATH={shlex.quote(":".join(path_dirs))}:"$PATH"',
    ]


def _up(bed: Testbed) -> int:
    _report_up(bed, "test bed")
    print(f"  Kafka bootstrap servers: {bed.bootstrap_servers}")
    print(f"  Kubernetes API server:   {bed.api_url}")
    print(f"  export KUBECONFIG={shlex.quote(str(bed.kubeconfig))}")
    print(f"  kubectl: {bed.kubectl_path}")
    print(f"  helm:    {bed.helm_path}{'' if bed.helm_path.exists() else ' (not installed)'}")
    print(f"  logs:    {bed.logs_dir}")
    print(f'  all of it in your shell: eval "$({sys.executable} -m tests.testbed env)"')
    print(f"  stop it: {sys.executable} -m tests.testbed down")
    return 0


def _up_second(cluster: SecondKafka) -> int:
    _report_up(cluster, "second Kafka cluster")
    print(f"  bootstrap servers (SASL_PLAINTEXT, {cluster.sasl_mechanism}): {cluster.bootstrap_servers}")
    print(f"  user {cluster.username}, password in {cluster.state_file}")
    print(f"  internal listeners (PLAINTEXT): {cluster.bootstrap_servers_internal}")
    print(f"  cluster id: {cluster.cluster_id}")
    print(f"  logs: {cluster.logs_dir}")
    print(f"  stop it: {sys.executable} -m tests.testbed down-second")
    return 0


def _report_up(bed: Testbed | SecondKafka | Node, what: str) -> None:
    began = time.monotonic()
    started = bed.up()
    took = time.monotonic() - began
    how = "started" if started else "already running, reused"
    print(f"{what} {how} ({took:.1f} s), state in {bed.state_dir}")


def _down(bed: Supervisor, what: str) -> int:
    began = time.monotonic()
    if bed.down():
        print(f"{what} in {bed.state_dir} stopped ({time.monotonic() - began:.1f} s)")
    else:
        print(f"no {what} was running in {bed.state_dir}")
    return 0


def _status(bed: Supervisor, what: str, down: str, endpoints: tuple[str, ...]) -> int:
    status = bed.status()
    if not status["processes"]:
        print(f"no {what} recorded in {bed.state_dir}")
        return 1
    for name, proc in status["processes"].items():
        print(f"  {name:<24} pid {proc['pid'] or '-':<8} {'running' if proc['alive'] else 'NOT RUNNING'}")
    if status["healthy"]:
        print(f"healthy: {', '.join(status[key] for key in endpoints)}")
        return 0
    print("NOT healthy" if status["running"] else f"partly running: stop it with `{down}`")
    return 2


def _node_up() -> int:
    node = Node()
    _report_up(node, "node")
    host, port = node.pod_api_server
    print(f"  Node {node.name}, Pods on {node.network.subnet} (bridge {node.network.bridge})")
    print(f"  from a Pod: Kafka {node.pod_bootstrap_servers}, API server {host}:{port}")
    print(f"  crictl: {node.programs.crictl} --runtime-endpoint unix://{node.containerd_socket}")
    print(f"  stop it: {sys.executable} -m tests.testbed node-down")
    return 0


def _node(command: str) -> int:
    node = Node()
    if command == "down":
        return _down(node, "node")
    return _status(node, "node", "node-down", ("node", "pod_bootstrap_servers", "pod_api_server"))


def _env(bed: Testbed) -> int:
    print("\n".join(_env_lines(bed)))
    if not bed.is_running():
        print(f"# warning: no test bed is running in {bed.state_dir}", file=sys.stderr)
    return 0


_COMMANDS: dict[str, Callable[[], int]] = {
    "up": lambda: _up(Testbed()),
    "down": lambda: _down(Testbed(), "test bed"),
    "status": lambda: _status(Testbed(), "test bed", "down", ("bootstrap_servers", "api_url")),
    "env": lambda: _env(Testbed()),
    "up-second": lambda: _up_second(SecondKafka()),
    "down-second": lambda: _down(SecondKafka(), "second Kafka cluster"),
    "status-second": lambda: _status(
        SecondKafka(), "second Kafka cluster", "down-second", ("bootstrap_servers",)
    ),
    "node-up": _node_up,
    "node-down": lambda: _node("down"),
    "node-status": lambda: _node("status"),
}


def _demo(argv: list[str]) -> int:
    if importlib.util.find_spec("tests.testbed.demo") is None:
        print("the demo is not available (tests/testbed/demo.py does not exist yet)", file=sys.stderr)
        return 2
    demo = importlib.import_module("tests.testbed.demo")
    sys.argv = [f"{sys.argv[0]} demo", *argv]
    result = demo.main()
    return int(result or 0)


def run_cli(command: str, env: Mapping[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tests.testbed COMMAND`` from the repository root with ``env`` added to this
    process's environment, output captured (for tests of the command line)."""
    return subprocess.run(
        [sys.executable, "-m", "tests.testbed", command],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.testbed",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=[*_COMMANDS, "demo"])
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        return _demo(rest)
    if rest:
        parser.error(f"unexpected arguments: {' '.join(rest)}")
    logging.basicConfig(level=os.environ.get("DURABLETOPIC_TESTBED_LOG_LEVEL", "WARNING"))
    try:
        return _COMMANDS[args.command]()
    except TestbedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
