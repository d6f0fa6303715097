"""The brokers' GC as the benchmarks record it, from `jstat -gcutil`."""

from __future__ import annotations

import json
from pathlib import Path

from bench.brokergc import GcSample, broker_pids, parse_gcutil, summary, window

GCUTIL = """\
  S0     S1     E      O      M     CCS    YGC     YGCT     FGC    FGCT     CGC    CGCT       GCT
  0.00  96.97 100.00 100.00  98.03  94.58    283    21.033    82   109.572     -         -   130.605
"""


def test_a_jstat_line_gives_the_gc_seconds_full_collections_and_old_generation() -> None:
    assert parse_gcutil(GCUTIL) == GcSample(gc_seconds=130.605, full_collections=82, old_used_percent=100.0)


def test_anything_but_a_jstat_table_gives_nothing() -> None:
    assert parse_gcutil("") is None
    assert parse_gcutil("12345 not found\n") is None
    assert parse_gcutil("S0 S1\n1.0 2.0\n") is None


def test_a_window_is_the_difference_of_two_samples_and_names_the_busiest_broker() -> None:
    before = {"broker-1": GcSample(100.0, 80, 90.0), "broker-2": GcSample(10.0, 1, 40.0)}
    after = {"broker-1": GcSample(130.0, 92, 100.0), "broker-2": GcSample(10.5, 1, 45.0)}
    measured = window(before, after, 60.0)
    assert measured["broker-1"] == {
        "gc_seconds": 30.0,
        "full_collections": 12,
        "gc_share": 0.5,
        "old_used_percent": 100.0,
    }
    assert measured["broker-2"]["gc_share"] == 0.008
    assert summary(measured).startswith(
        "brokers' GC: up to 50 % of the window (broker-1, 12 full collections); "
        "old generation up to 100 % full (the brokers are short of heap"
    )
    quiet = window(before, {**after, "broker-1": GcSample(101.0, 80, 60.0)}, 60.0)
    assert summary(quiet) == (
        "brokers' GC: up to 2 % of the window (broker-1, 0 full collections); old generation up to 60 % full"
    )


def test_the_brokers_and_controller_are_found_in_the_test_beds_state(tmp_path: Path) -> None:
    procs = {name: {"pid": pid} for name, pid in [("etcd", 1), ("kafka-controller", 2), ("broker-1", 3)]}
    (tmp_path / "state.json").write_text(json.dumps({"procs": procs}))
    assert broker_pids(tmp_path) == {"kafka-controller": 2, "broker-1": 3}
    assert broker_pids(tmp_path / "missing") == {}
