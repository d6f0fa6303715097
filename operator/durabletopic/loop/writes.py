"""The loop's writes to the API server: status, finalizers and events, and what a failure means.

A failed write is retried with the object's backoff; a 404 means the object is gone, and the loop
forgets it at once (a ghost must never keep claiming a topic).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from durabletopic.core.model import ObjectRef
from durabletopic.loop.ports import ApiError, KubePort
from durabletopic.loop.store import DurableTopicObject, Store

log = logging.getLogger(__name__)

FINALIZER = "durabletopic.dev/delete-topic"
NOT_FOUND = 404


class Writes:
    def __init__(
        self,
        store: Store,
        kube: KubePort,
        *,
        retry: Callable[[ObjectRef], None],
        gone: Callable[[ObjectRef], None],
    ) -> None:
        self.store = store
        self.kube = kube
        self.retry = retry
        self.gone = gone

    async def status(self, obj: DurableTopicObject, status: dict[str, Any]) -> None:
        try:
            await self.kube.write_status(obj, status, obj.status)
            self.store.set_status(obj, status)
        except ApiError as error:
            self._failed(obj, "status", error)

    async def finalizer(self, obj: DurableTopicObject, wanted: bool) -> None:
        if (FINALIZER in obj.finalizers) == wanted:
            return
        finalizers = [f for f in obj.finalizers if f != FINALIZER] + ([FINALIZER] if wanted else [])
        await self.finalizers(obj, finalizers)

    async def finalizers(self, obj: DurableTopicObject, finalizers: Sequence[str]) -> None:
        try:
            await self.kube.set_finalizers(obj, finalizers)
            obj.finalizers = tuple(finalizers)
        except ApiError as error:
            self._failed(obj, "finalizers", error)

    async def event(self, obj: DurableTopicObject, kind: str, reason: str, message: str) -> None:
        try:
            await self.kube.post_event(obj, kind, reason, message)
        except ApiError as error:
            log.info("event %s on %s not posted: %s", reason, obj.ref, error)
        log.log(logging.WARNING if kind == "Warning" else logging.INFO, "%s %s: %s", obj.ref, reason, message)

    def _failed(self, obj: DurableTopicObject, what: str, error: ApiError) -> None:
        if error.status == NOT_FOUND:
            log.info("%s is gone (404 writing its %s): forgotten", obj.ref, what)
            if self.store.holds(obj):
                self.gone(obj.ref)
            return
        log.warning("%s of %s not written (%s); retrying", what, obj.ref, error)
        self.retry(obj.ref)
