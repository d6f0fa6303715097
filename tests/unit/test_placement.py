"""Replica placement for replication-factor changes."""

from __future__ import annotations

from collections import Counter

import pytest

from durabletopic.core.model import Broker, ClusterInfo, PartitionState
from durabletopic.core.placement import PlacementError, add_replicas, remove_replicas


def cluster(*racks: str) -> ClusterInfo:
    return ClusterInfo(tuple(Broker(i + 1, rack) for i, rack in enumerate(racks)))


def test_new_replicas_go_to_unused_racks_and_balance() -> None:
    six = cluster("a", "a", "b", "b", "c", "c")
    partitions = tuple(PartitionState(p, 1 + p % 6, (1 + p % 6,), (1 + p % 6,)) for p in range(12))
    assignment = add_replicas(partitions, six, 3)
    rack_of = {b.node_id: b.rack for b in six.brokers}
    load: Counter[int] = Counter()
    for number, replicas in assignment.items():
        assert replicas[0] == partitions[number].replicas[0], "the leader stays first"
        assert len({rack_of[r] for r in replicas}) == 3, "one replica per rack"
        load.update(replicas)
    assert max(load.values()) - min(load.values()) <= 1


def test_not_enough_brokers_or_racks() -> None:
    one = (PartitionState(0, 1, (1,), (1,)),)
    with pytest.raises(PlacementError, match="3 live brokers"):
        add_replicas(one, cluster("a", "b"), 3)
    with pytest.raises(PlacementError, match="3 racks"):
        add_replicas(one, cluster("a", "a", "b"), 3)
    assert add_replicas(one, ClusterInfo((Broker(1, None), Broker(2, None), Broker(3, None))), 3)[0] == (
        1,
        2,
        3,
    )


def test_removal_keeps_the_leader() -> None:
    partitions = (PartitionState(0, 3, (1, 2, 3), (1, 2, 3)),)
    assert remove_replicas(partitions, cluster("a", "b", "c"), 2) == {0: (1, 3)}
