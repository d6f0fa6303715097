"""The benchmark programs, run at a small N against the test bed: no timing is asserted, only that
the numbers they report are complete and consistent, and that the operator's request counts stay
within the batched bounds (a constant number of requests per pass or sweep, never one per topic)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from durabletopic.loop.controller import CONFIRM_REREAD_DELAYS
from tests.testbed import Testbed

pytestmark = pytest.mark.testbed

ROOT = Path(__file__).resolve().parents[2]
N = 20
K = 3


def run_bench(module: str, *args: str, json_path: Path, timeout: float = 500) -> dict[str, Any]:
    command = [sys.executable, "-m", f"bench.{module}", *args, "--json", str(json_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, (
        f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    assert done.stdout.strip(), "no human summary printed"
    result: dict[str, Any] = json.loads(json_path.read_text())
    return result


def check_stats(s: dict[str, Any], count: int) -> None:
    assert s["count"] == count
    assert 0 <= s["min"] <= s["p50"] <= s["p99"] <= s["max"]


def check_floor(floor: dict[str, Any], n: int) -> None:
    assert floor["n"] == n
    phases = [
        floor["create_objects_seconds"],
        floor["create_topics_seconds"],
        floor["status_patches_seconds"],
    ]
    assert all(p > 0 for p in phases)
    assert floor["total_seconds"] == pytest.approx(sum(phases), abs=0.01)
    assert floor["create_topics_requests"] == 1  # one batched CreateTopics for N <= 1000
    check_cpu(floor["cpu"])


def check_cpu(measured: dict[str, Any], *processes: str) -> None:
    """Where the window's CPU went: the API server and the benchmark at least, each in the window."""
    used = measured["cpu_seconds"]
    assert {"kube-apiserver", "etcd", "benchmark", *processes} <= set(used), used
    assert all(0 <= seconds <= 2 * measured["seconds"] * (os.cpu_count() or 1) for seconds in used.values())
    assert used["kube-apiserver"] > 0
    assert 0 < measured["machine_busy_share"] <= 1


def check_ready_topics(result: dict[str, Any], n: int) -> None:
    """All Ready and verified, latencies ordered, requests batched, the operator healthy."""
    assert result["all_ready"] and result["ready_count"] == n
    assert result["all_verified"] and result["verify"]["ok"] == n, result["verify"]["problems"]
    assert 0 < result["create_seconds"] <= result["verified_seconds"]
    assert 0 < result["ready_seconds"] <= result["verified_seconds"]
    check_stats(result["latency_seconds"], n)
    assert result["latency_seconds"]["max"] <= result["ready_seconds"] + 0.001  # rounded to 1 ms

    until_ready = result["until_ready"]
    admin = until_ready["admin_requests"]
    passes = until_ready["reconcile_passes"]
    assert admin["errors"] == 0
    assert 1 <= admin["by_op"].get("create_topics", 0) <= 5, admin  # a handful of batches, not N
    # at most two batched reads (before and after acting) per pass, whatever the pass's size, and the
    # reads again of created topics the read after acting did not see yet
    reads_per_pass = 2 + len(CONFIRM_REREAD_DELAYS)
    assert admin["by_op"].get("describe_topics", 0) <= reads_per_pass * max(passes, 1) + 2, (admin, passes)
    assert admin["by_op"].get("describe_configs", 0) == admin["by_op"].get("describe_topics", 0)
    assert passes <= n // 2, "objects applied together must be reconciled in few passes, not one each"

    settled = result["settled"]
    assert settled["api_requests"]["errors"] == 0
    # per object: at most two status writes (Creating, then Ready) and one client-profile ConfigMap
    assert settled["api_requests"]["writes"] <= 3 * n
    assert n <= result["watch_modified_events"] <= 2 * n

    check_cpu(result["cpu_until_ready"], "operator")

    operator = result["operator"]
    assert operator["peak_rss_mib"] > 0 and operator["max_sampled_rss_mib"] > 0
    assert operator["max_sampled_rss_mib"] <= operator["peak_rss_mib"]
    assert operator["cpu_seconds_total"] > 0 and result["operator_cpu_seconds"] >= 0
    assert operator["alive_at_end"]
    assert operator["log_error_lines"] == 0, operator["log_first_errors"]
    assert operator["leadership_lost"] == 0


def test_floor(testbed: Testbed, tmp_path: Path) -> None:
    result = run_bench("floor", "--topics", str(N), json_path=tmp_path / "floor.json")
    assert result["benchmark"] == "floor"
    check_floor(result["floor"], N)
    assert result["machine"]["nproc"] >= 1


def test_reconcile_with_floor(testbed: Testbed, tmp_path: Path) -> None:
    result = run_bench("reconcile", "--topics", str(N), "--with-floor", json_path=tmp_path / "reconcile.json")
    assert result["benchmark"] == "reconcile" and result["n"] == N and result["ok"]
    check_floor(result["floor"], N)
    check_ready_topics(result, N)
    assert result["ratio_to_floor"] == pytest.approx(
        result["verified_seconds"] / result["floor"]["total_seconds"], rel=0.02
    )


def test_drift(testbed: Testbed, tmp_path: Path) -> None:
    result = run_bench(
        "drift",
        *("--topics", str(N), "--weaken", str(K), "--idle-seconds", "5", "--sweep-interval", "2"),
        json_path=tmp_path / "drift.json",
    )
    assert result["benchmark"] == "drift" and result["ok"]
    check_ready_topics(result["setup"], N)

    sweep = result["idle_sweep"]
    assert sweep["sweeps_in_window"] == 1
    assert 0 < sweep["sweep_wall_seconds"] < sweep["window_seconds"]
    assert sweep["cpu_seconds"] >= 0
    by_op = sweep["admin_requests"]["by_op"]
    # a full sweep of N <= 1000 topics: one DescribeTopics and one DescribeConfigs, plus constant overhead
    assert by_op.get("describe_topics", 0) + by_op.get("describe_configs", 0) <= 2, by_op
    assert sweep["admin_requests"]["total"] <= 4, by_op
    assert sweep["admin_requests"]["errors"] == 0
    # nothing changed: no status writes, no events, no ConfigMaps; only the Lease is read and renewed
    assert sweep["api_requests"]["writes"] == 0, sweep["api_requests"]
    assert sweep["status_writes_seen_by_watch"] == 0

    idle = result["idle"]
    assert idle["seconds"] >= 5 and 0 <= idle["percent_of_one_core"] <= 100
    assert idle["api_writes"] == 0 and idle["status_writes_seen_by_watch"] == 0

    drift = result["drift"]
    assert drift["k"] == K and len(drift["targets"]) == K
    assert drift["detected"] == K and drift["reverted"] == K
    check_stats(drift["detect_seconds"], K)
    check_stats(drift["revert_seconds"], K)
    assert set(drift["final_min_insync_replicas"].values()) == {"2"}


def check_deletion(result: dict[str, Any], n: int) -> None:
    assert result["benchmark"] == "deletion" and result["n"] == n and result["ok"]
    assert result["settled"]["all"] and result["settled"]["count"] == n
    assert result["namespace_gone_seconds"] > 0
    assert result["operator_cpu_seconds"] >= 0
    # An event cannot be posted into a namespace being deleted: at most the one per object that says
    # its topic was deleted (or kept) is refused.
    assert result["requests"]["api_requests"]["errors"] <= n
    assert result["operator"]["log_error_lines"] == 0, result["operator"]["log_first_errors"]


def test_deletion(testbed: Testbed, tmp_path: Path) -> None:
    result = run_bench("deletion", "--topics", str(N), json_path=tmp_path / "deletion.json")
    check_deletion(result, N)
    assert result["topics_left"] == 0
    by_op = result["requests"]["admin_requests"]["by_op"]
    assert 1 <= by_op.get("delete_topics", 0) <= 5, by_op  # batched, not one request per topic


def test_deletion_of_large_paused_objects(testbed: Testbed, tmp_path: Path) -> None:
    result = run_bench(
        "deletion",
        "--topics",
        str(N),
        "--paused",
        "--config-bytes",
        "32000",
        json_path=tmp_path / "paused.json",
    )
    check_deletion(result, N)
    assert result["requests"]["admin_requests"]["total"] == 0, "a paused object makes no Kafka call"
    assert result["rss_mib_settled"] > 0
