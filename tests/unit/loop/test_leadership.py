"""Only the leader reconciles: a pass under way when leadership is lost writes nothing."""

from __future__ import annotations

import asyncio

from durabletopic.loop.leadership import reconcile_while_leader
from tests.unit.loop.conftest import Harness, lead_until, until
from tests.unit.loop.fakes import FakeLease


async def test_leadership_lost_in_the_middle_of_a_pass(harness: Harness) -> None:
    lease = FakeLease()
    harness.kafka.gate = asyncio.Event()
    ref = harness.apply("orders")
    leading = asyncio.create_task(reconcile_while_leader(harness.controller, lease, harness.metrics))
    try:
        await asyncio.sleep(0.05)
        assert harness.kafka.calls == [], "nothing happens before the lease is held"
        lease.granted.set()
        await until(lambda: harness.kafka.calls)
        lease.take_away()
        await until(lambda: harness.metrics.leading[-1:] == [False])
        harness.kube.writes_allowed = False
        harness.kafka.gate.set()
        await asyncio.sleep(0.1)
        assert harness.kube.status_writes == []
        assert "orders" not in harness.kafka.topics, "the cancelled pass created nothing"
        harness.kube.writes_allowed = True
        lease.granted.set()
        await until(lambda: harness.ready(ref))
        assert lease.acquired == 2 and harness.metrics.leading[-1] is True
    finally:
        leading.cancel()
        await asyncio.gather(leading, return_exceptions=True)


async def test_without_a_lease_the_replica_leads_at_once(harness: Harness) -> None:
    ref = harness.apply("orders")
    await lead_until(harness, lambda: harness.ready(ref))
