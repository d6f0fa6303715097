"""What a DurableTopic's status records across passes, and what a pass records next. Pure.

Some facts cannot be read back from Kafka without losing the point of having them: which topic
(by id) and which cluster this object manages, which generation of the spec was fully applied, the
replication factor the operator last brought the topic to, and which config keys it set. They live
in the status (`topicId`, `clusterId`, `lastAppliedGeneration`, `appliedReplicationFactor`,
`managedConfigs`) and are written only by the rules below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from durabletopic.core.model import ObservedTopic, Recorded
from durabletopic.core.reasons import ConditionType, Reason


def recorded(status: Mapping[str, Any]) -> Recorded:
    """The record in `status`. A status written before the record existed gives what it can: its
    topic id, and the applied generation inferred from Ready (or Drifted) as that version did."""
    applied = status.get("lastAppliedGeneration")
    if not isinstance(applied, int):
        applied = _inferred_applied_generation(status)
    rf = status.get("appliedReplicationFactor")
    managed = status.get("managedConfigs")
    unmanaged = status.get("unmanagedConfigs")
    return Recorded(
        topic_id=status.get("topicId") or None,
        cluster_id=status.get("clusterId") or None,
        applied_generation=applied,
        applied_replication_factor=rf if isinstance(rf, int) else None,
        managed_configs=frozenset(k for k in managed or () if isinstance(k, str)),
        unmanaged_configs=tuple(k for k in unmanaged or () if isinstance(k, str)),
    )


def _inferred_applied_generation(status: Mapping[str, Any]) -> int | None:
    generation = status.get("observedGeneration")
    applied = any(
        (c.get("type") in (ConditionType.READY, ConditionType.DRIFTED) and c.get("status") == "True")
        or c.get("reason") == Reason.DRIFTED
        for c in status.get("conditions") or []
    )
    return generation if applied and isinstance(generation, int) else None


def pinned_topic_id(
    record: Recorded, observed: ObservedTopic | None, *, created_here: bool, accepted_topic_id: str | None
) -> str | None:
    """The topic id to record: the id of a topic this pass created, or of the topic a person
    accepted; else the recorded one; else, once, the id of the topic this object adopts."""
    if observed is not None and (created_here or accepted_topic_id == observed.topic_id):
        return observed.topic_id
    if record.topic_id:
        return record.topic_id
    return observed.topic_id if observed is not None else None


def pinned_cluster_id(
    record: Recorded, cluster_id: str | None, accepted_cluster_id: str | None
) -> str | None:
    if cluster_id and (not record.cluster_id or accepted_cluster_id == cluster_id):
        return cluster_id
    return record.cluster_id


def managed_after(record: Recorded, spec_keys: frozenset[str], succeeded: bool) -> frozenset[str]:
    """The spec.config keys set on the topic after a pass: the spec's keys once the pass succeeded;
    until then, the recorded ones too, so that a key removed from the spec is still removed later."""
    return spec_keys if succeeded else spec_keys | record.managed_configs


def record_fields(
    *,
    topic_id: str | None,
    cluster_id: str | None,
    applied_generation: int | None,
    applied_replication_factor: int | None,
    managed_configs: frozenset[str],
) -> dict[str, Any]:
    """The record as status fields (a field with nothing to record is left out)."""
    fields: dict[str, Any] = {
        "topicId": topic_id,
        "clusterId": cluster_id,
        "lastAppliedGeneration": applied_generation,
        "appliedReplicationFactor": applied_replication_factor,
        "managedConfigs": sorted(managed_configs),
    }
    return {k: v for k, v in fields.items() if v is not None}
