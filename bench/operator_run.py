"""A fresh operator process per run, with its CPU and memory sampled and its metrics scraped."""

from __future__ import annotations

import contextlib
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.testbed.operator_process import OperatorProcess

from bench.cluster import Bench
from bench.metrics import ADMIN, API, COUNTERS, MetricsSnapshot
from bench.procfs import ProcSampler
from bench.results import say


class OperatorRun:
    """A fresh `python -m durabletopic run` for one benchmark, watching only `namespace` and holding its
    leader-election Lease there (so every run starts as leader at once)."""

    def __init__(
        self,
        bench: Bench,
        namespace: str,
        log_dir: Path,
        *,
        sweep_interval: float,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.bench = bench
        self.namespace = namespace
        self.log_path = log_dir / "operator.log"
        self.sweep_interval = sweep_interval
        env = {
            "DURABLETOPIC_NAMESPACES": namespace,
            "DURABLETOPIC_LEADER_ELECTION": "true",
            "DURABLETOPIC_LEADER_ELECTION_NAMESPACE": namespace,
            "DURABLETOPIC_SWEEP_INTERVAL_SECONDS": str(sweep_interval),
            **(extra_env or {}),
        }
        self.env = env
        self.proc = OperatorProcess(
            bootstrap_servers=bench.bed.bootstrap_servers,
            kubeconfig=bench.bed.kubeconfig,
            log_path=self.log_path,
            env=env,
        )
        self.sampler: ProcSampler | None = None
        self.pid = 0
        self.exit_code: int | None = None
        self.stopped = False

    def start(self, timeout: float = 90) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.proc.start(timeout)
        assert self.proc.process is not None
        self.pid = self.proc.process.pid
        self.sampler = ProcSampler(self.pid).start()
        deadline = time.monotonic() + timeout
        while self.metrics(["durabletopic_leader"]).total("durabletopic_leader") < 1:
            if time.monotonic() > deadline:
                raise TimeoutError(f"operator not leader within {timeout} s; see {self.log_path}")
            time.sleep(0.2)
        # The cluster audit runs once at the start of leadership: let it finish outside the measurements.
        while not re.search(r"cluster audit(:| skipped)", self.log_path.read_text(errors="replace")):
            if time.monotonic() > deadline:
                say("the operator's first cluster audit did not finish; measuring anyway")
                break
            time.sleep(0.2)
        say(f"operator pid {self.pid} leads; log {self.log_path}")

    @property
    def alive(self) -> bool:
        return self.proc.alive

    def metrics(self, names: Sequence[str] | None = None) -> MetricsSnapshot:
        """A scrape of /metrics; with `names`, only those samples (the server filters: a cheap scrape)."""
        query = "?" + urllib.parse.urlencode([("name[]", n) for n in names]) if names else ""
        url = f"http://127.0.0.1:{self.proc.metrics_port}/metrics{query}"
        with urllib.request.urlopen(url, timeout=30) as response:
            return MetricsSnapshot.parse(response.read().decode())

    def counters(self) -> MetricsSnapshot:
        return self.metrics(COUNTERS)

    def cpu_seconds(self) -> float:
        assert self.sampler is not None
        return self.sampler.cpu_seconds()

    def wait_writes(self, writes: int, timeout: float) -> float:
        """Waits until the operator has made `writes` API writes (PATCH + POST) in all, e.g. a status and
        a client-profile ConfigMap per object (the profiles go out in the background, after the
        burst, and pause while a sweep runs: a quiet moment is not the end of them); the seconds waited."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            m = self.metrics([API])
            if m.total(API, method="PATCH") + m.total(API, method="POST") >= writes:
                break
            time.sleep(0.5)
        else:
            say(f"the operator made fewer than {writes} API writes within {timeout:.0f} s; measuring anyway")
        return time.monotonic() - began

    def wait_quiet(self, quiet_for: float = 2.0, timeout: float = 60.0) -> float:
        """Waits until the operator has made no writes (API PATCH/POST, Kafka create/alter/delete) for
        `quiet_for` seconds; returns the seconds waited."""
        began = time.monotonic()
        last: tuple[float, float] | None = None
        since = began
        while time.monotonic() - began < timeout:
            m = self.metrics([ADMIN, API])
            key = (
                m.total(API, method="PATCH") + m.total(API, method="POST"),
                sum(v for op, v in m.by(ADMIN, "op").items() if not op.startswith(("describe", "list"))),
            )
            if key != last:
                last, since = key, time.monotonic()
            elif time.monotonic() - since >= quiet_for:
                break
            time.sleep(0.25)
        return time.monotonic() - began

    def stop(self) -> dict[str, Any]:
        """Stops the operator (SIGTERM) and returns its process facts: peak RSS, CPU, log findings."""
        facts: dict[str, Any] = {"pid": self.pid, "log": str(self.log_path)}
        if self.sampler is not None:
            with contextlib.suppress(OSError):
                facts["cpu_seconds_total"] = round(self.cpu_seconds(), 3)
            self.sampler.stop()
            facts["peak_rss_mib"] = round(self.sampler.final_hwm_kib / 1024, 1)
            facts["max_sampled_rss_mib"] = round(self.sampler.max_rss_kib / 1024, 1)
            facts["rss_samples"] = self.sampler.samples
        process = self.proc.process
        facts["alive_at_end"] = process is not None and process.poll() is None
        if process is not None and process.poll() is not None:
            facts["exit_code"] = process.returncode
        self.proc.stop()
        self.stopped = True
        facts.update(self.log_findings())
        return facts

    def log_findings(self) -> dict[str, Any]:
        """Errors and warnings in the operator's log before it was told to stop."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return {}
        stop = next((i for i, line in enumerate(lines) if "SIGTERM is received" in line), len(lines))
        lines = lines[:stop]
        errors = [line for line in lines if re.search(r" (ERROR|CRITICAL) |Traceback", line)]
        warnings = [line for line in lines if " WARNING " in line]
        return {
            "log_error_lines": len(errors),
            "log_warning_lines": len(warnings),
            "log_first_errors": errors[:5],
            "log_first_warnings": warnings[:5],
            "leadership_lost": sum("leadership lost" in line for line in lines),
        }
