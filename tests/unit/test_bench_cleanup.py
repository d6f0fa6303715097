"""The benchmark's cleanup: which topic a broker's log directory belongs to, live or deleted."""

from __future__ import annotations

import pytest
from bench.cluster import partition_topic


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
