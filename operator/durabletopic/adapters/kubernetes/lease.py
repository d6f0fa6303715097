"""Leader election on a coordination.k8s.io Lease, so that one operator replica reconciles at a time.

The rules are client-go's: a lease is expired when its record has not changed for
`lease_duration` as measured on this replica's own clock (so clocks need not agree); the leader
renews every `retry_period` and steps down if it could not renew for `renew_deadline`, which is
shorter than `lease_duration`, so it has stopped before anyone else may take over.

A leader renews with one request: it writes the Lease it last wrote, with its resourceVersion, so the
API server refuses the write (409) if anyone changed the Lease since; only then is it read again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from durabletopic.adapters.kubernetes.client import ApiPort
from durabletopic.loop.ports import ApiError

log = logging.getLogger(__name__)


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        api: ApiPort,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 10.0,
        renew_deadline: float = 7.0,
        retry_period: float = 2.0,
    ) -> None:
        if not retry_period < renew_deadline < lease_duration:
            raise ValueError("leader election needs retry_period < renew_deadline < lease_duration")
        self.api = api
        self.identity = identity
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self.collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self.name = name
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._held: dict[str, Any] | None = None  # the Lease as this replica last wrote it

    async def acquire(self) -> None:
        """Returns once this replica holds the lease."""
        while True:
            if await self._try_acquire_or_renew():
                break
            await asyncio.sleep(self.retry_period)
        log.info("leader election: %s now leads through Lease %s", self.identity, self.path)

    async def hold(self) -> None:
        """Renews the lease; returns when it could not be renewed in time (leadership is lost)."""
        last_renewal = time.monotonic()
        while True:
            await asyncio.sleep(self.retry_period)
            try:
                renewed = await asyncio.wait_for(
                    self._try_acquire_or_renew(),
                    max(0.1, self.renew_deadline - (time.monotonic() - last_renewal)),
                )
            except TimeoutError:
                renewed = False
            if renewed:
                last_renewal = time.monotonic()
            elif time.monotonic() - last_renewal >= self.renew_deadline:
                log.warning(
                    "leader election: %s could not renew the lease in time; stepping down", self.identity
                )
                return

    async def release(self) -> None:
        """Gives the lease up at a clean shutdown, so that another replica takes over at once."""
        self._held = None
        try:
            lease = await self.api.request("GET", self.path)
            spec = lease.get("spec", {})
            if spec.get("holderIdentity") != self.identity:
                return
            lease["spec"] = {
                **spec,
                "holderIdentity": None,
                "leaseDurationSeconds": 1,
                "renewTime": _micro_time(),
            }
            await self.api.request("PUT", self.path, lease)
        except ApiError as error:
            log.info("leader election: lease not released: %s", error)

    async def _try_acquire_or_renew(self) -> bool:
        now = _micro_time()
        if self._held is not None and time.monotonic() < self._observed_at + self.lease_duration:
            renewed = await self._renew_held(now)
            if renewed is not None:
                return renewed
        self._held = None
        try:
            lease = await self.api.request("GET", self.path)
        except ApiError as error:
            if error.status != 404:
                log.info("leader election: lease not readable: %s", error)
                return False
            return await self._create(now)

        spec = lease.get("spec", {})
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        holder = spec.get("holderIdentity")
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        expired = time.monotonic() > self._observed_at + duration
        if holder and holder != self.identity and not expired:
            return False

        transitions = int(spec.get("leaseTransitions") or 0)
        new_spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_duration),
            "renewTime": now,
            "acquireTime": spec.get("acquireTime") if holder == self.identity else now,
            "leaseTransitions": transitions if holder == self.identity else transitions + 1,
        }
        lease["spec"] = new_spec
        try:
            updated = await self.api.request("PUT", self.path, lease)
        except ApiError as error:
            if error.status != 409:
                log.info("leader election: lease not updated: %s", error)
            return False
        self._wrote(updated)
        return True

    async def _renew_held(self, now: str) -> bool | None:
        """Renews by writing the Lease as last written, in one request. None when the Lease changed
        since (or is gone): the caller reads it and decides again."""
        assert self._held is not None
        lease = {**self._held, "spec": {**self._held.get("spec", {}), "renewTime": now}}
        try:
            updated = await self.api.request("PUT", self.path, lease)
        except ApiError as error:
            if error.status in (404, 409):
                return None
            log.info("leader election: lease not renewed: %s", error)
            return False
        self._wrote(updated)
        return True

    def _wrote(self, lease: dict[str, Any]) -> None:
        spec = lease.get("spec", {})
        self._observed = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))
        self._observed_at = time.monotonic()
        self._held = lease if spec.get("holderIdentity") == self.identity else None

    async def _create(self, now: str) -> bool:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.lease_duration),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }
        try:
            created = await self.api.request("POST", self.collection, body)
        except ApiError as error:
            if error.status != 409:
                log.info("leader election: lease not created: %s", error)
            return False
        self._wrote(created)
        return True
