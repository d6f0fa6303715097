"""Process and port helpers of the test bed: pid identity, signals, waiting, port checks.

A recorded process is identified by its pid *and* its start time (field 22 of ``/proc/PID/stat``), so a
pid reused by an unrelated program is never mistaken for one of ours. Zombies count as gone: PID 1 on
this kind of machine does not always reap orphans.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "is_alive",
    "kafka_serves",
    "port_is_free",
    "port_listens",
    "port_owner",
    "process_start_time",
    "rss_bytes",
    "signal_process",
    "tail",
    "wait_until",
]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    rest = raw[raw.rfind(")") + 2 :].split()
    return rest  # rest[0] is field 3 (state), rest[19] is field 22 (start time)


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None when there is no such process."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (VmRSS), 0 when there is no such process."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def is_alive(pid: int | None, start_time: int | None = None) -> bool:
    """True when ``pid`` runs (not a zombie) and, if given, started at ``start_time``."""
    if not pid:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is a child of ours that has exited
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return start_time is None or int(fields[19]) == start_time


def signal_process(pid: int, sig: int, start_time: int | None = None) -> bool:
    """Send ``sig`` to the process group led by ``pid`` (our processes run in their own session).

    Falls back to the pid alone when it does not lead its group. Returns False when it was already gone.
    """
    if not is_alive(pid, start_time):
        return False
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1, on_timeout: str = ""
) -> None:
    """Poll ``check`` until it returns True; raise TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}" + on_timeout)
        time.sleep(interval)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port`` (a bind with SO_REUSEADDR succeeds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def port_listens(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when a TCP connection to ``host:port`` is accepted."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_owner(port: int) -> str:
    """Best effort: 'pid N (name)' of the process listening on ``port``, or '' when unknown."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(cols[9])
    if not inodes:
        return ""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        name = (proc / "comm").read_text().strip()
                        return f"pid {proc.name} ({name})"
    return ""


def kafka_serves(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """True when the Kafka broker on ``port`` answers an ApiVersions request.

    A broker accepts TCP connections into its backlog early, but processes requests only once the
    controller has registered and unfenced it, so an answer means it is a working member again.
    """
    client_id = b"durabletopic-testbed"
    # Request header v1: api_key 18 (ApiVersions), api_version 0, correlation id, client id; empty body.
    payload = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(struct.pack(">i", len(payload)) + payload)
            head = b""
            while len(head) < 10:
                chunk = sock.recv(10 - len(head))
                if not chunk:
                    return False
                head += chunk
    except OSError:
        return False
    _size, correlation, error_code = struct.unpack(">iih", head)
    return bool(correlation == 7 and error_code == 0)


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def reap(procs: list[subprocess.Popen[bytes]]) -> None:
    """Collect the exit status of children that have exited, so they do not linger as zombies."""
    for proc in procs:
        proc.poll()


def default_signal_name(sig: int) -> str:
    with contextlib.suppress(ValueError):
        return signal.Signals(sig).name
    return str(sig)
