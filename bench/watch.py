"""A watch stream that records when each DurableTopic became Ready, and how often it was modified."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, cast

from kubernetes import client, watch

from bench.cluster import Bench
from durabletopic.core import crd


def is_ready(obj: Mapping[str, Any]) -> bool:
    """Ready=True for the object's current generation."""
    status = obj.get("status") or {}
    if status.get("observedGeneration") != (obj.get("metadata") or {}).get("generation"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def ready_reason(obj: Mapping[str, Any]) -> str:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return f"{c.get('status')}/{c.get('reason')}"
    return "no Ready condition"


class ReadyWatcher:
    """Watches the DurableTopics of one namespace (a watch stream, not polling) and records the moment
    (monotonic) each one was first seen Ready, and how many MODIFIED events each one had."""

    def __init__(self, bench: Bench, namespace: str, expected: Iterable[str]) -> None:
        self.bench = bench
        self.namespace = namespace
        self.expected = set(expected)
        self._waiting_for = len(self.expected)
        self.ready: dict[str, float] = {}
        self.modified: dict[str, int] = {}
        self.not_ready_writes: dict[str, int] = {}  # MODIFIED events leaving an object not Ready, by reason
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._listed = threading.Event()
        self._all_ready = threading.Event()
        self._stop = threading.Event()
        self._watch: watch.Watch | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{namespace}", daemon=True)

    def start(self) -> ReadyWatcher:
        self._thread.start()
        if not self._listed.wait(60):
            raise TimeoutError(f"no initial listing of {self.namespace} within 60 s")
        if self.error is not None:
            raise self.error
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()  # type: ignore[no-untyped-call]
        self._thread.join(10)

    def wait_all_ready(self, timeout: float) -> bool:
        self._all_ready.wait(timeout)
        if self.error is not None:
            raise self.error
        return self._all_ready.is_set()

    def modified_count(self) -> int:
        with self._lock:
            return sum(self.modified.values())

    def _see(self, obj: Mapping[str, Any], event_type: str) -> None:
        name = obj["metadata"]["name"]
        with self._lock:
            if event_type == "MODIFIED":
                self.modified[name] = self.modified.get(name, 0) + 1
                if not is_ready(obj):
                    reason = ready_reason(obj)
                    self.not_ready_writes[reason] = self.not_ready_writes.get(reason, 0) + 1
            if name not in self.ready and is_ready(obj):
                self.ready[name] = time.monotonic()
                if name in self.expected:
                    self._waiting_for -= 1
                    if self._waiting_for == 0:
                        self._all_ready.set()

    def _run(self) -> None:
        custom = self.bench.custom
        resource_version: str | None = None
        try:
            while not self._stop.is_set():
                if resource_version is None:
                    listing = cast(
                        dict[str, Any],
                        custom.list_namespaced_custom_object(
                            crd.GROUP, crd.VERSION, self.namespace, crd.PLURAL
                        ),
                    )
                    for item in listing.get("items", []):
                        self._see(item, "LISTED")
                    resource_version = listing["metadata"]["resourceVersion"]
                    self._listed.set()
                self._watch = watch.Watch()  # type: ignore[no-untyped-call]
                try:
                    for event in self._watch.stream(  # type: ignore[no-untyped-call]
                        custom.list_namespaced_custom_object,
                        crd.GROUP,
                        crd.VERSION,
                        self.namespace,
                        crd.PLURAL,
                        resource_version=resource_version,
                        allow_watch_bookmarks=True,
                        timeout_seconds=5,
                    ):
                        obj = event["object"]
                        resource_version = obj["metadata"]["resourceVersion"]
                        if event["type"] in ("ADDED", "MODIFIED"):
                            self._see(obj, event["type"])
                        if self._stop.is_set():
                            break
                except client.ApiException as error:
                    if error.status != 410:
                        raise
                    resource_version = None  # expired: list again
        except BaseException as error:  # reported to the waiting thread
            if not self._stop.is_set():
                self.error = error
            self._listed.set()
            self._all_ready.set()
