"""Pure conversion of confluent-kafka describe results into the operator's model types."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka.admin import ConfigEntry, ConfigSource  # type: ignore[attr-defined]  # no __all__ there

from durabletopic.adapters.kafka.configmaps import ConfigMaps
from durabletopic.core.model import Broker, ClusterInfo, ObservedTopic, PartitionState

_TOPIC_OVERRIDE = ConfigSource.DYNAMIC_TOPIC_CONFIG.value


def _node_id(node: Any) -> int | None:
    if node is None or node.id is None or node.id < 0:
        return None
    return int(node.id)


def _node_ids(nodes: Iterable[Any] | None) -> tuple[int, ...]:
    return tuple(i for i in (_node_id(n) for n in nodes or ()) if i is not None)


def observe_partition(info: Any) -> PartitionState:
    """A `TopicPartitionInfo` as a `PartitionState`; a missing leader (None or -1) becomes None."""
    return PartitionState(
        partition=int(info.id),
        leader=_node_id(info.leader),
        replicas=_node_ids(info.replicas),
        isr=_node_ids(info.isr),
    )


def config_source(entry: ConfigEntry) -> ConfigSource:
    # Entries from describe_configs carry the source as a bare int, not a ConfigSource.
    source = entry.source
    return source if isinstance(source, ConfigSource) else ConfigSource(int(source))


def split_configs(entries: Mapping[str, ConfigEntry]) -> tuple[dict[str, str], dict[str, str]]:
    """(overrides, effective): the topic's own settings, and every value in force.

    Entries without a value (sensitive ones) are left out of both.
    """
    maps = ConfigMaps()
    for name, entry in entries.items():
        source: Any = entry.source
        # A plain int in confluent-kafka 2.x; compared without building an enum per entry (hot path).
        override = source == _TOPIC_OVERRIDE or source is ConfigSource.DYNAMIC_TOPIC_CONFIG
        maps.add(name, entry.value, override=override)
    return maps.done()


def observe_topic(
    description: Any, configs: Mapping[str, ConfigEntry], *, configs_complete: bool = True
) -> ObservedTopic:
    """A `TopicDescription` and the topic's `describe_configs` entries as an `ObservedTopic`."""
    overrides, effective = split_configs(configs)
    partitions = sorted((observe_partition(p) for p in description.partitions), key=lambda p: p.partition)
    return ObservedTopic(
        name=str(description.name),
        topic_id=str(description.topic_id) if description.topic_id is not None else "",
        partitions=tuple(partitions),
        overrides=overrides,
        effective=effective,
        configs_complete=configs_complete,
    )


def observe_cluster(result: Any) -> ClusterInfo:
    """A `DescribeClusterResult` as a `ClusterInfo`, brokers ordered by id."""
    brokers = sorted(
        (Broker(node_id=int(n.id), rack=n.rack or None) for n in result.nodes or () if n.id >= 0),
        key=lambda b: b.node_id,
    )
    cluster_id = getattr(result, "cluster_id", None)
    return ClusterInfo(
        brokers=tuple(brokers),
        controller_id=_node_id(result.controller),
        cluster_id=str(cluster_id) if cluster_id else None,
    )


def config_values(entries: Mapping[str, ConfigEntry], *sources: ConfigSource) -> dict[str, str]:
    """Name -> value of the entries that have a value, limited to `sources` when given."""
    return {
        name: entry.value
        for name, entry in entries.items()
        if entry.value is not None and (not sources or config_source(entry) in sources)
    }
