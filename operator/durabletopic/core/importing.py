"""What `durabletopic import` makes of the Kafka topics no DurableTopic manages: which topics, the object
name of each, and the DurableTopic that declares it as it is, raised to the floors where it is below
them. Pure: the command reads Kafka and the API server, the tools render YAML.

A topic is taken as it is: its partitions, its replication factor (the smallest replica count of its
partitions, as the audit counts it) and the configs set on the topic itself (dynamic topic configs; the
broker defaults it inherits are not copied). The durability fields are then brought to the floors:
replication factor at least the floor; min.insync.replicas at least its floor and below the replication
factor; unclean leader election off. The DurableTopic writes both durability keys on the topic itself,
so a value the topic only inherits is written on it too. Every such change is listed, to head the
manifest as comments.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from durabletopic.core import crd
from durabletopic.core.configs import (
    DURABILITY_KEYS,
    MIN_INSYNC_REPLICAS,
    THROTTLE_KEYS,
    UNCLEAN_LEADER_ELECTION,
    is_enabled,
)
from durabletopic.core.model import DeletionPolicy, ObservedTopic, Policy
from durabletopic.core.tenancy.internal import is_internal

REPLICATION_FACTOR = "replication.factor"
# The longest object name written: the client profile ConfigMap `<name>-client-profile` must stay
# within the 253 characters of a Kubernetes name.
MAX_OBJECT_NAME = 200
HASH_LENGTH = 8
_NOT_IN_NAME = re.compile(r"[^a-z0-9-]+")
_DASHES = re.compile(r"-{2,}")


@dataclass(frozen=True, slots=True)
class Change:
    """One way the manifest differs from the topic as Kafka has it."""

    key: str
    before: str
    after: str
    verb: str  # "raises", "lowers", "turns off", "writes"

    def comment(self) -> str:
        if self.verb == "writes":
            return f"writes {self.key}={self.after} on the topic (inherited until now: {self.before})"
        return f"{self.verb} {self.key} {self.before} -> {self.after}"


@dataclass(frozen=True, slots=True)
class ImportedTopic:
    """The DurableTopic of one Kafka topic and what it changes."""

    topic: str
    name: str
    namespace: str | None
    spec: dict[str, Any]
    changes: tuple[Change, ...]
    left_out: tuple[str, ...] = ()

    def manifest(self) -> dict[str, Any]:
        metadata: dict[str, str] = {"name": self.name}
        if self.namespace:
            metadata["namespace"] = self.namespace
        return {"apiVersion": crd.API_VERSION, "kind": crd.KIND, "metadata": metadata, "spec": self.spec}

    def comments(self) -> list[str]:
        """The lines that head the manifest (without '# ')."""
        lines = [f"durabletopic import: Kafka topic {self.topic}"]
        lines += [change.comment() for change in self.changes]
        lines += [f"leaves out {key}: set on the topic while replicas move" for key in self.left_out]
        if not self.changes and not self.left_out:
            lines.append("no change to the topic: this declares it as it is")
        return lines


def to_import(
    topics: Iterable[str], managed: Collection[str], prefix: str = "", exceptions: Collection[str] = ()
) -> list[str]:
    """The topics to import, sorted: those starting with `prefix` that no DurableTopic declares, less the
    internal and system topics (a name starting with __, Schema Registry's and Kafka Connect's topics)
    unless `exceptions` names them."""
    return sorted(
        name
        for name in set(topics)
        if name.startswith(prefix) and name not in managed and not is_internal(name, exceptions)
    )


def declared_topic(obj: Mapping[str, Any]) -> str | None:
    """The Kafka topic a DurableTopic object declares: spec.topicName, else metadata.name."""
    spec, metadata = obj.get("spec"), obj.get("metadata")
    topic = spec.get("topicName") if isinstance(spec, Mapping) else None
    if isinstance(topic, str) and topic:
        return topic
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return name if isinstance(name, str) and name else None


def cluster_of(obj: Mapping[str, Any]) -> str | None:
    """The KafkaCluster a DurableTopic object names in spec.clusterRef, or None (the default cluster)."""
    spec = obj.get("spec")
    ref = spec.get("clusterRef") if isinstance(spec, Mapping) else None
    name = ref.get("name") if isinstance(ref, Mapping) else None
    return name if isinstance(name, str) else None


def managed_topics(objects: Iterable[Mapping[str, Any]], cluster: str | None = None) -> set[str]:
    """The topics the DurableTopic `objects` declare. With `cluster` (a KafkaCluster's name), those of the
    objects on that cluster and of the objects without clusterRef (they may be on it: which cluster is the
    default is the operator's setting); without, every object's, whatever its cluster: a topic some
    DurableTopic declares is never imported a second time."""
    found: set[str] = set()
    for obj in objects:
        topic, on = declared_topic(obj), cluster_of(obj)
        if topic is not None and (cluster is None or on is None or on == cluster):
            found.add(topic)
    return found


def name_of(topic: str) -> str:
    """The topic name as a Kubernetes object name: lower case, every run of other characters than
    [a-z0-9] as one '-', no '-' at the ends."""
    name = _DASHES.sub("-", _NOT_IN_NAME.sub("-", topic.lower())).strip("-")
    return name[:MAX_OBJECT_NAME].rstrip("-")


def _hashed(topic: str, base: str) -> str:
    digest = hashlib.sha256(topic.encode()).hexdigest()[:HASH_LENGTH]
    stem = base[: MAX_OBJECT_NAME - HASH_LENGTH - 1].rstrip("-")
    return f"{stem}-{digest}" if stem else f"topic-{digest}"


def object_names(topics: Iterable[str], taken: Collection[str] = ()) -> dict[str, str]:
    """A distinct, valid object name for every topic, none of them `taken` (the names of the DurableTopics
    already in the namespace). A topic whose name is a valid object name keeps it; another gets
    :func:`name_of`. A short hash of the topic name is added where the name would be taken twice
    (`Orders` and `orders`, `a.b` and `a_b`), is taken already, or is empty."""
    plain = {t: name_of(t) for t in sorted(set(topics))}
    counts: dict[str, int] = {}
    for name in plain.values():
        counts[name] = counts.get(name, 0) + 1
    names: dict[str, str] = {}
    for topic, name in plain.items():
        unique = bool(name) and name not in taken and (name == topic or counts[name] == 1)
        names[topic] = name if unique else _hashed(topic, name)
    return names


def names_in(objects: Iterable[Mapping[str, Any]], namespace: str | None) -> set[str]:
    """The metadata.name of the objects in `namespace` (of every object when it is None)."""
    names: set[str] = set()
    for obj in objects:
        metadata = obj.get("metadata")
        if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str):
            continue
        if namespace is None or metadata.get("namespace") in (None, namespace):
            names.add(metadata["name"])
    return names


def import_topic(observed: ObservedTopic, name: str, namespace: str | None, policy: Policy) -> ImportedTopic:
    """The DurableTopic that declares `observed`, raised to `policy`'s floors."""
    current_rf = observed.replication_factor
    current_isr = observed.effective_min_insync_replicas()
    rf = max(current_rf, policy.min_replication_factor)
    min_isr = max(current_isr, policy.min_insync_replicas)
    if min_isr >= rf:
        # min.insync.replicas at or above the replicas stops every acks=all producer when one is down.
        if rf - 1 >= policy.min_insync_replicas:
            min_isr = rf - 1
        else:
            rf = min_isr + 1
    changes: list[Change] = []
    if rf != current_rf:
        changes.append(Change(REPLICATION_FACTOR, str(current_rf), str(rf), "raises"))
    changes += _min_isr_change(observed, current_isr, min_isr)
    changes += _unclean_change(observed)
    config = {
        key: value
        for key, value in sorted(observed.overrides.items())
        if key not in DURABILITY_KEYS and key not in THROTTLE_KEYS
    }
    spec: dict[str, Any] = {
        "topicName": observed.name,
        "partitions": observed.partition_count,
        "replicationFactor": rf,
        "minInSyncReplicas": min_isr,
    }
    if config:
        spec["config"] = config
    spec["deletionPolicy"] = str(DeletionPolicy.RETAIN)
    left_out = tuple(key for key in THROTTLE_KEYS if key in observed.overrides)
    return ImportedTopic(observed.name, name, namespace, spec, tuple(changes), left_out)


def _min_isr_change(observed: ObservedTopic, current: int, wanted: int) -> list[Change]:
    override = observed.overrides.get(MIN_INSYNC_REPLICAS)
    before = str(current) if override is not None else f"{current} (inherited)"
    if wanted > current:
        return [Change(MIN_INSYNC_REPLICAS, before, str(wanted), "raises")]
    if wanted < current:
        return [Change(MIN_INSYNC_REPLICAS, before, str(wanted), "lowers")]
    if override is None:
        return [Change(MIN_INSYNC_REPLICAS, str(current), str(wanted), "writes")]
    return []


def _unclean_change(observed: ObservedTopic) -> list[Change]:
    override = observed.overrides.get(UNCLEAN_LEADER_ELECTION)
    effective = observed.effective.get(UNCLEAN_LEADER_ELECTION, "false")
    if is_enabled(override if override is not None else effective):
        before = "true" if override is not None else "true (inherited)"
        return [Change(UNCLEAN_LEADER_ELECTION, before, "false", "turns off")]
    if override is None:
        return [Change(UNCLEAN_LEADER_ELECTION, effective.strip().lower(), "false", "writes")]
    return []
