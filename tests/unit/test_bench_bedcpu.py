from __future__ import annotations

import json
import os
from pathlib import Path

from bench import bedcpu

STAT = "cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\n"


def test_the_machine_is_busy_for_all_but_its_idle_and_iowait_ticks() -> None:
    assert bedcpu.machine_ticks(STAT) == (160, 980)


def test_a_window_gives_each_process_its_cpu_busiest_first_and_the_machine_share() -> None:
    before = {"kube-apiserver": 10.0, "broker-1": 5.0, "operator": 1.0, "_busy": 100.0, "_total": 400.0}
    after = {"kube-apiserver": 40.0, "broker-1": 15.0, "operator": 21.5, "_busy": 250.0, "_total": 600.0}

    measured = bedcpu.window(before, after, 20.0)

    assert list(measured["cpu_seconds"].items()) == [
        ("kube-apiserver", 30.0),
        ("operator", 20.5),
        ("broker-1", 10.0),
    ]
    assert measured["machine_busy_share"] == 0.75
    assert bedcpu.summary(measured, top=2) == (
        "CPU seconds in 20.0 s: kube-apiserver 30.0, operator 20.5; machine busy 75%"
    )


def test_a_sample_reads_the_bed_from_its_state_file_and_counts_the_benchmark(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(json.dumps({"procs": {"etcd": {"pid": os.getpid()}}}))

    found = bedcpu.sample(tmp_path, {"gone": 2**22 + 1})

    assert set(found) == {"etcd", "benchmark", "_busy", "_total"}, "a process that is gone is left out"
    assert found["etcd"] > 0 and abs(found["etcd"] - found["benchmark"]) < 0.5, "both are this process"
