"""A controller wired to in-memory ports, driven pass by pass."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from durabletopic.core.model import ObjectRef, Policy
from durabletopic.loop.controller import Controller
from durabletopic.loop.store import Store
from tests.unit.loop.fakes import FakeKafka, FakeKube, FakeReassigner, RecordingMetrics, body


class Harness:
    def __init__(self) -> None:
        self.kafka = FakeKafka()
        self.kube = FakeKube()
        self.metrics = RecordingMetrics()
        self.reassigner = FakeReassigner(self.kafka)
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
        self.controller.observe_event("ADDED", event)
        return ObjectRef(event["metadata"]["namespace"], name)

    def event(
        self, event_type: str, name: str, spec: Mapping[str, Any] | None = None, **metadata: Any
    ) -> None:
        self.controller.observe_event(event_type, body(name, spec, **metadata))

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
