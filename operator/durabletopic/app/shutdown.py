"""The leader's way out: on SIGTERM its work stops and its Lease is given up first, before kopf stops
watching, so that a standby replica leads within its retry period.

kopf handles SIGTERM itself and runs cleanup handlers only once every watcher and queue has stopped,
which takes seconds on a busy operator; the Lease would be renewed all that while. So the signal is
taken from kopf once it has started (installed after kopf's own handler) and kopf is stopped through its
stop flag after the step down.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any, Protocol

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)
TAKE_SIGNALS_AFTER_SECONDS = 1.0


class Releasable(Protocol):
    async def release(self) -> None: ...


class StepDown:
    def __init__(self, leading: asyncio.Task[None], lease: Releasable | None) -> None:
        self.leading = leading
        self.lease = lease
        self.stop_flag = asyncio.Event()  # kopf stops when it is set
        self._stepping_down: asyncio.Future[None] | None = None
        self._stopping: asyncio.Future[None] | None = None

    async def __call__(self, **_: Any) -> None:
        """The work stopped and the Lease given up, once however often it is asked for."""
        if self._stepping_down is None:
            self._stepping_down = asyncio.ensure_future(self._step_down())
        await asyncio.shield(self._stepping_down)

    async def _step_down(self) -> None:
        self.leading.cancel()
        await asyncio.gather(self.leading, return_exceptions=True)
        if self.lease is not None:
            await self.lease.release()

    async def cleanup(self, **_: Any) -> None:
        """A kopf cleanup handler: kopf stopped for another reason than a signal taken here."""
        await self()

    async def take_signals(self, **_: Any) -> None:
        """A kopf startup handler: from a moment on, SIGTERM and SIGINT step down first, then stop kopf.
        kopf installs its own signal handlers just after its startup handlers begin, and the last one
        installed is the one that runs; a signal before that moment takes kopf's way (the cleanup)."""
        asyncio.get_running_loop().call_later(TAKE_SIGNALS_AFTER_SECONDS, self.install_signal_handlers)

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in SIGNALS:
            loop.add_signal_handler(signum, self.on_signal, signum)

    def on_signal(self, signum: int) -> None:
        if self._stopping is None:
            log.info("%s received: stepping down, then stopping", signal.Signals(signum).name)
            self._stopping = asyncio.ensure_future(self._then_stop())

    async def _then_stop(self) -> None:
        try:
            await self()
        finally:
            self.stop_flag.set()
