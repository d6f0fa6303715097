"""Leader election on a real API server: the leader renews its Lease with one request, and a Lease
changed behind its back is read again and not written over."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from durabletopic.adapters.kubernetes.client import KubeApi, load_configuration
from durabletopic.adapters.kubernetes.lease import LeaderElector, _micro_time

NAMESPACE = "default"


@pytest.fixture
async def api(kubeconfig: Path) -> AsyncIterator[tuple[KubeApi, Counter[str]]]:
    requests: Counter[str] = Counter()
    client = KubeApi(
        load_configuration(str(kubeconfig)),
        on_request=lambda method, result, seconds: requests.update([f"{method} {result}"]),
    )
    yield client, requests
    await client.close()


def elector(api: KubeApi, name: str, identity: str) -> LeaderElector:
    return LeaderElector(
        api,
        namespace=NAMESPACE,
        name=name,
        identity=identity,
        lease_duration=4.0,
        renew_deadline=2.0,
        retry_period=0.5,
    )


async def leading(api: KubeApi, name: str, identity: str = "replica-a") -> LeaderElector:
    leader = elector(api, name, identity)
    await asyncio.wait_for(leader.acquire(), 10)
    return leader


async def test_the_leader_renews_with_one_write_and_no_read(
    api: tuple[KubeApi, Counter[str]], unique: str
) -> None:
    client, requests = api
    leader = await leading(client, unique)
    before = (await client.request("GET", leader.path))["spec"]["renewTime"]
    requests.clear()

    for _ in range(3):
        assert await leader._try_acquire_or_renew()

    assert requests == Counter({"PUT ok": 3})
    lease = await client.request("GET", leader.path)
    assert lease["spec"]["holderIdentity"] == "replica-a"
    assert lease["spec"]["renewTime"] > before
    assert lease["spec"]["leaseTransitions"] == 0


async def test_a_lease_taken_behind_the_leaders_back_is_not_written_over(
    api: tuple[KubeApi, Counter[str]], unique: str
) -> None:
    client, _ = api
    leader = await leading(client, unique)

    lease = await client.request("GET", leader.path)
    lease["spec"] |= {"holderIdentity": "replica-b", "renewTime": _micro_time(), "leaseDurationSeconds": 30}
    await client.request("PUT", leader.path, lease)

    assert not await leader._try_acquire_or_renew()
    started = time.monotonic()
    await asyncio.wait_for(leader.hold(), 10)  # returns when leadership is lost
    assert time.monotonic() - started < 4.0
    after = await client.request("GET", leader.path)
    assert after["spec"]["holderIdentity"] == "replica-b"


async def test_a_lease_deleted_behind_the_leaders_back_is_created_again(
    api: tuple[KubeApi, Counter[str]], unique: str
) -> None:
    client, _ = api
    leader = await leading(client, unique)
    await client.request("DELETE", leader.path)

    assert await leader._try_acquire_or_renew()
    lease = await client.request("GET", leader.path)
    assert lease["spec"]["holderIdentity"] == "replica-a"


async def test_a_released_lease_is_taken_by_the_other_replica(
    api: tuple[KubeApi, Counter[str]], unique: str
) -> None:
    client, _ = api
    first = await leading(client, unique)
    second = elector(client, unique, "replica-b")
    assert not await second._try_acquire_or_renew()

    await first.release()
    await asyncio.wait_for(second.acquire(), 5)
    assert not await first._try_acquire_or_renew()
    lease = await client.request("GET", first.path)
    assert (lease["spec"]["holderIdentity"], lease["spec"]["leaseTransitions"]) == ("replica-b", 1)
