"""Only the leader reconciles: the loops run while this replica holds the lease, and stop when it is lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from durabletopic.loop.controller import Controller
from durabletopic.loop.ports import LeasePort, MetricsPort

log = logging.getLogger(__name__)

RESTART_DELAY_SECONDS = 1.0


async def reconcile_while_leader(
    controller: Controller,
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
        controller.enqueue_all()
        loops: list[Awaitable[None]] = [
            controller.run(),
            controller.sweep(),
            controller.profiles.run(),
            *extra_loops(),
        ]
        tasks = [asyncio.ensure_future(loop) for loop in loops]
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
        failed = [t for t in done if not t.cancelled() and t.exception() is not None]
        if not failed:
            return  # the operator is shutting down
        for task in failed:
            log.error("a reconcile loop failed; restarting them", exc_info=task.exception())
        await asyncio.sleep(RESTART_DELAY_SECONDS)
