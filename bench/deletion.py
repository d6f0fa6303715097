"""N DurableTopics deleted at once (their namespace), through the operator: what it costs.

    python -m bench.deletion --topics N [--paused] [--json PATH]

A fresh namespace and operator process (its leader-election Lease in a namespace of its own, so
that the deletion does not take the Lease away). N objects are created and brought to their steady
state: with `deletionPolicy: Delete`, Ready with their Kafka topics; with --paused, paused (the
operator makes no Kafka call, so that N can be large without N topics on the test bed). Then the
namespace is deleted and the time is measured until the namespace is gone (every finalizer released)
and, for Delete, every topic is gone from Kafka. Reported: those times, the operator's CPU seconds
and admin/API requests during the deletion, and its peak RSS.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.cluster import SPEC, Bench, object_names, testbed_up
from bench.metrics import request_counts
from bench.operator_run import OperatorRun
from bench.results import (
    add_common_args,
    log_dir_for,
    machine_info,
    new_run_id,
    print_requests,
    ready_timeout,
    result_header,
    say,
    write_json,
)
from bench.watch import ReadyWatcher

PAUSED = {"durabletopic.dev/paused": "true"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.deletion", description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument(
        "--paused", action="store_true", help="paused objects, no topics: the operator's own cost at large N"
    )
    parser.add_argument(
        "--config-bytes",
        type=int,
        default=0,
        help="with --paused: fill each object's spec.config with this many characters (at most 32768), "
        "to measure the memory large objects take",
    )
    args = parser.parse_args(argv)
    run_id = new_run_id()
    bed = testbed_up()
    bench = Bench(bed, args.threads)
    n = args.topics
    result: dict[str, Any] = result_header("deletion", run_id, argv)
    result.update(n=n, paused=args.paused, config_bytes=args.config_bytes)
    namespace, lease_namespace = f"bench-{run_id}", f"bench-{run_id}-lease"
    names = object_names(f"bd-{run_id}", n)
    bench.create_namespace(namespace)
    bench.create_namespace(lease_namespace)
    operator = OperatorRun(
        bench,
        namespace,
        log_dir_for(args, "deletion", run_id),
        sweep_interval=10.0,
        extra_env={"DURABLETOPIC_LEADER_ELECTION_NAMESPACE": lease_namespace},
    )
    watcher = ReadyWatcher(bench, namespace, names)
    try:
        operator.start()
        watcher.start()
        say(f"creating {n} DurableTopics in {namespace}")
        spec: dict[str, Any] = {**SPEC, "deletionPolicy": "Delete"}
        if args.config_bytes:
            spec["config"] = large_config(args.config_bytes)
        bench.create_objects(namespace, names, spec, annotations=PAUSED if args.paused else None)
        settled = _wait_settled(bench, operator, watcher, namespace, names, args, ready_timeout(args))
        result["settled"] = settled
        result["rss_mib_settled"] = (
            round(operator.sampler.status_kib("VmRSS") / 1024, 1) if operator.sampler else None
        )
        before, cpu_before = operator.counters(), operator.cpu_seconds()
        say(f"deleting namespace {namespace} ({n} objects)")
        began = time.monotonic()
        result["namespace_gone_seconds"] = round(bench.delete_namespace(namespace, wait_seconds=1800), 3)
        remaining = n
        if not args.paused:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                remaining = len(set(names) & bench.kafka_topic_names())
                if not remaining:
                    break
                time.sleep(1)
        result["topics_gone_seconds"] = round(time.monotonic() - began, 3)
        result["topics_left"] = remaining if not args.paused else None
        operator.wait_quiet()
        result["operator_cpu_seconds"] = round(operator.cpu_seconds() - cpu_before, 3)
        result["operator_cpu_ms_per_object"] = round(1000 * result["operator_cpu_seconds"] / n, 3)
        result["requests"] = request_counts(operator.counters().minus(before))
    finally:
        watcher.stop()
        result["operator"] = operator.stop() if operator.sampler is not None else {"started": False}
        bench.delete_namespace(namespace)
        bench.delete_namespace(lease_namespace)
        if not args.paused:
            bench.delete_topics(names)
    result["machine"]["loadavg_end"] = machine_info()["loadavg"]
    result["ok"] = bool(result.get("settled", {}).get("all")) and not result.get("topics_left")

    print(
        f"deletion benchmark, run {run_id}, {result['date']}: {n} objects, {'paused' if args.paused else 'Delete'}"
    )
    print(f"  namespace gone after {result.get('namespace_gone_seconds')} s (every finalizer released)")
    if not args.paused:
        print(f"  topics gone after {result.get('topics_gone_seconds')} s ({result.get('topics_left')} left)")
    print(f"  operator RSS with every object settled: {result.get('rss_mib_settled')} MiB")
    print(
        f"  operator CPU {result.get('operator_cpu_seconds')} s "
        f"({result.get('operator_cpu_ms_per_object')} ms per object), "
        f"peak RSS {result['operator'].get('peak_rss_mib')} MiB"
    )
    if "requests" in result:
        print_requests("  during the deletion", result["requests"])
    write_json(args.json, result)
    return 0 if result["ok"] else 1


def large_config(size: int) -> dict[str, str]:
    """spec.config entries of `size` characters of keys and values in all (values of 4,000 at most)."""
    config: dict[str, str] = {}
    left = size
    while left > 20:
        key = f"x.bench.k{len(config):03d}"
        value = "v" * min(4000, left - len(key))
        config[key] = value
        left -= len(key) + len(value)
    return config


def _wait_settled(
    bench: Bench,
    operator: OperatorRun,
    watcher: ReadyWatcher,
    namespace: str,
    names: list[str],
    args: argparse.Namespace,
    timeout: float,
) -> dict[str, Any]:
    began = time.monotonic()
    if args.paused:
        deadline = began + timeout
        count = 0
        while time.monotonic() < deadline:
            count = int(
                operator.metrics(["durabletopic_resources"]).total(
                    "durabletopic_resources", condition="Paused"
                )
            )
            if count == len(names):
                break
            time.sleep(1)
        return {"all": count == len(names), "count": count, "seconds": round(time.monotonic() - began, 3)}
    all_ready = watcher.wait_all_ready(timeout)
    operator.wait_quiet()
    return {"all": all_ready, "count": len(watcher.ready), "seconds": round(time.monotonic() - began, 3)}


if __name__ == "__main__":
    sys.exit(main())
