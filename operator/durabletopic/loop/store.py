"""The operator's view of every watched DurableTopic, fed by watch events."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from durabletopic.core.conditions import condition_reason
from durabletopic.core.model import DurableTopicSpec, ObjectRef
from durabletopic.core.ownership import Claim, owner_of

PAUSED_ANNOTATION = "durabletopic.dev/paused"


@dataclass(slots=True)
class DurableTopicObject:
    ref: ObjectRef
    uid: str
    generation: int
    created: str
    resource_version: str
    spec_raw: dict[str, Any]
    annotations: dict[str, str]
    finalizers: tuple[str, ...]
    deleting: bool
    status: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> DurableTopicObject:
        meta = body.get("metadata", {})
        return cls(
            ref=ObjectRef(meta.get("namespace", ""), meta["name"]),
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 0),
            created=meta.get("creationTimestamp") or "",
            resource_version=meta.get("resourceVersion") or "",
            spec_raw=dict(body.get("spec") or {}),
            annotations=dict(meta.get("annotations") or {}),
            finalizers=tuple(meta.get("finalizers") or ()),
            deleting=bool(meta.get("deletionTimestamp")),
            status=dict(body.get("status") or {}),
        )

    @property
    def paused(self) -> bool:
        return self.annotations.get(PAUSED_ANNOTATION, "").lower() == "true"

    @property
    def topic_name(self) -> str:
        name = self.spec_raw.get("topicName")
        return name if isinstance(name, str) and name else self.ref.name

    def spec(self) -> DurableTopicSpec:
        """The parsed spec; raises ValueError with the field when the API server let a bad one through."""
        try:
            return DurableTopicSpec.model_validate(self.spec_raw)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"spec.{where}: {first['msg']}") from error

    def status_reason(self, kind: str) -> str | None:
        """The reason of the condition `kind` when it is True."""
        return condition_reason(self.status.get("conditions") or [], kind)

    def wants_reconcile_after(self, previous: DurableTopicObject | None) -> bool:
        """A change the controller must act on, as opposed to its own status write coming back."""
        if previous is None:
            return True
        return (
            previous.generation != self.generation
            or previous.deleting != self.deleting
            or previous.paused != self.paused
            or previous.finalizers != self.finalizers
            or previous.uid != self.uid
        )


class Store:
    def __init__(self) -> None:
        self._objects: dict[ObjectRef, DurableTopicObject] = {}
        self._claims: dict[str, dict[ObjectRef, Claim]] = {}

    def __len__(self) -> int:
        return len(self._objects)

    def __iter__(self) -> Iterator[DurableTopicObject]:
        return iter(list(self._objects.values()))

    def get(self, ref: ObjectRef) -> DurableTopicObject | None:
        return self._objects.get(ref)

    def upsert(self, obj: DurableTopicObject) -> bool:
        """Stores `obj`; True when the controller should reconcile it."""
        previous = self._objects.get(obj.ref)
        if previous is not None and previous.topic_name != obj.topic_name:
            self._unclaim(previous)
        self._objects[obj.ref] = obj
        self._claims.setdefault(obj.topic_name, {})[obj.ref] = Claim(
            obj.ref.namespace, obj.ref.name, obj.uid, obj.created
        )
        return obj.wants_reconcile_after(previous)

    def remove(self, ref: ObjectRef) -> DurableTopicObject | None:
        obj = self._objects.pop(ref, None)
        if obj is not None:
            self._unclaim(obj)
        return obj

    def _unclaim(self, obj: DurableTopicObject) -> None:
        claims = self._claims.get(obj.topic_name)
        if claims is not None:
            claims.pop(obj.ref, None)
            if not claims:
                del self._claims[obj.topic_name]

    def owner(self, topic_name: str) -> ObjectRef | None:
        claims = self._claims.get(topic_name)
        if not claims:
            return None
        winner = owner_of(list(claims.values()))
        return ObjectRef(winner.namespace, winner.name)

    def claimants(self, topic_name: str) -> list[ObjectRef]:
        return sorted(self._claims.get(topic_name, {}), key=str)
