"""Client profiles: the ConfigMap `<name>-client-profile` of every DurableTopic that owns its topic.

These writes are low priority: they wait until no reconcile work is due, go out a few at a time,
and are made once per object and topic, so that they never delay a topic's Ready.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from durabletopic.core.model import ObjectRef
from durabletopic.loop.ports import ApiError, KubePort
from durabletopic.loop.store import DurableTopicObject, Store
from durabletopic.loop.workqueue import WorkQueue

log = logging.getLogger(__name__)

WRITERS = 4
BUSY_WAIT_SECONDS = 0.2


class ClientProfiles:
    def __init__(self, store: Store, kube: KubePort, queue: WorkQueue[ObjectRef]) -> None:
        self.store = store
        self.kube = kube
        self.queue = queue
        self._applied: dict[ObjectRef, tuple[str, str]] = {}
        self._due: set[ObjectRef] = set()
        self._wanted = asyncio.Event()

    def wanted(self, objects: Iterable[DurableTopicObject]) -> None:
        """Objects a pass has finished: their profiles are due unless already applied."""
        for obj in objects:
            if self._applied.get(obj.ref) != (obj.uid, obj.topic_name):
                self._due.add(obj.ref)
        if self._due:
            self._wanted.set()

    def forget(self, ref: ObjectRef) -> None:
        self._applied.pop(ref, None)
        self._due.discard(ref)

    async def run(self) -> None:
        """Applies due profiles while no reconcile work is due, a few at a time."""
        limit = asyncio.Semaphore(WRITERS)

        async def one(ref: ObjectRef) -> None:
            async with limit:
                obj = self.store.get(ref)
                if obj is not None:
                    await self._ensure(obj)

        while True:
            await self._wanted.wait()
            self._wanted.clear()
            while self._due:
                if self.queue.due_count():
                    await asyncio.sleep(BUSY_WAIT_SECONDS)
                    continue
                batch = [self._due.pop() for _ in range(min(len(self._due), 4 * WRITERS))]
                await asyncio.gather(*(one(ref) for ref in batch))

    async def _ensure(self, obj: DurableTopicObject) -> None:
        if obj.deleting or obj.paused or self._applied.get(obj.ref) == (obj.uid, obj.topic_name):
            return
        if self.store.owner(obj.key) != obj.ref:
            return
        try:
            await self.kube.apply_client_profile(obj)
            self._applied[obj.ref] = (obj.uid, obj.topic_name)
        except ApiError as error:
            log.info("client profile of %s not applied: %s", obj.ref, error)
            if 400 <= error.status < 500 and error.status != 429:
                # A namespace being deleted, or a profile someone else owns: no retry on every sweep.
                self._applied[obj.ref] = (obj.uid, obj.topic_name)
