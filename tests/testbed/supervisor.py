"""What every bed does with its processes: record them in ``STATE_DIR/state.json``, start them (or adopt
running ones), break them on purpose, wait for them, and stop them.

A bed (:class:`~tests.testbed.bed.Testbed`, :class:`~tests.testbed.second.SecondKafka`) is a
:class:`Supervisor` that says what its processes are, how to start them the first time, and how to tell
that they serve.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from .config import STATE_FORMAT, Layout, PortBusyError, TestbedError
from .procs import (
    is_alive,
    port_is_free,
    port_owner,
    process_start_time,
    signal_process,
    tail,
    wait_until,
)
from .state import StateFile

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)

_WAITED_SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)


class Supervisor(abc.ABC):
    """The processes of one bed, each in its own session, recorded with pid and start time in state.json.

    ``up()`` starts the bed (or adopts one already running in ``state_dir``); ``down()`` stops it, from
    any process, using ``state.json``.
    """

    STOP_ORDER: ClassVar[tuple[str, ...]]  # every process of the bed, in the order down() kills them
    LABEL: ClassVar[str]  # the bed in messages: "the test bed"
    PROCESS_LABEL: ClassVar[str] = "{name}"  # one of its processes in messages

    def __init__(self, layout: Layout, *, private_state: bool = False) -> None:
        self.layout = layout
        self.state_dir = layout.state_dir
        self.started = False  # this instance started the running bed
        self.reused = False  # this instance adopted a bed that was already running
        self._state: dict[str, Any] | None = None
        self._state_store = StateFile(self.state_dir, private=private_state)
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def state_file(self) -> Path:
        return self._state_store.path

    @property
    def logs_dir(self) -> Path:
        return self.layout.logs_dir

    @property
    def data_dir(self) -> Path:
        return self.layout.data_dir

    def is_running(self) -> bool:
        """True when state.json records a bed whose processes all run (not a health check)."""
        state = self._load_state()
        return state is not None and all(self._alive(state, name) for name in self.STOP_ORDER)

    def status(self) -> dict[str, Any]:
        """What runs, with pids, and whether it is healthy (for ``python -m tests.testbed status[-second]``)."""
        state = self._load_state()
        if not state:
            return {"state_dir": str(self.state_dir), "running": False, "healthy": False, "processes": {}}
        self._state = state
        procs = {
            name: {"pid": state["procs"][name].get("pid"), "alive": self._alive(state, name)}
            for name in self.STOP_ORDER
            if name in state["procs"]
        }
        running = bool(procs) and all(p["alive"] for p in procs.values())
        return {
            "state_dir": str(self.state_dir),
            "running": running,
            "healthy": running and self._healthy(),
            **self._endpoints(),
            "processes": procs,
        }

    def down(self, timeout: float = 60.0) -> bool:
        """Stop the bed recorded in the state directory; True when something was running.

        Afterwards no process of it runs, its ports are free and its data are gone (the logs stay).
        """
        if not self.state_dir.exists():
            return False
        with self._locked():
            state = self._load_state() or self._state
            if not state:
                return False
            was_running = any(self._alive(state, name) for name in self.STOP_ORDER)
            self._stop_locked(state, timeout)
            self.started = False
            self.reused = False
            return was_running

    # ------------------------------------------------------------------ what a bed says about itself

    @abc.abstractmethod
    def _check_programs(self) -> None:
        """Raise TestbedError naming what is not installed."""

    @abc.abstractmethod
    def _check_ports(self) -> None:
        """Raise (PortBusyError) unless every configured port is free."""

    @abc.abstractmethod
    def _start(self, timeout: float) -> None:
        """Start the bed afresh (``_new_state()`` first) and wait until it is healthy."""

    @abc.abstractmethod
    def _wait_serving(self, name: str, timeout: float) -> None:
        """Wait until the (re)started process ``name`` serves."""

    @abc.abstractmethod
    def _wait_healthy(self, timeout: float) -> None:
        """Wait until the bed as a whole is usable."""

    @abc.abstractmethod
    def _healthy(self) -> bool:
        """Whether the running bed is usable now (for ``status()``)."""

    @abc.abstractmethod
    def _endpoints(self) -> dict[str, str]:
        """How to reach the bed, for ``status()``."""

    @abc.abstractmethod
    def _down_hint(self) -> str:
        """The shell command that stops the bed."""

    @abc.abstractmethod
    def _service_ports(self, name: str) -> list[int]:
        """The ports process ``name`` listens on: free before it starts, freed when it is killed."""

    @abc.abstractmethod
    def _recorded_ports(self, state: Mapping[str, Any]) -> dict[str, int] | None:
        """Port per service of the bed recorded in ``state``, None when it records none."""

    # ------------------------------------------------------------------ lifecycle

    def up(self, timeout: float) -> bool:
        """Make the bed usable; True when this call started it, False when it was already running."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            state = self._load_state()
            if state and self._adopt(state):
                return False
            self._check_programs()
            self._check_ports()
            try:
                self._start(timeout)
            except BaseException:
                with contextlib.suppress(Exception):
                    self._stop_locked(self._state)
                raise
            self.started = True
            self.reused = False
            return True

    def _adopt(self, state: dict[str, Any]) -> bool:
        """Reuse the recorded bed if it all runs (True); clear the record of a dead one (False)."""
        alive = {name: self._alive(state, name) for name in self.STOP_ORDER}
        if all(alive.values()):
            self._state = state
            try:
                self._wait_healthy(60)
            except TimeoutError as exc:
                raise TestbedError(
                    f"{self.LABEL} is running in {self.state_dir} but is not healthy ({exc}). "
                    f"Stop it with: {self._down_hint()}"
                ) from exc
            self.reused = not self.started
            return True
        if any(alive.values()):
            dead = ", ".join(name for name, ok in alive.items() if not ok)
            raise TestbedError(
                f"{self.LABEL} in {self.state_dir} is only partly running (not running: {dead}); perhaps a "
                f"test broke it and was interrupted. Stop it with: {self._down_hint()}"
            )
        log.info("removing the record of %s, no longer running in %s", self.LABEL, self.state_dir)
        self._stop_locked(state)
        return False

    def _new_state(self, fresh_dirs: Sequence[str], **facts: Any) -> dict[str, Any]:
        """Empty ``fresh_dirs`` of the state directory and record a new bed, with ``facts``, in state.json."""
        for sub in fresh_dirs:
            shutil.rmtree(self.state_dir / sub, ignore_errors=True)
            (self.state_dir / sub).mkdir(parents=True)
        self._state = {
            "format": STATE_FORMAT,
            "state_dir": str(self.state_dir),
            **facts,
            "started_at": time.time(),
            "starter_pid": os.getpid(),
            "procs": {},
        }
        self._save_state()
        return self._state

    def _stop_locked(self, state: dict[str, Any] | None, timeout: float = 60.0) -> None:
        if state is None:
            return
        procs: dict[str, Any] = state.get("procs", {})
        names = [n for n in self.STOP_ORDER if n in procs] + [n for n in procs if n not in self.STOP_ORDER]
        for name in names:
            signal_process(procs[name].get("pid") or 0, signal.SIGKILL, procs[name].get("start_time"))
        for name in names:
            if procs[name].get("pid"):
                self._wait_gone(name, procs[name]["pid"], procs[name].get("start_time"), timeout)
        self._children.clear()
        ports = self._recorded_ports(state)
        if ports is not None and procs:
            self._wait_ports_free(ports)
        self._remove_runtime_files()
        self.state_file.unlink(missing_ok=True)
        self._state = None

    def _remove_runtime_files(self) -> None:
        """Remove what a stopped bed leaves that the next start must not find (its data)."""
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _wait_ports_free(self, ports: Mapping[str, int]) -> None:
        busy: list[str] = []

        def all_free() -> bool:
            busy[:] = [f"{p} ({s})" for s, p in ports.items() if not port_is_free(p)]
            return not busy

        try:
            wait_until(all_free, 15, f"{self.LABEL}'s ports to be free")
        except TimeoutError as exc:
            raise TestbedError(f"stopped {self.LABEL}, but these ports are still busy: {busy}") from exc

    # ------------------------------------------------------------------ state

    def _load_state(self) -> dict[str, Any] | None:
        return self._state_store.load()

    def _save_state(self) -> None:
        assert self._state is not None
        self._state_store.save(self._state)

    def _require_state(self) -> dict[str, Any]:
        if self._state is None:
            self._state = self._load_state()
        if self._state is None:
            raise TestbedError(f"{self.LABEL} is not running in {self.state_dir}; call up() first")
        return self._state

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return self._state_store.locked()

    def _record(self, name: str) -> dict[str, Any]:
        record: dict[str, Any] | None = self._require_state()["procs"].get(name)
        if record is None:
            raise TestbedError(f"no process named {name!r} in {self.LABEL}")
        return record

    def _alive(self, state: Mapping[str, Any], name: str) -> bool:
        record = state.get("procs", {}).get(name)
        if not record:
            return False
        child = self._children.get(name)
        if child is not None:
            child.poll()
        return is_alive(record.get("pid"), record.get("start_time"))

    def _process_label(self, name: str) -> str:
        return self.PROCESS_LABEL.format(name=name)

    # ------------------------------------------------------------------ processes

    def _spawn(self, name: str, argv: Sequence[str]) -> None:
        state = self._require_state()
        out_path = self.logs_dir / f"{name}.out"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        with out_path.open("ab") as out:
            out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                start_new_session=True,
            )
        self._children[name] = proc
        state["procs"][name] = {
            "pid": proc.pid,
            "start_time": process_start_time(proc.pid),
            "argv": list(argv),
            "log": str(out_path),
        }
        self._save_state()

    def _start_services(self, names: Sequence[str], timeout: float) -> None:
        """Start those of ``names`` that are not running with their recorded command lines (SIGCONT the
        paused ones), then wait until each serves."""
        for name in names:
            record = self._record(name)
            if is_alive(record.get("pid"), record.get("start_time")):
                signal_process(record["pid"], signal.SIGCONT, record.get("start_time"))
                continue
            for port in self._service_ports(name):
                if not port_is_free(port):
                    raise PortBusyError(port, self._process_label(name), port_owner(port), self.state_dir)
            self._spawn(name, record["argv"])
        for name in names:
            self._wait_serving(name, timeout)

    def _kill(self, name: str, sig: int, timeout: float) -> None:
        """Send ``sig`` to process ``name``; for SIGKILL, SIGTERM and SIGINT wait until it is gone and its
        ports are free (SIGSTOP and SIGCONT are sent and not waited on)."""
        record = self._record(name)
        pid, start_time = record.get("pid"), record.get("start_time")
        if not pid or not is_alive(pid, start_time):
            return
        signal_process(pid, sig, start_time)
        if sig not in _WAITED_SIGNALS:
            return
        self._wait_gone(name, pid, start_time, timeout)
        record["pid"] = record["start_time"] = None
        self._save_state()
        ports = self._service_ports(name)
        wait_until(
            lambda: all(map(port_is_free, ports)),
            10,
            f"ports {ports} of {self._process_label(name)} to be free",
        )

    def _signal_all(self, names: Sequence[str], sig: int) -> None:
        """Send ``sig`` to each of ``names`` at once, waiting for none of them."""
        for name in names:
            record = self._record(name)
            signal_process(record.get("pid") or 0, sig, record.get("start_time"))

    # ------------------------------------------------------------------ waiting

    def _wait(self, check: Callable[[], object], timeout: float, what: str) -> None:
        """wait_until, failing early (with the log's tail) when a process of the bed has died."""

        def guarded() -> bool:
            dead = self._dead()
            if dead:
                name = dead[0]
                logs = tail(Path(self._require_state()["procs"][name]["log"]))
                kafka_log = self.logs_dir / f"{name}.log"
                if kafka_log.exists():
                    logs += f"\n--- {kafka_log}\n{tail(kafka_log)}"
                raise TestbedError(
                    f"{self._process_label(name)} exited while waiting for {what}; its log ends with:\n{logs}"
                )
            return bool(check())

        wait_until(guarded, timeout, what, interval=0.2)

    def _dead(self) -> list[str]:
        """The recorded processes that have died (a process killed on purpose is recorded without a pid)."""
        state = self._require_state()
        return [
            name for name, record in state["procs"].items() if record["pid"] and not self._alive(state, name)
        ]

    def _wait_gone(self, name: str, pid: int, start_time: int | None, timeout: float) -> None:
        child = self._children.get(name)

        def gone() -> bool:
            if child is not None:
                child.poll()
            return not is_alive(pid, start_time)

        wait_until(gone, timeout, f"{self._process_label(name)} (pid {pid}) to exit", interval=0.05)
