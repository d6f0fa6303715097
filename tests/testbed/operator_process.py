"""The operator under test: a real `durabletopic run` process against the test bed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# Where deploy/ puts the operator's ServiceAccount, and so its leader-election Lease.
OPERATOR_NAMESPACE = "durable-topic-operator"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_answers(
    process: subprocess.Popen[bytes], url: str, what: str, log_path: Path, timeout: float
) -> None:
    """Waits until `url` answers 200; fails at once if `process` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} not answering {url} within {timeout} s; see {log_path}")


class OperatorProcess:
    def __init__(
        self, *, bootstrap_servers: str, kubeconfig: Path, log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.extra_env = dict(env or {})
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        env = dict(os.environ)
        env.update(
            {
                "KUBECONFIG": str(self.kubeconfig),
                "DURABLETOPIC_BOOTSTRAP_SERVERS": self.bootstrap_servers,
                "DURABLETOPIC_METRICS_PORT": str(self.metrics_port),
                "DURABLETOPIC_HEALTH_PORT": str(self.health_port),
                "DURABLETOPIC_SWEEP_INTERVAL_SECONDS": "2",
            }
        )
        env.update(self.extra_env)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "durabletopic", "run"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until_answers(
            self.process, f"http://127.0.0.1:{self.health_port}/healthz", "operator", self.log_path, timeout
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")
