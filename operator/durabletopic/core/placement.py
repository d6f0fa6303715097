"""Where new replicas go when a topic's replication factor changes. Pure.

Existing replicas stay where they are and in their order, so every partition keeps its leader and
its preferred leader. New replicas go first to racks the partition does not use yet, then to the
brokers holding the fewest replicas of the topic, then to the lowest broker id.
"""

from __future__ import annotations

from collections import Counter

from durabletopic.core.model import ClusterInfo, PartitionState

Assignment = dict[int, tuple[int, ...]]


class PlacementError(ValueError):
    """The cluster has too few brokers or racks for the target."""


def add_replicas(partitions: tuple[PartitionState, ...], cluster: ClusterInfo, target: int) -> Assignment:
    broker_ids = sorted(b.node_id for b in cluster.brokers)
    rack_of = {b.node_id: b.rack for b in cluster.brokers}
    if len(broker_ids) < target:
        raise PlacementError(
            f"replication factor {target} needs {target} live brokers; the cluster has {len(broker_ids)}"
        )
    racks = cluster.racks
    if racks and len(racks) < target:
        raise PlacementError(
            f"replication factor {target} needs replicas on {target} racks; the brokers span {len(racks)} "
            f"({', '.join(sorted(racks))})"
        )
    load = Counter(replica for p in partitions for replica in p.replicas)
    assignment: Assignment = {}
    for partition in sorted(partitions, key=lambda p: p.partition):
        replicas = list(partition.replicas)
        while len(replicas) < target:
            used_racks = {rack_of.get(r) for r in replicas}
            candidates = [b for b in broker_ids if b not in replicas]
            chosen = min(candidates, key=lambda b: (rack_of.get(b) in used_racks and bool(racks), load[b], b))
            replicas.append(chosen)
            load[chosen] += 1
        if len(replicas) != len(partition.replicas):
            assignment[partition.partition] = tuple(replicas)
    return assignment


def remove_replicas(partitions: tuple[PartitionState, ...], cluster: ClusterInfo, target: int) -> Assignment:
    """Drops replicas that are not leaders, last ones first, preferring a rack the partition has twice."""
    rack_of = {b.node_id: b.rack for b in cluster.brokers}
    assignment: Assignment = {}
    for partition in sorted(partitions, key=lambda p: p.partition):
        replicas = list(partition.replicas)
        while len(replicas) > target:
            racks = Counter(rack_of.get(r) for r in replicas)
            removable = [r for r in replicas if r != partition.leader]
            victim = max(removable, key=lambda r: (racks[rack_of.get(r)] > 1, replicas.index(r)))
            replicas.remove(victim)
        if len(replicas) != len(partition.replicas):
            assignment[partition.partition] = tuple(replicas)
    return assignment
