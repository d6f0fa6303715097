"""The operator's view of every watched DurableTopic, fed by watch events."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator, KeysView, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from durabletopic.core.model import DurableTopicSpec, ObjectRef, Recorded
from durabletopic.core.ownership import ACCEPT_CLUSTER_ID, ACCEPT_TOPIC_ID, RETAIN_TOPIC, Claim, owner_of
from durabletopic.core.record import recorded
from durabletopic.core.status import COUNTED_CONDITIONS

PAUSED_ANNOTATION = "durabletopic.dev/paused"
# The cluster of an object without spec.clusterRef when no KafkaCluster is the default: the operator's
# own bootstrap servers.
SETTINGS_CLUSTER = ""


@dataclass(frozen=True, slots=True, order=True)
class TopicKey:
    """A Kafka topic: the same name on two clusters is two topics."""

    cluster: str
    topic: str


# Annotations that change what the loop does with an object, although its generation stays.
CONTROL_ANNOTATIONS = (PAUSED_ANNOTATION, ACCEPT_TOPIC_ID, ACCEPT_CLUSTER_ID, RETAIN_TOPIC)


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
    cluster: str = SETTINGS_CLUSTER  # spec.clusterRef.name, or the default cluster
    _spec: DurableTopicSpec | None = field(default=None, repr=False, compare=False)
    # The record read from `status`, with the status dict it was read from (set_status replaces it).
    _record: tuple[dict[str, Any], Recorded] | None = field(default=None, repr=False, compare=False)
    _topic_name: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_body(
        cls, body: Mapping[str, Any], default_cluster: str = SETTINGS_CLUSTER
    ) -> DurableTopicObject:
        meta = body.get("metadata", {})
        spec = body.get("spec") or {}
        ref = spec.get("clusterRef") if isinstance(spec, Mapping) else None
        named = ref.get("name") if isinstance(ref, Mapping) else None
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
            cluster=named if isinstance(named, str) and named else default_cluster,
        )

    @property
    def paused(self) -> bool:
        return self.annotations.get(PAUSED_ANNOTATION, "").lower() == "true"

    @property
    def retain_topic(self) -> bool:
        return self.annotations.get(RETAIN_TOPIC, "").lower() == "true"

    @property
    def accepted_topic_id(self) -> str | None:
        return self.annotations.get(ACCEPT_TOPIC_ID) or None

    @property
    def accepted_cluster_id(self) -> str | None:
        return self.annotations.get(ACCEPT_CLUSTER_ID) or None

    @property
    def record(self) -> Recorded:
        if self._record is None or self._record[0] is not self.status:
            self._record = (self.status, recorded(self.status))
        return self._record[1]

    def control(self) -> tuple[str, ...]:
        return tuple(self.annotations.get(key, "") for key in CONTROL_ANNOTATIONS)

    def true_conditions(self) -> frozenset[str]:
        return frozenset(
            str(c.get("type"))
            for c in self.status.get("conditions") or []
            if c.get("type") in COUNTED_CONDITIONS and c.get("status") == "True"
        )

    def newer_than(self, other: DurableTopicObject) -> bool:
        """This copy was written after `other` (resource versions compared as the numbers they are)."""
        try:
            return int(self.resource_version) > int(other.resource_version)
        except ValueError:
            return False

    @property
    def topic_name(self) -> str:
        if self._topic_name is None:
            name = self.spec_raw.get("topicName")
            self._topic_name = name if isinstance(name, str) and name else self.ref.name
        return self._topic_name

    @property
    def key(self) -> TopicKey:
        return TopicKey(self.cluster, self.topic_name)

    def spec(self) -> DurableTopicSpec:
        """The parsed spec (read once per copy of the object); raises ValueError with the field when the
        API server let a bad one through."""
        if self._spec is not None:
            return self._spec
        try:
            self._spec = DurableTopicSpec.model_validate(self.spec_raw)
            return self._spec
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"spec.{where}: {first['msg']}") from error

    def wants_reconcile_after(self, previous: DurableTopicObject | None) -> bool:
        """A change the controller must act on, as opposed to its own status write coming back."""
        if previous is None:
            return True
        return (
            previous.generation != self.generation
            or previous.deleting != self.deleting
            or previous.control() != self.control()
            or previous.finalizers != self.finalizers
            or previous.uid != self.uid
        )


class Store:
    """Every DurableTopic by its ref, the claims on each topic name, and how many objects have each
    counted condition True (kept as objects come and go, so that 10,000 deletions cost O(N))."""

    def __init__(self) -> None:
        self._objects: dict[ObjectRef, DurableTopicObject] = {}
        self._claims: dict[TopicKey, dict[ObjectRef, Claim]] = {}
        self._true: dict[ObjectRef, frozenset[str]] = {}
        self._counts: Counter[str] = Counter()
        self._touched: dict[ObjectRef, int] = {}
        self._changes = 0
        self._version = 0  # bumped by every change of an object held, its status too

    def __len__(self) -> int:
        return len(self._objects)

    def __iter__(self) -> Iterator[DurableTopicObject]:
        return iter(list(self._objects.values()))

    def get(self, ref: ObjectRef) -> DurableTopicObject | None:
        return self._objects.get(ref)

    def refs(self) -> KeysView[ObjectRef]:
        return self._objects.keys()

    def holds(self, obj: DurableTopicObject) -> bool:
        """`obj` is still the store's copy (not deleted or replaced since a pass took it)."""
        return self._objects.get(obj.ref) is obj

    def upsert(self, obj: DurableTopicObject) -> bool:
        """Stores `obj`; True when the controller should reconcile it. A copy of the same resource version
        as the one held (a listing, a watch that lists again) is the same object: the one held stays,
        so that what was concluded about it still holds."""
        previous = self._objects.get(obj.ref)
        if (
            previous is not None
            and obj.resource_version
            and previous.resource_version == obj.resource_version
            and previous.cluster == obj.cluster
        ):
            return False
        if previous is not None and previous.key != obj.key:
            self._unclaim(previous)
        self._objects[obj.ref] = obj
        self._claims.setdefault(obj.key, {})[obj.ref] = Claim(
            obj.ref.namespace, obj.ref.name, obj.uid, obj.created
        )
        self._count(obj)
        self._changes += 1
        self._version += 1
        self._touched[obj.ref] = self._changes
        return obj.wants_reconcile_after(previous)

    def set_status(self, obj: DurableTopicObject, status: dict[str, Any]) -> None:
        obj.status = status
        self._version += 1
        if self.holds(obj):
            self._count(obj)

    def remove(self, ref: ObjectRef) -> DurableTopicObject | None:
        obj = self._objects.pop(ref, None)
        if obj is not None:
            self._unclaim(obj)
            self._counts.subtract(self._true.pop(ref, frozenset()))
            self._touched.pop(ref, None)
            self._changes += 1
            self._version += 1
        return obj

    @property
    def version(self) -> int:
        """Changes with every object stored, removed or given a status: what was derived from the objects
        held at one version holds while it stays."""
        return self._version

    def mark(self) -> int:
        """A point in the store's history, for `touched_since`."""
        return self._changes

    def touched_since(self, ref: ObjectRef, mark: int) -> bool:
        return self._touched.get(ref, 0) > mark

    def counts(self) -> dict[str, int]:
        """How many objects have each counted condition (Ready, Stalled, Reconciling, Paused) True."""
        return {str(kind): self._counts[str(kind)] for kind in COUNTED_CONDITIONS}

    def _count(self, obj: DurableTopicObject) -> None:
        now = obj.true_conditions()
        before = self._true.get(obj.ref, frozenset())
        if now != before:
            self._counts.subtract(before)
            self._counts.update(now)
            self._true[obj.ref] = now

    def _unclaim(self, obj: DurableTopicObject) -> None:
        claims = self._claims.get(obj.key)
        if claims is not None:
            claims.pop(obj.ref, None)
            if not claims:
                del self._claims[obj.key]

    def owner(self, key: TopicKey, excluded: Collection[ObjectRef] = ()) -> ObjectRef | None:
        """The object that owns the topic: the oldest claim, less the `excluded` (objects that break a
        DurabilityPolicy own nothing)."""
        claims = [c for ref, c in self._claims.get(key, {}).items() if ref not in excluded]
        if not claims:
            return None
        winner = owner_of(claims)
        return ObjectRef(winner.namespace, winner.name)

    def claimants(self, key: TopicKey) -> list[ObjectRef]:
        return sorted(self._claims.get(key, {}), key=str)
