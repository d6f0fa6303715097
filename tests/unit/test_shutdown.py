"""On SIGTERM the leader stops its work and gives its Lease up before anything else stops."""

from __future__ import annotations

import asyncio
import os
import signal

from durabletopic.app.shutdown import SIGNALS, StepDown


class RecordingLease:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def release(self) -> None:
        self.events.append("released")


async def work(events: list[str]) -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        await asyncio.sleep(0.05)  # a pass winding down
        events.append("work stopped")
        raise


async def test_sigterm_stops_the_work_then_gives_the_lease_up_then_stops_kopf() -> None:
    events: list[str] = []
    step_down = StepDown(asyncio.create_task(work(events)), RecordingLease(events))
    await asyncio.sleep(0)
    step_down.install_signal_handlers()
    loop = asyncio.get_running_loop()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        async with asyncio.timeout(5):
            await step_down.stop_flag.wait()
    finally:
        for signum in SIGNALS:
            loop.remove_signal_handler(signum)
    assert events == ["work stopped", "released"], "the Lease is given up only once the work stopped"
    assert step_down.leading.cancelled()


async def test_a_second_signal_and_kopfs_cleanup_step_down_once() -> None:
    events: list[str] = []
    step_down = StepDown(asyncio.create_task(work(events)), RecordingLease(events))
    await asyncio.sleep(0)
    step_down.on_signal(signal.SIGTERM)
    step_down.on_signal(signal.SIGTERM)
    await asyncio.gather(step_down(), step_down())
    await step_down.stop_flag.wait()
    assert events == ["work stopped", "released"]


async def test_without_leader_election_the_work_stops_and_kopf_is_stopped() -> None:
    events: list[str] = []
    step_down = StepDown(asyncio.create_task(work(events)), None)
    await asyncio.sleep(0)
    step_down.on_signal(signal.SIGINT)
    async with asyncio.timeout(5):
        await step_down.stop_flag.wait()
    assert events == ["work stopped"]
