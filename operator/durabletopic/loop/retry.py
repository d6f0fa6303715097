"""How long an object waits before the loop looks at it again."""

from __future__ import annotations

from collections import defaultdict

from durabletopic.core.model import ObjectRef

RETRY_BASE_SECONDS = 0.5
RETRY_CAP_SECONDS = 4.0
# While Kafka moves replicas of a topic, its object is looked at again this often.
POLL_SECONDS = 1.0


class Retries:
    """Failures since each object last settled: 0.5 s, 1 s, 2 s, then every 4 s."""

    def __init__(self) -> None:
        self._attempts: dict[ObjectRef, int] = defaultdict(int)

    def attempts(self, ref: ObjectRef) -> int:
        return self._attempts.get(ref, 0)

    def next_delay(self, ref: ObjectRef) -> float:
        attempt = self._attempts[ref]
        self._attempts[ref] = attempt + 1
        return float(min(RETRY_BASE_SECONDS * (2**attempt), RETRY_CAP_SECONDS))

    def settle(self, ref: ObjectRef) -> None:
        self._attempts.pop(ref, None)
