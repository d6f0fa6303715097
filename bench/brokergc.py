"""The brokers' garbage collection, from the JVM's own counters (`jstat -gcutil`).

A broker whose heap is too small for the topics it holds spends its time in full collections and answers
every request late; the operator's sweep and passes then wait on it. A benchmark records, for each window
it measures, the brokers' GC seconds in that window and how full their old generation was at its end, so
that a result taken on a saturated test bed shows it.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.bedcpu import bed_pids

# A broker that spends this share of a window collecting its heap answers late enough to be what a
# benchmark measures (a sweep over 10,000 topics took up to 20 s at half of its time in GC, 0.5 s at none).
SHORT_OF_HEAP_SHARE = 0.1


@dataclass(frozen=True)
class GcSample:
    gc_seconds: float  # total, since the JVM started (young and full)
    full_collections: int
    old_used_percent: float


def parse_gcutil(text: str) -> GcSample | None:
    """The last line of `jstat -gcutil PID` under its header; None for anything else."""
    lines = [line.split() for line in text.strip().splitlines()]
    if len(lines) < 2:
        return None
    columns = dict(zip(lines[0], lines[-1], strict=False))
    try:
        return GcSample(float(columns["GCT"]), int(columns["FGC"]), float(columns["O"]))
    except (KeyError, ValueError):
        return None


def broker_pids(state_dir: Path) -> dict[str, int]:
    """The running test bed's brokers (and its KRaft controller), by name."""
    return {name: pid for name, pid in bed_pids(state_dir).items() if name.startswith(("broker-", "kafka-"))}


def sample(state_dir: Path) -> dict[str, GcSample]:
    """Every broker's counters now (one `jstat` each, run side by side); empty without a JDK's jstat."""
    jstat = shutil.which("jstat")
    if jstat is None:
        return {}
    running = {
        name: subprocess.Popen(
            [jstat, "-gcutil", str(pid)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        for name, pid in broker_pids(state_dir).items()
    }
    found = {}
    for name, proc in running.items():
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            continue
        parsed = parse_gcutil(out)
        if parsed is not None:
            found[name] = parsed
    return found


def window(before: dict[str, GcSample], after: dict[str, GcSample], seconds: float) -> dict[str, Any]:
    """Per broker: GC seconds and full collections in the window, the share of the window spent in GC,
    and the old generation's use at its end."""
    result: dict[str, Any] = {}
    for name in sorted(set(before) & set(after)):
        gc = after[name].gc_seconds - before[name].gc_seconds
        result[name] = {
            "gc_seconds": round(gc, 2),
            "full_collections": after[name].full_collections - before[name].full_collections,
            "gc_share": round(gc / seconds, 3) if seconds > 0 else None,
            "old_used_percent": after[name].old_used_percent,
        }
    return result


def summary(measured: dict[str, Any]) -> str:
    """One line: the busiest broker's GC share of the window and the fullest old generation."""
    if not measured:
        return "brokers' GC: not measured (no jstat)"
    busiest = max(measured.items(), key=lambda item: item[1]["gc_share"] or 0.0)
    fullest = max(m["old_used_percent"] for m in measured.values())
    share = busiest[1]["gc_share"] or 0.0
    line = (
        f"brokers' GC: up to {share * 100:.0f} % of the window ({busiest[0]}, "
        f"{busiest[1]['full_collections']} full collections); old generation up to {fullest:.0f} % full"
    )
    if share >= SHORT_OF_HEAP_SHARE:
        line += " (the brokers are short of heap: this measures the test bed; raise DURABLETOPIC_TESTBED_KAFKA_HEAP)"
    return line
