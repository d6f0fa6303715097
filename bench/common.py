"""Shared pieces of the benchmarks.

The test bed (`tests.testbed.Testbed`, reused when one runs in `DURABLETOPIC_TESTBED_DIR`), the CRD,
a fresh operator process per run with its peak RSS and CPU time sampled from /proc, its metrics
scraped, N DurableTopics created from 16 threads, a watch stream that records when each became
Ready, batched Kafka checks of the topics, and a cleanup that leaves the bed as small as it found it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import secrets
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from confluent_kafka import KafkaException, TopicCollection
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)
from kubernetes import client, config, watch
from prometheus_client.parser import text_string_to_metric_families
from tests.e2e.operator_proc import OperatorProcess
from tests.testbed.bed import K8S_VERSION, KAFKA_VERSION, Testbed

from durabletopic import crd

ROOT = Path(__file__).resolve().parents[1]
THREADS = 16
KAFKA_CHUNK = 1000
PARTITIONS = 1
REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2
# What every benchmark topic must carry as its own configs, whoever created it.
TOPIC_CONFIGS: Mapping[str, str] = {
    "min.insync.replicas": str(MIN_INSYNC_REPLICAS),
    "unclean.leader.election.enable": "false",
}
SPEC: Mapping[str, Any] = {
    "partitions": PARTITIONS,
    "replicationFactor": REPLICATION_FACTOR,
    "minInSyncReplicas": MIN_INSYNC_REPLICAS,
}
DEFAULT_LOG_ROOT = Path(os.environ.get("TMPDIR", "/tmp")) / "durabletopic-bench"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

T = TypeVar("T")


def say(message: str) -> None:
    """Progress on stderr (stdout carries the summary)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def new_run_id() -> str:
    return secrets.token_hex(3)


def object_names(prefix: str, n: int) -> list[str]:
    """Names valid both as a Kubernetes object name and as a Kafka topic name."""
    return [f"{prefix}-{i:05d}" for i in range(n)]


def chunked(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def stats(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, min, p50, p99, max and mean, in the unit of the values; None where there are none."""
    if not values:
        return {"count": 0, "min": None, "p50": None, "p99": None, "max": None, "mean": None}
    return {
        "count": len(values),
        "min": round(min(values), 4),
        "p50": round(percentile(values, 50), 4),
        "p99": round(percentile(values, 99), 4),
        "max": round(max(values), 4),
        "mean": round(sum(values) / len(values), 4),
    }


def fmt_stats(s: Mapping[str, Any], unit: str = "s") -> str:
    if not s.get("count"):
        return "none"
    return f"p50 {s['p50']:.3f} {unit}, p99 {s['p99']:.3f} {unit}, max {s['max']:.3f} {unit} (n={s['count']})"


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
        "loadavg": list(os.getloadavg()),
    }


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


# ---------------------------------------------------------------------------------------------- bed


def testbed_up() -> Testbed:
    """The test bed of DURABLETOPIC_TESTBED_DIR / _PORT_BASE, started or reused, with the CRD installed."""
    bed = Testbed()
    began = time.monotonic()
    started = bed.up()
    say(
        f"test bed {'started' if started else 'reused'} in {time.monotonic() - began:.1f} s ({bed.state_dir})"
    )
    bed.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    bed.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd.PLURAL}.{crd.GROUP}")
    return bed


class Bench:
    """The benchmark's own clients of the test bed: Kubernetes (admin) and Kafka."""

    def __init__(self, bed: Testbed, threads: int = THREADS) -> None:
        self.bed = bed
        self.threads = threads
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(bed.kubeconfig), client_configuration=configuration
        )
        configuration.connection_pool_maxsize = threads + 4
        self.api_client = client.ApiClient(configuration)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.admin = AdminClient(bed.kafka_config())

    # ----- Kubernetes

    def create_namespace(self, name: str) -> None:
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))

    def delete_namespace(self, name: str, wait_seconds: float = 600.0) -> float:
        """Deletes the namespace (and so its objects) and waits until it is gone; returns the seconds."""
        began = time.monotonic()
        try:
            self.core.delete_namespace(name)
        except client.ApiException as error:
            if error.status != 404:
                raise
            return 0.0
        deadline = began + wait_seconds
        while time.monotonic() < deadline:
            try:
                self.core.read_namespace(name)
            except client.ApiException as error:
                if error.status == 404:
                    return time.monotonic() - began
                raise
            time.sleep(1.0)
        say(f"namespace {name} still terminating after {wait_seconds:.0f} s")
        return time.monotonic() - began

    def create_objects(
        self, namespace: str, names: Sequence[str], spec: Mapping[str, Any] = SPEC
    ) -> dict[str, float]:
        """Creates one DurableTopic per name from `threads` threads; returns each one's send time (monotonic)."""

        def create(name: str) -> tuple[str, float]:
            body = {
                "apiVersion": crd.API_VERSION,
                "kind": crd.KIND,
                "metadata": {"name": name, "namespace": namespace},
                "spec": dict(spec),
            }
            sent = time.monotonic()
            self.custom.create_namespaced_custom_object(crd.GROUP, crd.VERSION, namespace, crd.PLURAL, body)
            return name, sent

        with ThreadPoolExecutor(self.threads, thread_name_prefix="create") as pool:
            return dict(pool.map(create, names))

    def patch_statuses(self, namespace: str, names: Sequence[str], status_for: Callable[[str], Any]) -> None:
        """One merge patch of the status subresource per object, from `threads` threads."""

        def patch(name: str) -> None:
            self.custom.patch_namespaced_custom_object_status(
                crd.GROUP,
                crd.VERSION,
                namespace,
                crd.PLURAL,
                name,
                {"status": status_for(name)},
                _content_type="application/merge-patch+json",
            )

        with ThreadPoolExecutor(self.threads, thread_name_prefix="patch") as pool:
            for _ in pool.map(patch, names):
                pass

    # ----- Kafka

    def create_topics(self, names: Sequence[str]) -> int:
        """Creates the topics (RF 3, min ISR 2, unclean election off) in batched CreateTopics requests of
        1,000 topics, all sent at once; returns the number of requests. Raises on any failure."""
        futures: dict[str, Future[Any]] = {}
        requests = 0
        for chunk in chunked(names, KAFKA_CHUNK):
            new = [
                NewTopic(name, PARTITIONS, REPLICATION_FACTOR, config=dict(TOPIC_CONFIGS)) for name in chunk
            ]
            futures.update(self.admin.create_topics(new, operation_timeout=120, request_timeout=120))
            requests += 1
        failures = _failures(futures, 150)
        if failures:
            first = next(iter(failures.items()))
            raise RuntimeError(f"create_topics: {len(failures)} topic(s) failed, first {first}")
        return requests

    def delete_topics(self, names: Sequence[str]) -> int:
        """Deletes the topics in batched DeleteTopics requests; returns how many failed (absent ones do not)."""
        failed = 0
        for chunk in chunked(names, KAFKA_CHUNK):
            futures = self.admin.delete_topics(chunk, operation_timeout=120, request_timeout=120)
            for error in _failures(futures, 150).values():
                if "UNKNOWN_TOPIC" not in error:
                    failed += 1
        return failed

    def topic_configs(
        self, names: Sequence[str], keys: Iterable[str] = TOPIC_CONFIGS
    ) -> dict[str, dict[str, str]]:
        """The named config values of each topic, read with batched DescribeConfigs (1,000 topics each)."""
        wanted = set(keys)
        out: dict[str, dict[str, str]] = {}
        for chunk in chunked(names, KAFKA_CHUNK):
            resources = [ConfigResource(ResourceType.TOPIC, name) for name in chunk]
            futures = self.admin.describe_configs(resources, request_timeout=60)
            for resource, future in futures.items():
                try:
                    entries = future.result(timeout=90)
                except KafkaException:
                    continue
                out[resource.name] = {k: e.value for k, e in entries.items() if k in wanted}
        return out

    def verify_topics(self, names: Sequence[str]) -> dict[str, Any]:
        """Checks in Kafka that every topic exists with 1 partition, RF 3, min ISR 2 and unclean election
        off: batched DescribeTopics and DescribeConfigs, 1,000 topics per request."""
        began = time.monotonic()
        problems: dict[str, str] = {}
        configs = self.topic_configs(names)
        for chunk in chunked(names, KAFKA_CHUNK):
            futures = self.admin.describe_topics(TopicCollection(chunk), request_timeout=60)
            for name, future in futures.items():
                try:
                    description = future.result(timeout=90)
                except KafkaException as error:
                    problems[name] = f"describe_topics: {error.args[0].name()}"
                    continue
                replicas = {len(p.replicas) for p in description.partitions}
                if len(description.partitions) != PARTITIONS or replicas != {REPLICATION_FACTOR}:
                    problems[name] = f"{len(description.partitions)} partitions, replicas {sorted(replicas)}"
        for name in names:
            seen = configs.get(name)
            if seen is None:
                problems.setdefault(name, "describe_configs failed")
            elif seen != dict(TOPIC_CONFIGS):
                problems.setdefault(name, f"configs {seen}")
        return {
            "checked": len(names),
            "ok": len(names) - len(problems),
            "problems": dict(sorted(problems.items())[:20]),
            "seconds": round(time.monotonic() - began, 3),
        }

    def weaken(self, names: Sequence[str], key: str = "min.insync.replicas", value: str = "1") -> None:
        """Out of band: one incremental alter (SET key=value) of the named topics."""
        resources = [
            ConfigResource(
                ResourceType.TOPIC,
                name,
                incremental_configs=[ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)],
            )
            for name in names
        ]
        failures = _failures(self.admin.incremental_alter_configs(resources, request_timeout=30), 40)
        if failures:
            raise RuntimeError(f"incremental_alter_configs failed: {failures}")


def _failures(futures: Mapping[Any, Future[Any]], timeout: float) -> dict[str, str]:
    """Waits for every future; the error name of each one that failed, by topic name."""
    failures: dict[str, str] = {}
    for key, future in futures.items():
        name = getattr(key, "name", key)
        try:
            future.result(timeout=timeout)
        except KafkaException as error:
            failures[str(name)] = str(error.args[0].name())
    return failures


def is_ready(obj: Mapping[str, Any]) -> bool:
    """Ready=True for the object's current generation."""
    status = obj.get("status") or {}
    if status.get("observedGeneration") != (obj.get("metadata") or {}).get("generation"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def ready_reason(obj: Mapping[str, Any]) -> str:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return f"{c.get('status')}/{c.get('reason')}"
    return "no Ready condition"


class ReadyWatcher:
    """Watches the DurableTopics of one namespace (a watch stream, not polling) and records the moment
    (monotonic) each one was first seen Ready, and how many MODIFIED events each one had."""

    def __init__(self, bench: Bench, namespace: str, expected: Iterable[str]) -> None:
        self.bench = bench
        self.namespace = namespace
        self.expected = set(expected)
        self._waiting_for = len(self.expected)
        self.ready: dict[str, float] = {}
        self.modified: dict[str, int] = {}
        self.not_ready_writes: dict[str, int] = {}  # MODIFIED events leaving an object not Ready, by reason
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._listed = threading.Event()
        self._all_ready = threading.Event()
        self._stop = threading.Event()
        self._watch: watch.Watch | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{namespace}", daemon=True)

    def start(self) -> ReadyWatcher:
        self._thread.start()
        if not self._listed.wait(60):
            raise TimeoutError(f"no initial listing of {self.namespace} within 60 s")
        if self.error is not None:
            raise self.error
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()  # type: ignore[no-untyped-call]
        self._thread.join(10)

    def wait_all_ready(self, timeout: float) -> bool:
        self._all_ready.wait(timeout)
        if self.error is not None:
            raise self.error
        return self._all_ready.is_set()

    def modified_count(self) -> int:
        with self._lock:
            return sum(self.modified.values())

    def _see(self, obj: Mapping[str, Any], event_type: str) -> None:
        name = obj["metadata"]["name"]
        with self._lock:
            if event_type == "MODIFIED":
                self.modified[name] = self.modified.get(name, 0) + 1
                if not is_ready(obj):
                    reason = ready_reason(obj)
                    self.not_ready_writes[reason] = self.not_ready_writes.get(reason, 0) + 1
            if name not in self.ready and is_ready(obj):
                self.ready[name] = time.monotonic()
                if name in self.expected:
                    self._waiting_for -= 1
                    if self._waiting_for == 0:
                        self._all_ready.set()

    def _run(self) -> None:
        custom = self.bench.custom
        resource_version: str | None = None
        try:
            while not self._stop.is_set():
                if resource_version is None:
                    listing = cast(
                        dict[str, Any],
                        custom.list_namespaced_custom_object(
                            crd.GROUP, crd.VERSION, self.namespace, crd.PLURAL
                        ),
                    )
                    for item in listing.get("items", []):
                        self._see(item, "LISTED")
                    resource_version = listing["metadata"]["resourceVersion"]
                    self._listed.set()
                self._watch = watch.Watch()  # type: ignore[no-untyped-call]
                try:
                    for event in self._watch.stream(  # type: ignore[no-untyped-call]
                        custom.list_namespaced_custom_object,
                        crd.GROUP,
                        crd.VERSION,
                        self.namespace,
                        crd.PLURAL,
                        resource_version=resource_version,
                        allow_watch_bookmarks=True,
                        timeout_seconds=5,
                    ):
                        obj = event["object"]
                        resource_version = obj["metadata"]["resourceVersion"]
                        if event["type"] in ("ADDED", "MODIFIED"):
                            self._see(obj, event["type"])
                        if self._stop.is_set():
                            break
                except client.ApiException as error:
                    if error.status != 410:
                        raise
                    resource_version = None  # expired: list again
        except BaseException as error:  # reported to the waiting thread
            if not self._stop.is_set():
                self.error = error
            self._listed.set()
            self._all_ready.set()


# ------------------------------------------------------------------------------------ the operator


@dataclass
class MetricsSnapshot:
    """Samples of a Prometheus text exposition, by (sample name, sorted labels)."""

    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> MetricsSnapshot:
        samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
        return cls(samples)

    def total(self, sample: str, /, **labels: str) -> float:
        """Sum of the samples named `sample` that carry all of `labels`."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == sample and wanted.issubset(ls))

    def by(self, sample: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for (n, labels), value in self.samples.items():
            if n == sample:
                key = dict(labels).get(label, "")
                out[key] = out.get(key, 0.0) + value
        return out

    def minus(self, earlier: MetricsSnapshot) -> MetricsSnapshot:
        """Counter deltas (for counters and histogram _count/_sum)."""
        keys = set(self.samples) | set(earlier.samples)
        return MetricsSnapshot({k: self.samples.get(k, 0.0) - earlier.samples.get(k, 0.0) for k in keys})


ADMIN = "durabletopic_admin_requests_total"
API = "durabletopic_api_requests_total"
SWEEP_COUNT = "durabletopic_sweep_duration_seconds_count"
SWEEP_SUM = "durabletopic_sweep_duration_seconds_sum"
DRIFT_DETECTED = "durabletopic_drift_detected_total"
RECONCILE_COUNT = "durabletopic_reconcile_duration_seconds_count"
RECONCILE_SUM = "durabletopic_reconcile_duration_seconds_sum"
ADMIN_SECONDS = "durabletopic_admin_request_duration_seconds_sum"
COUNTERS = (ADMIN, API, SWEEP_COUNT, SWEEP_SUM, RECONCILE_COUNT, RECONCILE_SUM, ADMIN_SECONDS)


def request_counts(delta: MetricsSnapshot) -> dict[str, Any]:
    """Admin and API server request counts of a window, totals and breakdowns."""
    admin_by_op = {k: int(v) for k, v in sorted(delta.by(ADMIN, "op").items()) if v}
    api_by_method = {k: int(v) for k, v in sorted(delta.by(API, "method").items()) if v}
    return {
        "admin_requests": {
            "total": int(delta.total(ADMIN)),
            "errors": int(delta.total(ADMIN, result="error")),
            "by_op": admin_by_op,
        },
        "api_requests": {
            "total": int(delta.total(API)),
            "errors": int(delta.total(API, result="error")),
            "by_method": api_by_method,
            # the Lease is read (GET) and renewed (PUT) every 2 s; everything else is a write for objects
            "writes": int(sum(v for m, v in api_by_method.items() if m in ("PATCH", "POST", "DELETE"))),
        },
        "admin_request_seconds_by_op": {
            k: round(v, 3) for k, v in sorted(delta.by(ADMIN_SECONDS, "op").items()) if v
        },
        "reconcile_passes": int(delta.total(RECONCILE_COUNT)),
        "reconcile_pass_seconds": round(delta.total(RECONCILE_SUM), 3),
        "sweeps": int(delta.total(SWEEP_COUNT)),
    }


class ProcSampler:
    """CPU seconds (utime+stime) and memory of one process, from /proc; VmRSS sampled every 0.5 s."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.interval = interval
        self.max_rss_kib = 0
        self.samples = 0
        self.final_hwm_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sample-{pid}", daemon=True)

    def start(self) -> ProcSampler:
        self._thread.start()
        return self

    def cpu_seconds(self) -> float:
        text = Path(f"/proc/{self.pid}/stat").read_text()
        fields = text.rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state): utime and stime are fields 14 and 15
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def status_kib(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def peak_rss_kib(self) -> int:
        """VmHWM: the process's peak resident set since it started."""
        with contextlib.suppress(OSError):
            self.final_hwm_kib = self.status_kib("VmHWM")
        return self.final_hwm_kib

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                rss = self.status_kib("VmRSS")
            except OSError:
                return
            self.samples += 1
            self.max_rss_kib = max(self.max_rss_kib, rss)

    def stop(self) -> None:
        self.peak_rss_kib()
        self._stop.set()
        self._thread.join(5)


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


# ------------------------------------------------------------------------ N topics through the operator


@dataclass
class ReadyTopics:
    """N DurableTopics made Ready by the operator: what the reconcile and drift benchmarks share."""

    bench: Bench
    namespace: str
    names: list[str]
    operator: OperatorRun
    watcher: ReadyWatcher
    result: dict[str, Any]


def apply_and_wait(
    bench: Bench,
    operator: OperatorRun,
    watcher: ReadyWatcher,
    namespace: str,
    names: list[str],
    timeout: float,
) -> dict[str, Any]:
    """Creates the N objects at once and measures until all are Ready and Kafka has been checked."""
    before = operator.counters()
    cpu_before = operator.cpu_seconds()
    began = time.monotonic()
    say(f"creating {len(names)} DurableTopics in {namespace} from {bench.threads} threads")
    sent = bench.create_objects(namespace, names)
    created = time.monotonic() - began
    say(f"created in {created:.2f} s; waiting for Ready (at most {timeout:.0f} s)")
    all_ready = watcher.wait_all_ready(max(1.0, timeout - created))
    ready_at = time.monotonic()
    cpu_at_ready = operator.cpu_seconds()
    at_ready = operator.counters()
    ready_seconds = (
        (max(watcher.ready[n] for n in names if n in watcher.ready) - began) if watcher.ready else None
    )
    ready_count = sum(1 for n in names if n in watcher.ready)
    say(f"{ready_count}/{len(names)} Ready; checking Kafka")
    verify = bench.verify_topics(names)
    verified_seconds = time.monotonic() - began
    latencies = [watcher.ready[n] - sent[n] for n in names if n in watcher.ready]
    quiet = operator.wait_quiet()
    settled = operator.counters()
    cpu_settled = operator.cpu_seconds()
    result: dict[str, Any] = {
        "all_ready": all_ready and ready_count == len(names),
        "ready_count": ready_count,
        "create_seconds": round(created, 3),
        "ready_seconds": None if ready_seconds is None else round(ready_seconds, 3),
        "verified_seconds": round(verified_seconds, 3),
        "verify": verify,
        "all_verified": verify["ok"] == len(names),
        "latency_seconds": stats(latencies),
        "operator_cpu_seconds": round(cpu_at_ready - cpu_before, 3),
        "operator_cpu_seconds_settled": round(cpu_settled - cpu_before, 3),
        "until_ready": request_counts(at_ready.minus(before)),
        "settled": request_counts(settled.minus(before)),
        "settle_wait_seconds": round(quiet, 2),
        "watch_modified_events": watcher.modified_count(),
        "watch_not_ready_writes": dict(watcher.not_ready_writes),
        "ready_wall_seconds_after_create": round(ready_at - began - created, 3),
    }
    return result


@contextlib.contextmanager
def ready_topics(
    bench: Bench,
    n: int,
    *,
    run_id: str,
    log_dir: Path,
    sweep_interval: float,
    timeout: float,
    keep: bool = False,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[ReadyTopics]:
    """A fresh namespace and operator, N DurableTopics applied at once and measured until Ready and
    verified; on exit the operator is stopped, its facts added to the result under "operator", and
    (unless `keep`) the namespace and the N Kafka topics deleted."""
    namespace = f"bench-{run_id}"
    names = object_names(f"br-{run_id}", n)
    bench.create_namespace(namespace)
    operator = OperatorRun(bench, namespace, log_dir, sweep_interval=sweep_interval, extra_env=extra_env)
    watcher: ReadyWatcher | None = None
    result: dict[str, Any] = {"namespace": namespace, "sweep_interval_seconds": sweep_interval}
    try:
        operator.start()
        watcher = ReadyWatcher(bench, namespace, names).start()
        result.update(apply_and_wait(bench, operator, watcher, namespace, names, timeout))
        yield ReadyTopics(bench, namespace, names, operator, watcher, result)
    finally:
        if watcher is not None:
            watcher.stop()
        result["operator"] = operator.stop() if operator.sampler is not None else {"started": False}
        if not operator.stopped:
            operator.proc.stop()
        if keep:
            say(f"kept namespace {namespace} and topics br-{run_id}-*")
        else:
            cleanup(bench, namespace, names)


def cleanup(bench: Bench, namespace: str, names: Sequence[str]) -> None:
    say(f"cleanup: deleting namespace {namespace} and {len(names)} topics")
    took = bench.delete_namespace(namespace)
    failed = bench.delete_topics(names)
    say(f"cleanup done (namespace gone in {took:.1f} s, {failed} topic deletions failed)")


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
    print(f"  N = {n}: {result.get('ready_count')}/{n} Ready, {result['verify']['ok']}/{n} verified in Kafka")
    print(f"  objects created in {result['create_seconds']:.2f} s ({THREADS} threads)")
    print(
        f"  all Ready after {ready if ready is None else f'{ready:.2f}'} s; verified after {result['verified_seconds']:.2f} s"
    )
    print(f"  per-topic latency (Ready - created): {fmt_stats(result['latency_seconds'])}")
    print(f"  operator CPU until Ready: {result['operator_cpu_seconds']:.2f} s")
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
