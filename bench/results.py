"""A benchmark's run: its arguments, its result file (with the machine it ran on) and its printed summary."""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import secrets
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.testbed import K8S_VERSION, KAFKA_VERSION
from tests.testbed.config import kafka_threads

from bench import bedcpu, brokergc
from bench.stats import fmt_stats

THREADS = 16
DEFAULT_LOG_ROOT = Path(os.environ.get("TMPDIR", "/tmp")) / "durabletopic-bench"


def say(message: str) -> None:
    """Progress on stderr (stdout carries the summary)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def new_run_id() -> str:
    return secrets.token_hex(3)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def result_header(benchmark: str, run_id: str, argv: Sequence[str] | None) -> dict[str, Any]:
    """The fields every benchmark's JSON result starts with."""
    command = " ".join([f"python -m bench.{benchmark}", *(argv if argv is not None else sys.argv[1:])])
    return {
        "benchmark": benchmark,
        "run_id": run_id,
        "date": now_iso(),
        "command": command,
        "machine": machine_info(),
    }


def machine_info() -> dict[str, Any]:
    memory_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "kafka": KAFKA_VERSION,
        "kubernetes": K8S_VERSION.removeprefix("v"),
        "kafka_heap": os.environ.get("DURABLETOPIC_TESTBED_KAFKA_HEAP") or "384m",
        # small: num.network.threads=2, num.io.threads=4; default: Kafka's own (3 and 8)
        "kafka_threads": kafka_threads(os.environ),
        "loadavg": list(os.getloadavg()),
        "libraries": library_versions(),
    }


# The operator's dependencies are not pinned: a result says which versions it ran with.
LIBRARIES = (
    "kopf",
    "kubernetes",
    "confluent-kafka",
    "kafka-python",
    "pydantic",
    "prometheus-client",
    "aiohttp",
)


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_json(path: str | Path | None, result: Mapping[str, Any]) -> None:
    if not path:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    say(f"wrote {target}")


def add_common_args(parser: argparse.ArgumentParser, default_topics: int = 1000) -> None:
    parser.add_argument("--topics", "-n", type=int, default=default_topics, help="number of DurableTopics N")
    parser.add_argument("--json", default=None, help="write the result as JSON to this file")
    parser.add_argument("--threads", type=int, default=THREADS, help="client threads for creates and patches")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait for all Ready (default 120 + 0.1 s per topic)",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help=f"where the operator's log goes (default {DEFAULT_LOG_ROOT}/RUN)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the namespace and the topics behind (no cleanup)"
    )


def ready_timeout(args: argparse.Namespace) -> float:
    return float(args.timeout) if args.timeout else 120.0 + 0.1 * args.topics


def print_requests(label: str, counts: Mapping[str, Any]) -> None:
    admin, api = counts["admin_requests"], counts["api_requests"]
    print(f"  {label}:")
    print(f"    Kafka admin requests: {admin['total']} ({admin['errors']} errors) {admin['by_op']}")
    print(f"    API server requests:  {api['total']} ({api['errors']} errors) {api['by_method']}")
    print(
        f"    reconcile passes: {counts['reconcile_passes']} ({counts['reconcile_pass_seconds']} s in all), "
        f"sweeps: {counts['sweeps']}; admin request seconds {counts['admin_request_seconds_by_op']}"
    )


def print_setup(result: Mapping[str, Any], n: int) -> None:
    ready = result.get("ready_seconds")
    print(
        f"  N = {n}: {result.get('ready_count')}/{n} Ready, {result['verify']['ok']}/{n} verified in Kafka "
        f"({result['verify'].get('under_replicated', 0)} with a replica out of sync)"
    )
    print(f"  objects created in {result['create_seconds']:.2f} s ({THREADS} threads)")
    print(
        f"  all Ready after {ready if ready is None else f'{ready:.2f}'} s; verified after {result['verified_seconds']:.2f} s"
    )
    print(f"  per-topic latency (Ready - created): {fmt_stats(result['latency_seconds'])}")
    print(f"  operator CPU until Ready: {result['operator_cpu_seconds']:.2f} s")
    if "brokers_gc_until_ready" in result:
        print(f"  until Ready, {brokergc.summary(result['brokers_gc_until_ready'])}")
    if "cpu_until_ready" in result:
        print(f"  until Ready, {bedcpu.summary(result['cpu_until_ready'])}")
    print(
        f"  status writes seen by the watch: {result['watch_modified_events']} "
        f"(of which not Ready: {result['watch_not_ready_writes']})"
    )
    print_requests("until all Ready", result["until_ready"])
    print_requests(f"settled (+{result['settle_wait_seconds']} s)", result["settled"])
    if result["verify"]["problems"]:
        print(f"  Kafka problems: {result['verify']['problems']}")


def print_operator(facts: Mapping[str, Any]) -> None:
    print(
        f"  operator: peak RSS (VmHWM) {facts.get('peak_rss_mib')} MiB, max sampled RSS "
        f"{facts.get('max_sampled_rss_mib')} MiB, CPU {facts.get('cpu_seconds_total')} s in all, "
        f"alive at end: {facts.get('alive_at_end')}"
    )
    print(
        f"  operator log: {facts.get('log_error_lines')} error lines, {facts.get('log_warning_lines')} warnings "
        f"({facts.get('log')})"
    )
    for line in facts.get("log_first_errors") or []:
        print(f"    {line[:200]}")


def log_dir_for(args: argparse.Namespace, benchmark: str, run_id: str) -> Path:
    base: Path = args.log_dir or DEFAULT_LOG_ROOT
    return base / f"{benchmark}-{run_id}"
