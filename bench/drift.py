"""Drift and the idle cost of N Ready topics.

    python -m bench.drift --topics N [--weaken K] [--idle-seconds 60] [--json PATH]

N DurableTopics are made Ready by a fresh operator (as in bench.reconcile). Then, with nothing
changing:

* one full idle sweep: the operator's CPU seconds, Kafka admin requests and API server requests
  between the ends of two consecutive sweeps (exactly one sweep interval plus one sweep), and the
  sweep's wall time from durabletopic_sweep_duration_seconds;
* idle CPU: the operator's average share of one core over --idle-seconds.

Then K random topics are weakened out of band (incremental alter, min.insync.replicas=1) and each
is timed from its own alter: detection (the object's series of durabletopic_drift_detected_total
appears; metrics polled every 0.2 s) and revert (Kafka shows min.insync.replicas=2 again; batched
describe_configs of the K topics every 0.2 s), p50/p99. By default the K alters are spread evenly
over one sweep interval, one topic each, so that the K times sample the whole sweep cycle (K topics
weakened together are all found by the same sweep: one sample); --at-once sends one request for all.

The operator's cluster audit (default every 300 s) is set to --audit-interval (default 3600 s) so
that it falls outside the measured windows; it runs once when the operator starts.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench import brokergc
from bench.cluster import Bench, testbed_up
from bench.metrics import API, DRIFT_DETECTED, SWEEP_COUNT, SWEEP_SUM, MetricsSnapshot, request_counts
from bench.operator_run import OperatorRun
from bench.results import (
    add_common_args,
    log_dir_for,
    machine_info,
    new_run_id,
    print_operator,
    print_requests,
    print_setup,
    ready_timeout,
    result_header,
    say,
    write_json,
)
from bench.scenario import ready_topics
from bench.stats import fmt_stats, stats
from bench.watch import ReadyWatcher

POLL_SECONDS = 0.1  # how often the sweep counter is looked at near the end of a sweep interval


def _wait_sweep_after(operator: OperatorRun, count: float, timeout: float) -> tuple[MetricsSnapshot, int]:
    """Polls (cheap, filtered scrapes) until more than `count` sweeps have finished; the snapshot and
    the number of scrapes it took."""
    deadline = time.monotonic() + timeout
    scrapes = 0
    while True:
        snapshot = operator.counters()
        scrapes += 1
        if snapshot.total(SWEEP_COUNT) > count:
            return snapshot, scrapes
        if time.monotonic() > deadline:
            raise TimeoutError(f"no sweep finished within {timeout:.0f} s; see {operator.log_path}")
        time.sleep(POLL_SECONDS)


def one_idle_sweep(operator: OperatorRun, watcher: ReadyWatcher) -> dict[str, Any]:
    """CPU and requests between the ends of two consecutive sweeps, with nothing changing."""
    interval = operator.sweep_interval
    guard = interval * 4 + 30
    first, _ = _wait_sweep_after(operator, operator.counters().total(SWEEP_COUNT), guard)
    cpu_a, t_a, modified_a = operator.cpu_seconds(), time.monotonic(), watcher.modified_count()
    time.sleep(interval * 0.8)
    second, scrapes = _wait_sweep_after(operator, first.total(SWEEP_COUNT), guard)
    cpu_b, t_b, modified_b = operator.cpu_seconds(), time.monotonic(), watcher.modified_count()
    delta = second.minus(first)
    sweeps = int(delta.total(SWEEP_COUNT))
    return {
        "window_seconds": round(t_b - t_a, 3),
        "sweeps_in_window": sweeps,
        "sweep_wall_seconds": round(delta.total(SWEEP_SUM) / max(1, sweeps), 4),
        "cpu_seconds": round(cpu_b - cpu_a, 3),
        "metric_scrapes_in_window": scrapes,
        "status_writes_seen_by_watch": modified_b - modified_a,
        **request_counts(delta),
    }


def idle_cpu(operator: OperatorRun, watcher: ReadyWatcher, seconds: float) -> dict[str, Any]:
    """The operator's average CPU share of one core over `seconds`, nothing changing, nothing scraped."""
    before = operator.counters()
    cpu_a, t_a, modified_a = operator.cpu_seconds(), time.monotonic(), watcher.modified_count()
    time.sleep(seconds)
    cpu_b, t_b, modified_b = operator.cpu_seconds(), time.monotonic(), watcher.modified_count()
    delta = operator.counters().minus(before)
    wall = t_b - t_a
    return {
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu_b - cpu_a, 3),
        "percent_of_one_core": round((cpu_b - cpu_a) / wall * 100, 3),
        "status_writes_seen_by_watch": modified_b - modified_a,
        "api_writes": int(sum(v for m, v in delta.by(API, "method").items() if m in ("PATCH", "POST"))),
        **request_counts(delta),
    }


def drift(
    bench: Bench,
    operator: OperatorRun,
    names: Sequence[str],
    k: int,
    *,
    poll: float,
    seed: int | None,
    at_once: bool,
) -> dict[str, Any]:
    """Weakens K random topics and times, per topic from its own alter, the operator's detection (its
    metrics) and the revert (Kafka's configs).

    All K weakened in one request are all found by the same sweep: one sample of where in the sweep
    cycle the drift happened. So by default the K alters are spread evenly over one sweep interval
    (one request each), and the K times sample the whole cycle; `at_once` sends one request for all.
    """
    targets = random.Random(seed).sample(list(names), k)
    key = "min.insync.replicas"
    baseline = operator.metrics([DRIFT_DETECTED])
    before = {t: baseline.total(DRIFT_DETECTED, name=t) for t in targets}
    spacing = 0.0 if at_once else operator.sweep_interval / k
    mode = "at once, one request" if at_once else f"one every {spacing:.2f} s over one sweep interval"
    say(f"weakening {k} topics out of band ({key}=1), {mode}")
    started = time.monotonic()
    weakened: dict[str, float] = {}
    weakened_at: dict[str, float] = {}  # wall clock, to set beside the operator's log
    detected: dict[str, float] = {}
    reverted: dict[str, float] = {}
    seen_weak: set[str] = set()
    deadline = started + spacing * k + operator.sweep_interval * 4 + 60
    polls = 0
    while (len(detected) < k or len(reverted) < k) and time.monotonic() < deadline:
        tick = time.monotonic()
        due = [t for i, t in enumerate(targets) if t not in weakened and tick >= started + i * spacing]
        if due:
            bench.weaken(due, key, "1")
            done = time.monotonic()
            weakened.update(dict.fromkeys(due, done))
            weakened_at.update(dict.fromkeys(due, time.time()))
        polls += 1
        if len(detected) < len(weakened):
            m = operator.metrics([DRIFT_DETECTED])
            now = time.monotonic()
            for t in weakened:
                if t not in detected and m.total(DRIFT_DETECTED, name=t) > before[t]:
                    detected[t] = now - weakened[t]
        pending = [t for t in weakened if t not in reverted]
        if pending:
            configs = bench.topic_configs(pending, [key])
            now = time.monotonic()
            for t in pending:
                value = configs.get(t, {}).get(key)
                if value == "1":
                    seen_weak.add(t)
                elif value == "2" and (t in seen_weak or t in detected):
                    reverted[t] = now - weakened[t]
        time.sleep(max(0.0, poll - (time.monotonic() - tick)))
    final = bench.topic_configs(targets, [key])
    return {
        "k": k,
        "targets": sorted(targets),
        "mode": mode,
        "poll_seconds": poll,
        "polls": polls,
        "weakened": len(weakened),
        "detected": len(detected),
        "reverted": len(reverted),
        "detect_seconds": stats(list(detected.values())),
        "revert_seconds": stats(list(reverted.values())),
        "final_min_insync_replicas": {t: final.get(t, {}).get(key) for t in sorted(targets)},
        "per_topic": {
            t: {
                "weakened_at": round(weakened_at[t], 3) if t in weakened_at else None,
                "detect_seconds": round(detected[t], 3) if t in detected else None,
                "revert_seconds": round(reverted[t], 3) if t in reverted else None,
            }
            for t in sorted(targets)
        },
        "two_sweep_intervals_seconds": 2 * operator.sweep_interval,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drift", description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument(
        "--weaken", "-k", type=int, default=10, help="topics weakened out of band K (default 10)"
    )
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="idle CPU window, s (default 60)")
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=0.0,
        help="wait this long after all Ready before the idle measurements (default 0: at once); the first "
        "minutes after a burst include every chunk's first full check",
    )
    parser.add_argument(
        "--sweep-interval", type=float, default=10.0, help="the operator's sweep interval, s (default 10)"
    )
    parser.add_argument(
        "--audit-interval", type=float, default=3600.0, help="the operator's audit interval, s (default 3600)"
    )
    parser.add_argument("--poll-interval", type=float, default=0.2, help="drift polling, s (default 0.2)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the choice of weakened topics")
    parser.add_argument(
        "--at-once",
        action="store_true",
        help="weaken all K in one request (default: spread evenly over one sweep interval)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.weaken <= args.topics:
        parser.error("--weaken must be between 1 and --topics")
    run_id = new_run_id()
    bed = testbed_up()
    bench = Bench(bed, args.threads)
    result: dict[str, Any] = result_header("drift", run_id, argv)
    result["n"] = args.topics
    result["audit_interval_seconds"] = args.audit_interval
    result["settle_seconds"] = args.settle_seconds
    ok = False
    with ready_topics(
        bench,
        args.topics,
        run_id=run_id,
        log_dir=log_dir_for(args, "drift", run_id),
        sweep_interval=args.sweep_interval,
        timeout=ready_timeout(args),
        keep=args.keep,
        extra_env={"DURABLETOPIC_AUDIT_INTERVAL_SECONDS": str(args.audit_interval)},
    ) as run:
        if run.result["all_ready"] and run.result["all_verified"]:
            if args.settle_seconds:
                say(f"letting the operator settle for {args.settle_seconds:.0f} s")
                time.sleep(args.settle_seconds)
            say("measuring one idle sweep")
            result["idle_sweep"] = one_idle_sweep(run.operator, run.watcher)
            say(f"measuring idle CPU over {args.idle_seconds:.0f} s")
            gc_at, started = brokergc.sample(bed.state_dir), time.monotonic()
            result["idle"] = idle_cpu(run.operator, run.watcher, args.idle_seconds)
            gc_now, now = brokergc.sample(bed.state_dir), time.monotonic()
            result["idle"]["brokers_gc"] = brokergc.window(gc_at, gc_now, now - started)
            gc_at, started = gc_now, now
            result["drift"] = drift(
                bench,
                run.operator,
                run.names,
                args.weaken,
                poll=args.poll_interval,
                seed=args.seed,
                at_once=args.at_once,
            )
            result["drift"]["brokers_gc"] = brokergc.window(
                gc_at, brokergc.sample(bed.state_dir), time.monotonic() - started
            )
            ok = result["drift"]["reverted"] == args.weaken
        say("all done; stopping the operator")
    result["setup"] = run.result
    result["machine"]["loadavg_end"] = machine_info()["loadavg"]
    result["ok"] = ok

    print(f"drift benchmark, run {run_id}, {result['date']}")
    print("setup (N topics through the operator):")
    print_setup(run.result, args.topics)
    if "idle_sweep" in result:
        sweep = result["idle_sweep"]
        print(f"one idle sweep (sweep interval {args.sweep_interval} s):")
        print(
            f"  sweep wall time {sweep['sweep_wall_seconds']:.3f} s; window {sweep['window_seconds']:.2f} s: "
            f"operator CPU {sweep['cpu_seconds']:.3f} s, status writes seen {sweep['status_writes_seen_by_watch']}"
        )
        print_requests("requests in the window", sweep)
        idle = result["idle"]
        print(
            f"idle: {idle['percent_of_one_core']:.2f} % of one core over {idle['seconds']:.0f} s "
            f"({idle['cpu_seconds']:.2f} CPU s), API writes {idle['api_writes']}, "
            f"status writes seen {idle['status_writes_seen_by_watch']}"
        )
        print(f"  {brokergc.summary(idle['brokers_gc'])}")
        d = result["drift"]
        print(
            f"drift: {d['weakened']} topics weakened ({d['mode']}); {d['detected']} detected, "
            f"{d['reverted']} reverted; times from each topic's own alter:"
        )
        print(f"  detect: {fmt_stats(d['detect_seconds'])}")
        print(
            f"  revert: {fmt_stats(d['revert_seconds'])} (two sweep intervals = {d['two_sweep_intervals_seconds']} s)"
        )
        print(f"  {brokergc.summary(d['brokers_gc'])}")
    print_operator(run.result["operator"])
    write_json(args.json, result)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
