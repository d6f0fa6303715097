"""A deduplicating work queue with delays: each key waits at most once, at its earliest due time."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._due: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._counter = 0
        self._wakeup = asyncio.Event()

    def __len__(self) -> int:
        return len(self._due)

    def add(self, key: K, delay: float = 0.0) -> None:
        due = time.monotonic() + delay
        current = self._due.get(key)
        if current is not None and current <= due:
            return
        self._due[key] = due
        self._counter += 1
        heapq.heappush(self._heap, (due, self._counter, key))
        self._wakeup.set()

    def due_count(self) -> int:
        """Keys due now (not those waiting out a delay)."""
        now = time.monotonic()
        return sum(1 for due in self._due.values() if due <= now)

    def discard(self, key: K) -> None:
        self._due.pop(key, None)

    def delay_of(self, key: K) -> float | None:
        """Seconds until `key` is due (0 when due now), or None when it is not queued."""
        due = self._due.get(key)
        return None if due is None else max(0.0, due - time.monotonic())

    def keys(self) -> list[K]:
        """Every queued key, due or waiting out a delay, earliest first."""
        return sorted(self._due, key=self._due.__getitem__)

    def _pop_due(self, now: float, limit: int) -> list[K]:
        taken: list[K] = []
        while self._heap and len(taken) < limit:
            due, _, key = self._heap[0]
            if self._due.get(key) != due:
                heapq.heappop(self._heap)
                continue
            if due > now:
                break
            heapq.heappop(self._heap)
            del self._due[key]
            taken.append(key)
        return taken

    def _next_due(self) -> float | None:
        while self._heap:
            due, _, key = self._heap[0]
            if self._due.get(key) == due:
                return due
            heapq.heappop(self._heap)
        return None

    async def take(self, limit: int, linger: float = 0.0) -> list[K]:
        """Waits until a key is due, lingers so that more can join, and returns at most `limit` keys."""
        while True:
            now = time.monotonic()
            next_due = self._next_due()
            if next_due is not None and next_due <= now:
                if linger > 0 and len(self._due) < limit:
                    await asyncio.sleep(linger)
                return self._pop_due(time.monotonic(), limit)
            self._wakeup.clear()
            timeout = None if next_due is None else next_due - now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)
