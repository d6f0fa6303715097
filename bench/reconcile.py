"""N DurableTopics applied at once, through the operator, until all are Ready and checked in Kafka.

    python -m bench.reconcile --topics N [--with-floor] [--json PATH]

A fresh namespace and a fresh operator process (watching that namespace, leader through a Lease
there). N objects (1 partition, RF 3, min ISR 2) are created from 16 threads; a watch stream records
when each is Ready; then Kafka's view of all N topics is checked with batched describes. Reported:
the time until all are Ready and verified, per-topic latency (Ready - that object's create request)
p50/p99, the operator's peak RSS and CPU seconds, and its Kafka admin and API server requests (from
its own metrics). With --with-floor the floor (bench.floor) is measured first, on other names, and
the ratio total/floor is reported.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from bench.cluster import Bench, testbed_up
from bench.floor import print_floor, run_floor
from bench.results import (
    add_common_args,
    log_dir_for,
    machine_info,
    new_run_id,
    print_operator,
    print_setup,
    ready_timeout,
    result_header,
    say,
    write_json,
)
from bench.scenario import ready_topics


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reconcile", description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--with-floor", action="store_true", help="measure the floor first, in the same run")
    parser.add_argument(
        "--sweep-interval", type=float, default=10.0, help="the operator's sweep interval, s (default 10)"
    )
    args = parser.parse_args(argv)
    run_id = new_run_id()
    bed = testbed_up()
    bench = Bench(bed, args.threads)
    result: dict[str, Any] = result_header("reconcile", run_id, argv)
    result["n"] = args.topics
    if args.with_floor:
        result["floor"] = run_floor(bench, args.topics, run_id, keep=args.keep)
    log_dir = log_dir_for(args, "reconcile", run_id)
    with ready_topics(
        bench,
        args.topics,
        run_id=run_id,
        log_dir=log_dir,
        sweep_interval=args.sweep_interval,
        timeout=ready_timeout(args),
        keep=args.keep,
    ) as run:
        say("all done; stopping the operator")
    result.update(run.result)
    result["machine"]["loadavg_end"] = machine_info()["loadavg"]
    if "floor" in result:
        result["ratio_to_floor"] = round(result["verified_seconds"] / result["floor"]["total_seconds"], 2)
    ok = bool(result.get("all_ready") and result.get("all_verified"))
    result["ok"] = ok

    print(f"reconcile benchmark, run {run_id}, {result['date']}")
    if "floor" in result:
        print_floor(result["floor"])
    print("operator:")
    print_setup(result, args.topics)
    print_operator(result["operator"])
    if "floor" in result:
        print(
            f"  total (Ready + verified) / floor = {result['verified_seconds']:.2f} / "
            f"{result['floor']['total_seconds']:.2f} = {result['ratio_to_floor']:.2f}"
        )
    write_json(args.json, result)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
