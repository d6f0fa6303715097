"""A controller wired to in-memory ports, driven pass by pass."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from durabletopic.core.model import ObjectRef, Policy
from durabletopic.loop.controller import Controller
from durabletopic.loop.leadership import reconcile_while_leader
from durabletopic.loop.ports import LeasePort
from durabletopic.loop.store import Store
from tests.unit.loop.fakes import FakeKafka, FakeKube, FakeReassigner, RecordingMetrics, body


async def until(condition: Callable[[], object], seconds: float = 5.0) -> None:
    """Polls `condition` (state of the fakes, which signal nothing) until it holds."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


class Harness:
    def __init__(
        self,
        kafka: FakeKafka | None = None,
        kube: FakeKube | None = None,
        reassigner: FakeReassigner | None = None,
    ) -> None:
        """A new operator; given `kafka` and `kube`, one that restarts against the same cluster and API server."""
        self.kafka = kafka or FakeKafka()
        self.kube = kube or FakeKube()
        self.metrics = RecordingMetrics()
        self.reassigner = reassigner or FakeReassigner(self.kafka)
        self.controller = Controller(
            store=Store(),
            kafka=self.kafka,
            kube=self.kube,
            metrics=self.metrics,
            policy=Policy(),
            now=lambda: "2026-11-28T12:00:00Z",
            reassigner=self.reassigner,
        )

    def apply(self, name: str, spec: Mapping[str, Any] | None = None, **metadata: Any) -> ObjectRef:
        """A watch event for the object, as the API server would send it after `kubectl apply`."""
        event = body(name, spec, **metadata)
        ref = ObjectRef(event["metadata"]["namespace"], name)
        self.kube.objects[ref] = event
        self.controller.observe_event("ADDED", event)
        return ref

    def event(
        self, event_type: str, name: str, spec: Mapping[str, Any] | None = None, **metadata: Any
    ) -> None:
        """A watch event; the API server's copy of the object changes (or goes) with it."""
        event = body(name, spec, **metadata)
        ref = ObjectRef(event["metadata"]["namespace"], name)
        if event_type == "DELETED":
            self.kube.objects.pop(ref, None)
        else:
            self.kube.objects[ref] = event
        self.controller.observe_event(event_type, event)

    async def step(self) -> list[ObjectRef]:
        """One pass over every queued object, due or not: the waiting is not what these tests test."""
        refs = self.controller.queue.keys()
        for ref in refs:
            self.controller.queue.discard(ref)
        if refs:
            await self.controller.reconcile(refs)
        return refs

    async def settle(self, passes: int = 10) -> None:
        for _ in range(passes):
            if not await self.step():
                return
        raise AssertionError(f"still work queued after {passes} passes: {self.controller.queue.keys()}")

    def status(self, ref: ObjectRef) -> dict[str, Any]:
        obj = self.controller.store.get(ref)
        assert obj is not None
        return obj.status

    def ready(self, ref: ObjectRef) -> bool:
        return self.kube.condition(ref, "Ready") == ("True", "Reconciled")


@pytest.fixture
def harness() -> Harness:
    return Harness()


async def lead_until(
    harness: Harness, condition: Callable[[], object], lease: LeasePort | None = None
) -> None:
    """The loops of a leader (with `lease`, or none: leading at once) until `condition` holds."""
    leading = asyncio.create_task(reconcile_while_leader(harness.controller, lease, harness.metrics))
    try:
        await until(condition)
    finally:
        leading.cancel()
        await asyncio.gather(leading, return_exceptions=True)
