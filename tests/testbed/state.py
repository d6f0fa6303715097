"""A bed's ``state.json``: what it runs, read and written under the lock of its state directory."""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .config import STATE_FORMAT, TestbedError

__all__ = ["StateFile"]


class StateFile:
    """``STATE_DIR/state.json``, replaced whole at every save; ``locked()`` holds ``STATE_DIR/lock``.

    ``private``: only its owner may read it (it holds a password).
    """

    def __init__(self, state_dir: Path, *, private: bool = False) -> None:
        self.path = state_dir / "state.json"
        self._lock_path = state_dir / "lock"
        self._private = private

    def load(self) -> dict[str, Any] | None:
        """The recorded state, or None when there is none."""
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise TestbedError(f"cannot read {self.path}: {exc}") from exc
        if data.get("format") != STATE_FORMAT:
            raise TestbedError(f"{self.path} has an unknown format; stop its processes by hand")
        return data

    def save(self, state: dict[str, Any]) -> None:
        tmp = self.path.with_name("state.json.tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        if self._private:
            tmp.chmod(0o600)
        tmp.replace(self.path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the state directory's lock: one process at a time starts, adopts or stops the bed."""
        with self._lock_path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
