"""Only the leader reconciles: the loops run while this replica holds the lease, and stop when it is lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from durabletopic.loop.ports import LeasePort, MetricsPort

log = logging.getLogger(__name__)


class Leading(Protocol):
    """What the leader runs: one controller, or a fleet of them."""

    async def resync(self) -> None: ...
    def enqueue_all(self) -> None: ...
    def leader_loops(self) -> list[Awaitable[None]]: ...


RESTART_DELAY_SECONDS = 1.0
RESYNC_RETRY_SECONDS = (0.5, 1.0, 2.0, 4.0)


async def reconcile_while_leader(
    controller: Leading,
    lease: LeasePort | None,
    metrics: MetricsPort,
    extra_loops: Callable[[], list[Awaitable[None]]] = list,
) -> None:
    """Watches run on every replica so the store stays warm; only the leader reconciles.

    Without a lease (leader election off) this replica leads from the start. A loop that fails is
    restarted with the others; the function returns when the loops end by themselves (shutdown).
    """
    while True:
        if lease is not None:
            await lease.acquire()
        metrics.set_leader(True)
        leading = asyncio.ensure_future(lead(controller, extra_loops))
        tasks: list[asyncio.Future[None]] = [leading]
        holding = asyncio.ensure_future(lease.hold()) if lease is not None else None
        if holding is not None:
            tasks.append(holding)
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            metrics.set_leader(False)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if holding is not None and holding in done:
            log.warning("leadership lost: reconciling stops until this replica leads again")
            continue
        if leading.cancelled() or leading.exception() is None:
            return  # the operator is shutting down
        log.error("a reconcile loop failed; restarting them", exc_info=leading.exception())
        await asyncio.sleep(RESTART_DELAY_SECONDS)


async def lead(controller: Leading, extra_loops: Callable[[], list[Awaitable[None]]]) -> None:
    """The leader's work: first a complete view of every DurableTopic, then the loops."""
    await resync_until_done(controller)
    controller.enqueue_all()
    loops: list[Awaitable[None]] = [*controller.leader_loops(), *extra_loops()]
    tasks = [asyncio.ensure_future(loop) for loop in loops]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error


async def resync_until_done(controller: Leading) -> None:
    """Ownership is never decided on a partial list: the loops wait until one full listing succeeds."""
    attempt = 0
    while True:
        try:
            await controller.resync()
            return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            delay = RESYNC_RETRY_SECONDS[min(attempt, len(RESYNC_RETRY_SECONDS) - 1)]
            log.warning(
                "listing every DurableTopic failed (%s); reconciling waits, retried in %.1f s", error, delay
            )
            attempt += 1
            await asyncio.sleep(delay)
