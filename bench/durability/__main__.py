"""The durability lab on the test bed.

    python -m bench.durability [--cases 1,2,3,4] [--json PATH] [--no-write]

Each case (bench/durability/cases.py) runs twice, with the weak setting and with the safe one, through
``durabletopic probe``. Safe topics are DurableTopics made by a fresh operator. The counts go to the
table in docs/durability.md (between its lab markers) and to the chart docs/durability-lab.svg. Exit 0
when every weak run showed its loss (a count above zero) and every safe run lost nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tests.testbed import BROKER_IDS, Testbed

from bench.cluster import ROOT, Bench, testbed_up
from bench.durability.cases import CASES, SAFE_SPEC, Run, runs
from bench.durability.faults import StepFailed, run_step
from bench.durability.lab import create_weak_topic, placement_of, probe
from bench.durability.report import LabResult, RunResult, update_docs
from bench.operator_run import OperatorRun
from bench.results import DEFAULT_LOG_ROOT, machine_info, new_run_id, now_iso, say, write_json
from durabletopic.core import crd

READY_SECONDS = 120.0


def _ensure_brokers(bed: Testbed) -> None:
    bed.status()
    down = [n for n in BROKER_IDS if n not in bed.broker_nodes_or_empty()]
    for node in down:
        say(f"starting broker {node}, left down by the last run")
        bed.start_broker(node)


def _safe_topic(bench: Bench, namespace: str, name: str) -> None:
    body = {
        "apiVersion": crd.API_VERSION,
        "kind": crd.KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": dict(SAFE_SPEC),
    }
    bench.custom.create_namespaced_custom_object(crd.GROUP, crd.VERSION, namespace, crd.PLURAL, body)
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        obj = bench.custom.get_namespaced_custom_object(crd.GROUP, crd.VERSION, namespace, crd.PLURAL, name)
        conditions = obj.get("status", {}).get("conditions", [])
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            return
        time.sleep(0.5)
    raise RuntimeError(f"DurableTopic {namespace}/{name} not Ready after {READY_SECONDS:g} s")


def _one_run(bench: Bench, namespace: str, run: Run, lab_id: str, log_dir: Path) -> RunResult:
    bed = bench.bed
    _ensure_brokers(bed)
    name = f"lab-{run.case}-{run.setting}-{lab_id}"
    say(f"case {run.case} {run.setting}: {run.what} (topic {name})")
    if run.topic is None:
        _safe_topic(bench, namespace, name)
    else:
        create_weak_topic(bench.admin, name, run)
    placement = placement_of(bench.admin, name)
    for step in run.before(name, placement):
        say(f"  before: {run_step(bed, step)}")
    began = time.monotonic()
    code, report, stderr = probe(bed, name, run, placement)
    took = time.monotonic() - began
    bed.status()  # the probe's commands restarted brokers: their pids are in state.json
    (log_dir / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (log_dir / f"{name}.stderr").write_text(stderr)
    for command in ("fault", "recover"):
        if report.get(command):
            for line in (report[command]["output_tail"] or "").splitlines():
                say(f"  {command}: {line.strip()}")
            if report[command]["exit_code"] != 0:
                raise StepFailed(f"the {command} command failed: {report[command]['output_tail']}")
    result = RunResult.of(run, CASES[run.case], name, code, report, took)
    say(f"  {result.summary()}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.durability", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="1,2,3,4", help="the cases to run (default 1,2,3,4)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument(
        "--no-write", action="store_true", help="leave docs/durability.md and docs/durability-lab.svg alone"
    )
    parser.add_argument(
        "--report-only",
        type=Path,
        default=None,
        metavar="RESULTS_JSON",
        help="run nothing: write the table and the chart from the results.json of an earlier run",
    )
    args = parser.parse_args(argv)
    if args.report_only:
        lab = LabResult.from_dict(json.loads(args.report_only.read_text()))
        for path in update_docs(lab, ROOT / "docs"):
            say(f"wrote {path.relative_to(ROOT)}")
        return 1 if lab.failures() else 0
    wanted = {int(c) for c in args.cases.split(",")}
    lab_id = new_run_id()
    log_dir = DEFAULT_LOG_ROOT / f"durability-lab-{lab_id}"
    log_dir.mkdir(parents=True, exist_ok=True)
    bed = testbed_up()
    bench = Bench(bed)
    namespace = f"durability-lab-{lab_id}"
    bench.create_namespace(namespace)
    operator = OperatorRun(bench, namespace, log_dir, sweep_interval=10)
    operator.start()
    results: list[RunResult] = []
    began = time.monotonic()
    try:
        for run in runs():
            if run.case in wanted:
                results.append(_one_run(bench, namespace, run, lab_id, log_dir))
    finally:
        operator.stop()
        _ensure_brokers(bed)
        bench.delete_namespace(namespace)
    lab = LabResult(
        date=now_iso(),
        machine=machine_info(),
        runs=results,
        minutes=round((time.monotonic() - began) / 60, 1),
    )
    write_json(args.json or log_dir / "results.json", lab.as_dict())
    if not args.no_write:
        for path in update_docs(lab, ROOT / "docs"):
            say(f"wrote {path.relative_to(ROOT)}")
    failures = lab.failures()
    for failure in failures:
        say(f"FAILED: {failure}")
    say(f"logs in {log_dir}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
