"""The reconcile loop: DurableTopics in, batched Kafka calls out, status back.

Watch events only mark objects as due. One loop takes every due object at once (up to a batch
size), reads their topics from Kafka in one batched call, asks the planner what to do, carries
out the actions in one batched call per kind, reads the changed topics back, and writes status
where it changed. A periodic sweep marks every object due, so drift and replica health are
checked by the same path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from durabletopic import clientprofile, crd
from durabletopic.drift import drifted_condition, judge_drift
from durabletopic.health import replica_health
from durabletopic.k8s.api import ApiError, ApiPort
from durabletopic.k8s.store import DurableTopicObject, Store
from durabletopic.kafka.admin import KafkaUnavailable, NewTopicRequest, TopicError
from durabletopic.metrics import Metrics
from durabletopic.model import ClusterInfo, DeletionPolicy, DurableTopicSpec, ObjectRef, ObservedTopic, Policy
from durabletopic.plan import (
    THROTTLE_ALL_REPLICAS,
    THROTTLE_KEYS,
    AddPartitions,
    AlterConfigs,
    CreateTopic,
    Reason,
    Reassign,
    TopicPlan,
    plan_deletion,
    plan_topic,
)
from durabletopic.status import (
    DRIFTED,
    PAUSED,
    READY,
    REPLICAS_HEALTHY,
    Condition,
    conditions_for_error,
    conditions_for_plan,
    merge_conditions,
    observed_fields,
    replicas_change,
    without_volatile,
)
from durabletopic.workqueue import WorkQueue

log = logging.getLogger(__name__)

FINALIZER = "durabletopic.dev/delete-topic"
CLIENT_PROFILE_SUFFIX = "-client-profile"
APPLY_PATCH = "application/apply-patch+yaml"
PROFILE_WRITERS = 4
RETRY_BASE_SECONDS = 0.5
RETRY_CAP_SECONDS = 4.0
SETTLE_DELAY_SECONDS = 0.5
DEFERRED_WRITES = 3
BROKER_THROTTLE_KEYS = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")
STALLED_REASONS_FROM_KAFKA = {
    "INVALID_REPLICATION_FACTOR": Reason.INSUFFICIENT_BROKERS,
    "INVALID_REPLICA_ASSIGNMENT": Reason.INSUFFICIENT_BROKERS,
}


class KafkaPort(Protocol):
    async def describe_cluster(self) -> ClusterInfo: ...
    async def describe_topics(self, names: Any) -> dict[str, ObservedTopic | None]: ...
    async def create_topics(self, topics: Any) -> dict[str, TopicError | None]: ...
    async def create_partitions(self, requests: Any) -> dict[str, TopicError | None]: ...
    async def alter_configs(self, requests: Any) -> dict[str, TopicError | None]: ...
    async def delete_topics(self, names: Any) -> dict[str, TopicError | None]: ...
    async def alter_broker_configs(self, changes: Any) -> dict[int, TopicError | None]: ...


class ReassignPort(Protocol):
    async def ongoing(self) -> Mapping[str, Mapping[int, Any]]: ...
    async def reassign(self, assignments: Any) -> dict[str, str | None]: ...


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Outcome:
    """What one pass concluded for one object, before it is written."""

    conditions: list[Condition]
    observed: ObservedTopic | None = None
    plan: TopicPlan | None = None
    requeue_after: float | None = None
    replicas_change: dict[str, Any] | None = None
    drift: list[dict[str, str]] | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    reconciled: bool = True
    defer_write: bool = False


class Controller:
    def __init__(
        self,
        *,
        store: Store,
        kafka: KafkaPort,
        api: ApiPort,
        metrics: Metrics,
        policy: Policy,
        batch_size: int = 1000,
        sweep_interval: float = 10.0,
        reporting_instance: str = "durabletopic",
        now: Callable[[], str] = utc_now,
        reassigner: ReassignPort | None = None,
        throttle_bytes_per_second: int = 50 * 1024 * 1024,
    ) -> None:
        self.reassigner = reassigner
        self.throttle_bytes_per_second = throttle_bytes_per_second
        self.store = store
        self.kafka = kafka
        self.api = api
        self.metrics = metrics
        self.policy = policy
        self.batch_size = batch_size
        self.sweep_interval = sweep_interval
        self.reporting_instance = reporting_instance
        self.now = now
        self.queue: WorkQueue[ObjectRef] = WorkQueue()
        self._failures: dict[ObjectRef, int] = defaultdict(int)
        self._drained = asyncio.Event()
        self._profiles: dict[ObjectRef, tuple[str, str]] = {}
        self._profiles_due: set[ObjectRef] = set()
        self._profiles_wanted = asyncio.Event()

    # ----- events in -----

    def observe_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Called for every watch event of a DurableTopic."""
        if event_type == "DELETED":
            meta = body.get("metadata", {})
            ref = ObjectRef(meta.get("namespace", ""), meta.get("name", ""))
            removed = self.store.remove(ref)
            self.queue.discard(ref)
            self._failures.pop(ref, None)
            self._profiles.pop(ref, None)
            self._profiles_due.discard(ref)
            self.metrics.forget(ref)
            if removed is not None:
                for other in self.store.claimants(removed.topic_name):
                    self.queue.add(other)
            self._count_resources()
            return
        obj = DurableTopicObject.from_body(body)
        previous = self.store.get(obj.ref)
        if self.store.upsert(obj):
            self.queue.add(obj.ref)
            if previous is None:
                for other in self.store.claimants(obj.topic_name):
                    self.queue.add(other)

    def enqueue_all(self) -> None:
        for obj in self.store:
            self.queue.add(obj.ref)

    # ----- loops -----

    async def run(self) -> None:
        while True:
            refs = await self.queue.take(self.batch_size, linger=0.02)
            started = time.monotonic()
            try:
                await self.reconcile(refs)
                self.metrics.reconcile_total.labels(result="ok").inc(len(refs))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconcile pass failed; the objects are retried")
                self.metrics.reconcile_total.labels(result="error").inc(len(refs))
                for ref in refs:
                    self._retry(ref)
            finally:
                self.metrics.reconcile_duration.observe(time.monotonic() - started)
                if not self.queue.due_count():
                    self._drained.set()

    async def sweep(self) -> None:
        """Marks every managed object due, every sweep interval, and times how long the check takes."""
        while True:
            await asyncio.sleep(self.sweep_interval)
            started = time.monotonic()
            self._drained.clear()
            for obj in self.store:
                if not obj.paused:
                    self.queue.add(obj.ref)
            try:
                await asyncio.wait_for(self._drained.wait(), self.sweep_interval * 3)
                self.metrics.sweep_duration.observe(time.monotonic() - started)
            except TimeoutError:
                log.warning("sweep not finished within %.0f s", self.sweep_interval * 3)

    # ----- one pass -----

    async def reconcile(self, refs: list[ObjectRef]) -> None:
        objects = [obj for ref in refs if (obj := self.store.get(ref)) is not None]
        outcomes: dict[ObjectRef, Outcome] = {}
        work: list[tuple[DurableTopicObject, DurableTopicSpec]] = []
        deleting: list[tuple[DurableTopicObject, DurableTopicSpec]] = []
        for obj in objects:
            try:
                spec = obj.spec()
            except ValueError as error:
                outcomes[obj.ref] = Outcome(
                    conditions_for_error(Reason.INVALID_CONFIG, str(error), retrying=False)
                )
                if obj.deleting:
                    await self._set_finalizer(obj, False)
                continue
            if obj.deleting:
                deleting.append((obj, spec))
            elif obj.paused:
                outcomes[obj.ref] = Outcome(self._paused_conditions(obj), reconciled=False)
            elif self.store.owner(obj.topic_name) != obj.ref:
                owner = self.store.owner(obj.topic_name)
                message = (
                    f"Kafka topic {obj.topic_name} is already managed by DurableTopic {owner}, which is older: "
                    "this object changes nothing; delete it or give it another spec.topicName."
                )
                outcomes[obj.ref] = Outcome(
                    conditions_for_error(Reason.TOPIC_CONFLICT, message, retrying=False)
                )
            else:
                work.append((obj, spec))

        await asyncio.gather(
            *(self._set_finalizer(o, s.deletion_policy is DeletionPolicy.DELETE) for o, s in work)
        )

        names = {obj.topic_name for obj, _ in work} | {obj.topic_name for obj, _ in deleting}
        try:
            observed = await self.kafka.describe_topics(sorted(names)) if names else {}
            cluster = await self.kafka.describe_cluster() if _needs_cluster(work, observed) else None
            if deleting:
                await self._delete(deleting, observed)
            if work:
                outcomes.update(await self._apply(work, observed, cluster or ClusterInfo(())))
        except KafkaUnavailable as error:
            message = f"Kafka cannot be reached ({error}); retrying."
            for obj, _ in deleting:
                self._retry(obj.ref)
            for obj, _ in work:
                outcomes[obj.ref] = Outcome(
                    conditions_for_error(Reason.KAFKA_UNAVAILABLE, message, retrying=True),
                    requeue_after=self._backoff(obj.ref),
                )
        await self._finish([o for o in objects if not o.deleting], outcomes)

    async def _apply(
        self,
        work: list[tuple[DurableTopicObject, DurableTopicSpec]],
        observed: dict[str, ObservedTopic | None],
        cluster: ClusterInfo,
    ) -> dict[ObjectRef, Outcome]:
        moves = await self._ongoing_moves(work, observed)
        plans: dict[ObjectRef, TopicPlan] = {}
        for obj, spec in work:
            plans[obj.ref] = plan_topic(
                spec,
                obj.topic_name,
                observed.get(obj.topic_name),
                cluster,
                self.policy,
                spec_already_applied=_spec_already_applied(obj),
                reassigning=moves is not None and obj.topic_name in moves,
            )
        actions = [a for p in plans.values() for a in p.actions]
        errors = await self._execute(actions)
        reassigned = {a.name: a for a in actions if isinstance(a, Reassign)}
        reassign_errors = await self._reassign(list(reassigned.values()), cluster)

        acted = sorted({obj.topic_name for obj, _ in work if plans[obj.ref].actions})
        after = dict(observed)
        if acted:
            after.update(await self.kafka.describe_topics(acted))

        outcomes: dict[ObjectRef, Outcome] = {}
        finished_moves = False
        for obj, spec in work:
            first = plans[obj.ref]
            topic = obj.topic_name
            now_observed = after.get(topic)
            moving = topic in reassigned and reassign_errors.get(topic) is None
            final = (
                plan_topic(
                    spec,
                    topic,
                    now_observed,
                    cluster,
                    self.policy,
                    spec_already_applied=True,
                    reassigning=moving or first.moving,
                )
                if first.actions
                else first
            )
            outcome = self._outcome(obj, first, final, now_observed, errors.get(topic))
            if moves is not None or topic in reassigned:
                previous = obj.status.get("replicasChange")
                change = replicas_change(
                    previous,
                    spec.replication_factor,
                    now_observed,
                    (moves or {}).get(topic),
                    len(reassigned[topic].assignment) if moving else None,
                    reassign_errors.get(topic),
                )
                outcome.replicas_change = change
                if change and change["state"] == "Done" and (previous or {}).get("state") != "Done":
                    finished_moves = True
                if final.moving or moving:
                    outcome.requeue_after = 1.0
            outcomes[obj.ref] = outcome
        if finished_moves and not any(t not in reassigned for t in (moves or {})):
            await self._set_broker_throttle(cluster, None)
        return outcomes

    async def _ongoing_moves(
        self,
        work: list[tuple[DurableTopicObject, DurableTopicSpec]],
        observed: Mapping[str, ObservedTopic | None],
    ) -> dict[str, Any] | None:
        """Kafka's running reassignments, read only when some topic's replication factor is in question."""
        if self.reassigner is None:
            return None
        for obj, spec in work:
            topic = observed.get(obj.topic_name)
            change = obj.status.get("replicasChange") or {}
            if topic is not None and (
                {len(p.replicas) for p in topic.partitions} != {spec.replication_factor}
                or change.get("state") in ("Pending", "Ongoing")
            ):
                return dict(await self.reassigner.ongoing())
        return None

    async def _reassign(self, moves: list[Reassign], cluster: ClusterInfo) -> dict[str, str | None]:
        if not moves or self.reassigner is None:
            return {}
        throttle = {m.name: dict.fromkeys(THROTTLE_KEYS, THROTTLE_ALL_REPLICAS) for m in moves}
        throttle_errors = await self.kafka.alter_configs(throttle)
        await self._set_broker_throttle(cluster, str(self.throttle_bytes_per_second))
        results = await self.reassigner.reassign({m.name: m.assignment for m in moves})
        for name, error in throttle_errors.items():
            if error is not None:
                log.warning("replication throttle not set on %s: %s", name, error)
        return results

    async def _set_broker_throttle(self, cluster: ClusterInfo, rate: str | None) -> None:
        if not cluster.brokers:
            cluster = await self.kafka.describe_cluster()
        changes = {b.node_id: dict.fromkeys(BROKER_THROTTLE_KEYS, rate) for b in cluster.brokers}
        for broker, error in (await self.kafka.alter_broker_configs(changes)).items():
            if error is not None:
                log.warning("replication throttle rate not changed on broker %s: %s", broker, error)

    def _outcome(
        self,
        obj: DurableTopicObject,
        first: TopicPlan,
        final: TopicPlan,
        observed: ObservedTopic | None,
        error: TopicError | None,
    ) -> Outcome:
        topic = obj.topic_name
        if error is not None and error.code != "TOPIC_ALREADY_EXISTS":
            reason = STALLED_REASONS_FROM_KAFKA.get(error.code, Reason.INVALID_CONFIG)
            message = f"Kafka refused the change to topic {topic}: {error.code}: {error.message}"
            if error.retriable:
                return Outcome(
                    conditions_for_error(Reason.UPDATING, message, retrying=True),
                    observed,
                    final,
                    self._backoff(obj.ref),
                )
            repeated = obj.status_reason("Stalled") == str(reason)
            return Outcome(
                conditions_for_error(reason, message, retrying=False),
                observed,
                final,
                events=[] if repeated else [("Warning", str(reason), message)],
            )

        outcome = Outcome(conditions_for_plan(final, topic), observed, final)
        if final.actions or (error is not None):
            created_unseen = observed is None and any(isinstance(a, CreateTopic) for a in first.actions)
            # A topic just created is often not yet in every broker's metadata: the next pass, a
            # moment later, writes Ready, instead of this one writing Creating first.
            outcome.defer_write = created_unseen and self._failures.get(obj.ref, 0) < DEFERRED_WRITES
            outcome.requeue_after = self._backoff(obj.ref, base=SETTLE_DELAY_SECONDS)
        else:
            self._failures.pop(obj.ref, None)

        if _spec_already_applied(obj) and first.differences:
            verdict = judge_drift(topic, first, final, obj.status.get("drift") or [], self.now())
            for difference in verdict.counted:
                self.metrics.drift_detected.labels(
                    obj.ref.namespace,
                    obj.ref.name,
                    topic,
                    difference.key,
                    str(difference.severity),
                    verdict.action,
                ).inc()
            outcome.events.extend(verdict.events)
            outcome.drift = verdict.entries
        if final.refusals and obj.status_reason("Stalled") != str(final.refusals[0].reason):
            refusal = final.refusals[0]
            outcome.events.append(("Warning", str(refusal.reason), refusal.message))
        return outcome

    async def _execute(self, actions: list[Any]) -> dict[str, TopicError | None]:
        creates = [
            NewTopicRequest(a.name, a.partitions, a.replication_factor, a.configs)
            for a in actions
            if isinstance(a, CreateTopic)
        ]
        partitions = {a.name: a.total for a in actions if isinstance(a, AddPartitions)}
        alters: dict[str, Mapping[str, str | None]] = {
            a.name: a.configs for a in actions if isinstance(a, AlterConfigs)
        }
        calls: list[Awaitable[dict[str, TopicError | None]]] = []
        if creates:
            calls.append(self.kafka.create_topics(creates))
        if partitions:
            calls.append(self.kafka.create_partitions(partitions))
        if alters:
            calls.append(self.kafka.alter_configs(alters))
        errors: dict[str, TopicError | None] = {}
        for result in await asyncio.gather(*calls):
            for name, error in result.items():
                if error is not None:
                    errors[name] = error
        return errors

    async def _delete(
        self,
        deleting: list[tuple[DurableTopicObject, DurableTopicSpec]],
        observed: Mapping[str, ObservedTopic | None],
    ) -> None:
        to_delete: dict[str, DurableTopicObject] = {}
        kept: list[DurableTopicObject] = []
        for obj, spec in deleting:
            owner = self.store.owner(obj.topic_name) == obj.ref
            action, why = plan_deletion(
                spec, observed.get(obj.topic_name), obj.status.get("topicId"), owner=owner
            )
            if action is None:
                if spec.deletion_policy is DeletionPolicy.DELETE:
                    await self._event(
                        obj, "Normal", "TopicRetained", f"Kafka topic {obj.topic_name} kept: {why}."
                    )
                kept.append(obj)
            else:
                to_delete[action.name] = obj
        for obj in kept:
            await self._set_finalizer(obj, False)
        if not to_delete:
            return
        results = await self.kafka.delete_topics(sorted(to_delete))
        for name, obj in to_delete.items():
            error = results.get(name)
            if error is None or error.code == "UNKNOWN_TOPIC_OR_PART":
                await self._event(
                    obj, "Normal", "TopicDeleted", f"Kafka topic {name} deleted: deletionPolicy is Delete."
                )
                await self._set_finalizer(obj, False)
            else:
                await self._event(
                    obj, "Warning", "DeleteFailed", f"Kafka refused to delete {name}: {error.message}"
                )
                self._retry(obj.ref)

    # ----- writing back -----

    async def _finish(self, objects: list[DurableTopicObject], outcomes: Mapping[ObjectRef, Outcome]) -> None:
        sends = []
        finished = []
        for obj in objects:
            outcome = outcomes.get(obj.ref)
            if outcome is None:
                continue
            finished.append(obj)
            if outcome.requeue_after is not None:
                self.queue.add(obj.ref, outcome.requeue_after)
            sends += [self._event(obj, kind, reason, message) for kind, reason, message in outcome.events]
            if outcome.defer_write:
                continue
            status = self._next_status(obj, outcome)
            if status is not None:
                sends.append(self._send_status(obj, status))
        await asyncio.gather(*sends)
        self._apply_client_profiles(finished)
        self._count_resources()

    def _next_status(self, obj: DurableTopicObject, outcome: Outcome) -> dict[str, Any] | None:
        """The object's new status, or None when nothing but timestamps would change."""
        now = self.now()
        conditions = list(outcome.conditions)
        status: dict[str, Any] = dict(obj.status)
        generation = obj.generation if outcome.reconciled else int(obj.status.get("observedGeneration") or 0)
        status["observedGeneration"] = generation
        if outcome.plan is not None:
            status.update(observed_fields(obj.topic_name, outcome.observed, outcome.plan.unmanaged_configs))
        else:
            status.setdefault("topicName", obj.topic_name)
        if outcome.observed is not None:
            health = replica_health(outcome.observed)
            status["health"] = health.as_status()
            conditions.append(
                Condition(REPLICAS_HEALTHY, health.healthy, health.reason, health.message(obj.topic_name))
            )
            self.metrics.set_health(
                obj.ref,
                obj.topic_name,
                health.under_replicated,
                health.under_min_isr,
                health.at_min_isr,
                health.offline,
            )
        elif outcome.plan is not None:
            status.pop("health", None)
        if outcome.replicas_change is not None:
            status["replicasChange"] = outcome.replicas_change
        if outcome.drift is not None:
            status["drift"] = outcome.drift
            conditions.append(drifted_condition(outcome.drift))
        elif (kept_drift := _kept_condition(obj, DRIFTED)) is not None:
            conditions.append(kept_drift)
        if outcome.drift is not None or outcome.plan is not None:
            self.metrics.set_drift(
                obj.ref,
                obj.topic_name,
                [(d["key"], d["severity"]) for d in (outcome.drift or []) if d.get("action") == "reported"],
            )
        if not any(c.type == REPLICAS_HEALTHY for c in conditions) and outcome.plan is None:
            kept = _kept_condition(obj, REPLICAS_HEALTHY)
            if kept is not None:
                conditions.append(kept)
        status["conditions"] = merge_conditions(
            conditions, obj.status.get("conditions") or [], generation, now
        )
        if without_volatile(status) == without_volatile(obj.status):
            return None
        status["lastReconcileTime"] = now
        return status

    async def _send_status(self, obj: DurableTopicObject, status: dict[str, Any]) -> None:
        patch: dict[str, Any] = {key: status.get(key) for key in set(status) | set(obj.status)}
        path = f"/apis/{crd.GROUP}/{crd.VERSION}/namespaces/{obj.ref.namespace}/{crd.PLURAL}/{obj.ref.name}/status"
        try:
            await self.api.merge_patch(path, {"status": patch})
            obj.status = status
        except ApiError as error:
            if error.status != 404:
                log.warning("status of %s not written: %s", obj.ref, error)
                self._retry(obj.ref)

    def _apply_client_profiles(self, objects: list[DurableTopicObject]) -> None:
        """Client profiles wait for a quiet moment: they never delay a topic's Ready."""
        for obj in objects:
            if self._profiles.get(obj.ref) != (obj.uid, obj.topic_name):
                self._profiles_due.add(obj.ref)
        if self._profiles_due:
            self._profiles_wanted.set()

    async def write_client_profiles(self) -> None:
        """Applies due client profiles while no reconcile work is due, a few at a time."""
        limit = asyncio.Semaphore(PROFILE_WRITERS)

        async def one(ref: ObjectRef) -> None:
            async with limit:
                obj = self.store.get(ref)
                if obj is not None:
                    await self._ensure_client_profile(obj)

        while True:
            await self._profiles_wanted.wait()
            self._profiles_wanted.clear()
            while self._profiles_due:
                if self.queue.due_count():
                    await asyncio.sleep(0.2)
                    continue
                batch = [
                    self._profiles_due.pop() for _ in range(min(len(self._profiles_due), 4 * PROFILE_WRITERS))
                ]
                await asyncio.gather(*(one(ref) for ref in batch))

    async def _ensure_client_profile(self, obj: DurableTopicObject) -> None:
        """The ConfigMap `<name>-client-profile`, owned by the DurableTopic: applied once per object and topic."""
        if obj.deleting or obj.paused or self._profiles.get(obj.ref) == (obj.uid, obj.topic_name):
            return
        if self.store.owner(obj.topic_name) != obj.ref:
            return
        name = f"{obj.ref.name}{CLIENT_PROFILE_SUFFIX}"
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": obj.ref.namespace,
                "labels": {
                    "app.kubernetes.io/managed-by": "durable-topic-operator",
                    "durabletopic.dev/topic-object": obj.ref.name,
                },
                "ownerReferences": [
                    {
                        "apiVersion": crd.API_VERSION,
                        "kind": crd.KIND,
                        "name": obj.ref.name,
                        "uid": obj.uid,
                        "controller": True,
                    }
                ],
            },
            "data": clientprofile.configmap_data(obj.topic_name),
        }
        path = (
            f"/api/v1/namespaces/{obj.ref.namespace}/configmaps/{name}?fieldManager=durabletopic&force=true"
        )
        try:
            await self.api.request("PATCH", path, body, content_type=APPLY_PATCH)
            self._profiles[obj.ref] = (obj.uid, obj.topic_name)
        except ApiError as error:
            log.info("client profile %s/%s not applied: %s", obj.ref.namespace, name, error)
            if 400 <= error.status < 500 and error.status != 429:
                # A namespace being deleted, or a profile someone else owns: no retry on every sweep.
                self._profiles[obj.ref] = (obj.uid, obj.topic_name)

    async def _set_finalizer(self, obj: DurableTopicObject, wanted: bool) -> None:
        if (FINALIZER in obj.finalizers) == wanted:
            return
        finalizers = [f for f in obj.finalizers if f != FINALIZER] + ([FINALIZER] if wanted else [])
        path = f"/apis/{crd.GROUP}/{crd.VERSION}/namespaces/{obj.ref.namespace}/{crd.PLURAL}/{obj.ref.name}"
        try:
            await self.api.merge_patch(
                path, {"metadata": {"finalizers": finalizers, "resourceVersion": obj.resource_version}}
            )
            obj.finalizers = tuple(finalizers)
        except ApiError as error:
            if error.status != 404:
                log.info("finalizers of %s not updated (%s); retrying", obj.ref, error)
                self._retry(obj.ref)

    async def _event(self, obj: DurableTopicObject, kind: str, reason: str, message: str) -> None:
        now = self.now()
        body = {
            "metadata": {"generateName": f"{obj.ref.name}.", "namespace": obj.ref.namespace},
            "involvedObject": obj.involved_object(),
            "type": kind,
            "reason": reason,
            "message": message[:1024],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": "durable-topic-operator"},
            "reportingComponent": "durabletopic.dev/operator",
            "reportingInstance": self.reporting_instance,
        }
        try:
            await self.api.request("POST", f"/api/v1/namespaces/{obj.ref.namespace}/events", body)
        except ApiError as error:
            log.info("event %s on %s not posted: %s", reason, obj.ref, error)
        log.log(logging.WARNING if kind == "Warning" else logging.INFO, "%s %s: %s", obj.ref, reason, message)

    # ----- helpers -----

    def _paused_conditions(self, obj: DurableTopicObject) -> list[Condition]:
        kept = [
            c
            for t in (READY, "Reconciling", "Stalled", REPLICAS_HEALTHY, DRIFTED)
            if (c := _kept_condition(obj, t))
        ]
        message = "The durabletopic.dev/paused annotation is true: the operator makes no Kafka calls for this object."
        return [*kept, Condition(PAUSED, True, Reason.PAUSED, message)]

    def _backoff(self, ref: ObjectRef, base: float = RETRY_BASE_SECONDS) -> float:
        attempt = self._failures[ref]
        self._failures[ref] = attempt + 1
        return float(min(base * (2**attempt), RETRY_CAP_SECONDS))

    def _retry(self, ref: ObjectRef) -> None:
        self.queue.add(ref, self._backoff(ref))

    def _count_resources(self) -> None:
        counts = dict.fromkeys(("Ready", "Stalled", "Reconciling", "Paused"), 0)
        for obj in self.store:
            for condition in obj.status.get("conditions") or []:
                if condition.get("type") in counts and condition.get("status") == "True":
                    counts[condition["type"]] += 1
        for condition, count in counts.items():
            self.metrics.resources.labels(condition=condition).set(count)


def _needs_cluster(
    work: list[tuple[DurableTopicObject, DurableTopicSpec]], observed: Mapping[str, ObservedTopic | None]
) -> bool:
    """Brokers and racks matter only to create a topic or to change its replication factor."""
    for obj, spec in work:
        topic = observed.get(obj.topic_name)
        if topic is None or {len(p.replicas) for p in topic.partitions} != {spec.replication_factor}:
            return True
    return False


def _spec_already_applied(obj: DurableTopicObject) -> bool:
    """This generation was reconciled before: a difference now is drift, not a spec change."""
    if obj.status.get("observedGeneration") != obj.generation:
        return False
    return any(
        (c.get("type") in (READY, DRIFTED) and c.get("status") == "True") or c.get("reason") == "Drifted"
        for c in obj.status.get("conditions") or []
    )


def _kept_condition(obj: DurableTopicObject, kind: str) -> Condition | None:
    for condition in obj.status.get("conditions") or []:
        if condition.get("type") == kind:
            return Condition(
                kind,
                condition.get("status") == "True",
                condition.get("reason", ""),
                condition.get("message", ""),
            )
    return None
