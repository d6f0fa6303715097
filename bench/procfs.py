"""CPU time and memory of a process, sampled from /proc."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU seconds (utime+stime) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class ProcSampler:
    """CPU seconds (utime+stime) and memory of one process, from /proc; VmRSS sampled every 0.5 s."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.interval = interval
        self.max_rss_kib = 0
        self.samples = 0
        self.final_hwm_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sample-{pid}", daemon=True)

    def start(self) -> ProcSampler:
        self._thread.start()
        return self

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def status_kib(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def peak_rss_kib(self) -> int:
        """VmHWM: the process's peak resident set since it started."""
        with contextlib.suppress(OSError):
            self.final_hwm_kib = self.status_kib("VmHWM")
        return self.final_hwm_kib

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                rss = self.status_kib("VmRSS")
            except OSError:
                return
            self.samples += 1
            self.max_rss_kib = max(self.max_rss_kib, rss)

    def stop(self) -> None:
        self.peak_rss_kib()
        self._stop.set()
        self._thread.join(5)
