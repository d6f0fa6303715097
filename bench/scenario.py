"""The measured scenario: N DurableTopics applied at once, then waited for until all are Ready and verified in Kafka."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import bedcpu, brokergc
from bench.cluster import Bench, cleanup, object_names
from bench.metrics import request_counts
from bench.operator_run import OperatorRun
from bench.results import say
from bench.stats import stats
from bench.watch import ReadyWatcher


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
    gc_before = brokergc.sample(bench.bed.state_dir)
    cpu_of_bed = bedcpu.sample(bench.bed.state_dir, {"operator": operator.pid})
    began = time.monotonic()
    say(f"creating {len(names)} DurableTopics in {namespace} from {bench.threads} threads")
    sent = bench.create_objects(namespace, names)
    created = time.monotonic() - began
    say(f"created in {created:.2f} s; waiting for Ready (at most {timeout:.0f} s)")
    all_ready = watcher.wait_all_ready(max(1.0, timeout - created))
    ready_at = time.monotonic()
    cpu_at_ready = operator.cpu_seconds()
    bed_cpu_until_ready = bedcpu.window(
        cpu_of_bed, bedcpu.sample(bench.bed.state_dir, {"operator": operator.pid}), ready_at - began
    )
    at_ready = operator.counters()
    gc_until_ready = brokergc.window(gc_before, brokergc.sample(bench.bed.state_dir), ready_at - began)
    ready_seconds = (
        (max(watcher.ready[n] for n in names if n in watcher.ready) - began) if watcher.ready else None
    )
    ready_count = sum(1 for n in names if n in watcher.ready)
    say(f"{ready_count}/{len(names)} Ready; checking Kafka")
    verify = bench.verify_topics(names)
    verified_seconds = time.monotonic() - began
    latencies = [watcher.ready[n] - sent[n] for n in names if n in watcher.ready]
    # A status and a client-profile ConfigMap per object, then nothing for a moment.
    quiet = operator.wait_writes(2 * len(names), timeout=60 + 0.1 * len(names)) + operator.wait_quiet()
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
        "brokers_gc_until_ready": gc_until_ready,
        "cpu_until_ready": bed_cpu_until_ready,
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
