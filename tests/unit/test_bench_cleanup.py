"""The benchmark's cleanup and checks: which topic a broker's log directory belongs to, live or
deleted, and what is wrong with a topic's partitions."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from bench.cluster import layout_problem, partition_topic


@pytest.mark.parametrize(
    ("directory", "topic"),
    [
        ("br-847e8f-00001-0", "br-847e8f-00001"),
        ("orders.v1-12", "orders.v1"),
        ("orders.v1-12.0a1b2c3d4e5f60718293a4b5c6d7e8f9-delete", "orders.v1"),
        ("bf-1-2-0.ff-delete", "bf-1-2"),
    ],
)
def test_a_partition_directory_names_its_topic(directory: str, topic: str) -> None:
    assert partition_topic(directory) == topic


def _partition(replicas: int, in_sync: int) -> SimpleNamespace:
    return SimpleNamespace(replicas=list(range(replicas)), isr=list(range(in_sync)))


@pytest.mark.parametrize(
    ("partitions", "problem"),
    [
        ([_partition(3, 3)], None),
        ([_partition(3, 2)], None),  # one replica behind: counted, still writable with acks=all
        ([_partition(3, 1)], "1 replica(s) in sync, fewer than min.insync.replicas=2"),
        ([_partition(2, 2)], "1 partitions, replicas [2]"),
        ([_partition(3, 3), _partition(3, 3)], "2 partitions, replicas [3]"),
    ],
)
def test_a_benchmark_topic_with_fewer_replicas_in_sync_than_min_isr_is_a_problem(
    partitions: list[SimpleNamespace], problem: str | None
) -> None:
    assert layout_problem(partitions) == problem
