"""Where a window's CPU went: each of the test bed's processes (API server, etcd, brokers, KRaft
controller), the operator, the benchmark itself, and the machine's idle share.

On a machine of two cores the operator shares them with everything it talks to. A run that takes longer
than its floor can be short of the operator's own work or of the API server's; the CPU each process
used in the same window tells them apart.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.procfs import cpu_seconds

BUSY_FIELDS = 8  # user nice system idle iowait irq softirq steal: all but idle and iowait are busy


def bed_pids(state_dir: Path) -> dict[str, int]:
    """The running test bed's processes, by name."""
    try:
        procs = json.loads((state_dir / "state.json").read_text())["procs"]
    except (OSError, ValueError, KeyError):
        return {}
    return {name: int(p["pid"]) for name, p in procs.items()}


def machine_ticks(stat_text: str) -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs from /proc/stat's first line."""
    fields = [int(v) for v in stat_text.splitlines()[0].split()[1 : 1 + BUSY_FIELDS]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def sample(state_dir: Path, others: Mapping[str, int] | None = None) -> dict[str, float]:
    """CPU seconds so far of each bed process and of `others` (name: pid), this process as `benchmark`,
    and the machine's busy and total ticks as `_busy` and `_total`."""
    pids = {**bed_pids(state_dir), **(others or {}), "benchmark": os.getpid()}
    found: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            found[name] = cpu_seconds(pid)
        except (OSError, IndexError, ValueError):
            continue
    busy, total = machine_ticks(Path("/proc/stat").read_text())
    found["_busy"], found["_total"] = float(busy), float(total)
    return found


def window(before: Mapping[str, float], after: Mapping[str, float], seconds: float) -> dict[str, Any]:
    """CPU seconds of each process in the window, busiest first, and the machine's busy share."""
    used = {
        name: round(after[name] - before[name], 2)
        for name in set(before) & set(after)
        if not name.startswith("_")
    }
    total = after.get("_total", 0.0) - before.get("_total", 0.0)
    busy = after.get("_busy", 0.0) - before.get("_busy", 0.0)
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": dict(sorted(used.items(), key=lambda item: -item[1])),
        "machine_busy_share": round(busy / total, 3) if total > 0 else None,
    }


def summary(measured: Mapping[str, Any], top: int = 6) -> str:
    """One line: the busiest processes' CPU seconds and the machine's busy share."""
    used = list(measured.get("cpu_seconds", {}).items())[:top]
    share = measured.get("machine_busy_share")
    busy = "not measured" if share is None else f"{share:.0%}"
    parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in used)
    return f"CPU seconds in {measured.get('seconds', 0):.1f} s: {parts}; machine busy {busy}"
