"""The reconcile loop: DurableTopics in, batched Kafka calls out, status back.

Watch events only mark objects as due. One loop takes every due object at once (up to a batch
size) and runs one pass over them: read their topics from Kafka in one batched call, plan each one
(the core), act with one batched call per kind of action, read the changed topics back and plan
again (confirm), and write status where it changed. A periodic sweep marks every object due, so
drift and replica health are checked by the same path. Every decision is the core's; this module
only sequences the calls through the ports.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from durabletopic.core import outcome as outcomes
from durabletopic.core.configs import BROKER_THROTTLE_KEYS, THROTTLE_ALL_REPLICAS, THROTTLE_KEYS
from durabletopic.core.drift import reported_keys
from durabletopic.core.health import replica_health
from durabletopic.core.model import (
    ClusterInfo,
    DeletionPolicy,
    DurableTopicSpec,
    ObjectRef,
    ObservedTopic,
    PartitionMove,
    Policy,
    TopicError,
)
from durabletopic.core.outcome import Outcome
from durabletopic.core.ownership import (
    delete_failed_event,
    deleted,
    deleted_event,
    plan_deletion,
    retained_event,
)
from durabletopic.core.plan import (
    AddPartitions,
    AlterConfigs,
    CreateTopic,
    Reassign,
    TopicPlan,
    broker_throttle_removable,
    needs_cluster,
    plan_topic,
    replication_in_question,
)
from durabletopic.core.status import next_status, replicas_change, resource_counts
from durabletopic.loop.ports import ApiError, KafkaPort, KafkaUnavailable, KubePort, MetricsPort, ReassignPort
from durabletopic.loop.profiles import ClientProfiles
from durabletopic.loop.retry import POLL_SECONDS, Retries
from durabletopic.loop.store import DurableTopicObject, Store
from durabletopic.loop.workqueue import WorkQueue

log = logging.getLogger(__name__)

FINALIZER = "durabletopic.dev/delete-topic"
BATCH_LINGER_SECONDS = 0.02

Work = list[tuple[DurableTopicObject, DurableTopicSpec]]


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Controller:
    def __init__(
        self,
        *,
        store: Store,
        kafka: KafkaPort,
        kube: KubePort,
        metrics: MetricsPort,
        policy: Policy,
        batch_size: int = 1000,
        sweep_interval: float = 10.0,
        now: Callable[[], str] = utc_now,
        reassigner: ReassignPort | None = None,
        throttle_bytes_per_second: int = 50 * 1024 * 1024,
    ) -> None:
        self.store = store
        self.kafka = kafka
        self.kube = kube
        self.metrics = metrics
        self.policy = policy
        self.batch_size = batch_size
        self.sweep_interval = sweep_interval
        self.now = now
        self.reassigner = reassigner
        self.throttle_bytes_per_second = throttle_bytes_per_second
        self.queue: WorkQueue[ObjectRef] = WorkQueue()
        self.retries = Retries()
        self.profiles = ClientProfiles(store, kube, self.queue)
        self._drained = asyncio.Event()

    # ----- events in -----

    def observe_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Called for every watch event of a DurableTopic."""
        if event_type == "DELETED":
            meta = body.get("metadata", {})
            ref = ObjectRef(meta.get("namespace", ""), meta.get("name", ""))
            removed = self.store.remove(ref)
            self.queue.discard(ref)
            self.retries.settle(ref)
            self.profiles.forget(ref)
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
            refs = await self.queue.take(self.batch_size, linger=BATCH_LINGER_SECONDS)
            started = time.monotonic()
            result = "ok"
            try:
                await self.reconcile(refs)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconcile pass failed; the objects are retried")
                result = "error"
                for ref in refs:
                    self._retry(ref)
            finally:
                self.metrics.record_pass(result, len(refs), time.monotonic() - started)
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
                self.metrics.record_sweep(time.monotonic() - started)
            except TimeoutError:
                log.warning("sweep not finished within %.0f s", self.sweep_interval * 3)

    # ----- one pass -----

    async def reconcile(self, refs: list[ObjectRef]) -> None:
        objects = [obj for ref in refs if (obj := self.store.get(ref)) is not None]
        results: dict[ObjectRef, Outcome] = {}
        work: Work = []
        deleting: Work = []
        for obj in objects:
            try:
                spec = obj.spec()
            except ValueError as error:
                results[obj.ref] = outcomes.invalid_spec(str(error))
                if obj.deleting:
                    await self._set_finalizer(obj, False)
                continue
            owner = self.store.owner(obj.topic_name)
            if obj.deleting:
                deleting.append((obj, spec))
            elif obj.paused:
                results[obj.ref] = outcomes.paused(obj.status)
            elif owner != obj.ref:
                results[obj.ref] = outcomes.conflict(obj.topic_name, str(owner))
            else:
                work.append((obj, spec))

        await asyncio.gather(
            *(self._set_finalizer(o, s.deletion_policy is DeletionPolicy.DELETE) for o, s in work)
        )

        names = {obj.topic_name for obj, _ in work} | {obj.topic_name for obj, _ in deleting}
        try:
            observed = await self.kafka.describe_topics(sorted(names)) if names else {}
            wanted = any(needs_cluster(spec, observed.get(obj.topic_name)) for obj, spec in work)
            cluster = await self.kafka.describe_cluster() if wanted else None
            if deleting:
                await self._delete(deleting, observed)
            if work:
                results.update(await self._apply(work, observed, cluster or ClusterInfo(())))
        except KafkaUnavailable as error:
            for obj, _ in deleting:
                self._retry(obj.ref)
            for obj, _ in work:
                results[obj.ref] = outcomes.kafka_unavailable(str(error))
        await self._finish([o for o in objects if not o.deleting], results)

    async def _apply(
        self, work: Work, observed: dict[str, ObservedTopic | None], cluster: ClusterInfo
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
                spec_already_applied=outcomes.spec_already_applied(obj.status, obj.generation),
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

        results: dict[ObjectRef, Outcome] = {}
        move_finished = False
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
            result = outcomes.after_pass(
                topic,
                obj.status,
                obj.generation,
                self.retries.attempts(obj.ref),
                first,
                final,
                now_observed,
                errors.get(topic),
                self.now(),
            )
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
                result.replicas_change = change
                if change and change["state"] == "Done" and (previous or {}).get("state") != "Done":
                    move_finished = True
                result.poll = final.moving or moving
            results[obj.ref] = result
        if broker_throttle_removable(move_finished, list(moves or {}), list(reassigned)):
            await self._set_broker_throttle(cluster, None)
        return results

    async def _ongoing_moves(
        self, work: Work, observed: Mapping[str, ObservedTopic | None]
    ) -> dict[str, Mapping[int, PartitionMove]] | None:
        """Kafka's running reassignments, read only when some topic's replication factor is in question."""
        if self.reassigner is None:
            return None
        for obj, spec in work:
            change = obj.status.get("replicasChange") or {}
            if replication_in_question(spec, observed.get(obj.topic_name), change):
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

    async def _execute(self, actions: list[Any]) -> dict[str, TopicError | None]:
        creates = [a for a in actions if isinstance(a, CreateTopic)]
        partitions = {a.name: a.total for a in actions if isinstance(a, AddPartitions)}
        alters = {a.name: a.configs for a in actions if isinstance(a, AlterConfigs)}
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

    async def _delete(self, deleting: Work, observed: Mapping[str, ObservedTopic | None]) -> None:
        to_delete: dict[str, DurableTopicObject] = {}
        kept: list[DurableTopicObject] = []
        for obj, spec in deleting:
            owner = self.store.owner(obj.topic_name) == obj.ref
            action, why = plan_deletion(
                spec, observed.get(obj.topic_name), obj.status.get("topicId"), owner=owner
            )
            if action is None:
                if spec.deletion_policy is DeletionPolicy.DELETE:
                    await self._event(obj, *retained_event(obj.topic_name, why))
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
            if deleted(error):
                await self._event(obj, *deleted_event(name))
                await self._set_finalizer(obj, False)
            else:
                assert error is not None
                await self._event(obj, *delete_failed_event(name, error))
                self._retry(obj.ref)

    # ----- writing back -----

    async def _finish(self, objects: list[DurableTopicObject], results: Mapping[ObjectRef, Outcome]) -> None:
        sends = []
        finished = []
        for obj in objects:
            result = results.get(obj.ref)
            if result is None:
                continue
            finished.append(obj)
            self._schedule(obj.ref, result)
            self._count_drift(obj, result)
            sends += [self._event(obj, kind, reason, message) for kind, reason, message in result.events]
            if result.defer_write:
                continue
            if result.observed is not None:
                self.metrics.set_health(obj.ref, obj.topic_name, replica_health(result.observed))
            if result.drift is not None or result.plan is not None:
                self.metrics.set_drift(obj.ref, obj.topic_name, reported_keys(result.drift or []))
            status = next_status(obj.status, obj.topic_name, obj.generation, result, self.now())
            if status is not None:
                sends.append(self._write_status(obj, status))
        await asyncio.gather(*sends)
        self.profiles.wanted(finished)
        self._count_resources()

    def _schedule(self, ref: ObjectRef, result: Outcome) -> None:
        delay: float | None = None
        if result.backoff:
            delay = self.retries.next_delay(ref)
        if result.settled:
            self.retries.settle(ref)
        if result.poll:
            delay = POLL_SECONDS
        if delay is not None:
            self.queue.add(ref, delay)

    def _count_drift(self, obj: DurableTopicObject, result: Outcome) -> None:
        for difference in result.drift_counted:
            self.metrics.count_drift(
                obj.ref, obj.topic_name, difference.key, str(difference.severity), str(result.drift_action)
            )

    async def _write_status(self, obj: DurableTopicObject, status: dict[str, Any]) -> None:
        try:
            await self.kube.write_status(obj, status, obj.status)
            obj.status = status
        except ApiError as error:
            if error.status != 404:
                log.warning("status of %s not written: %s", obj.ref, error)
                self._retry(obj.ref)

    async def _set_finalizer(self, obj: DurableTopicObject, wanted: bool) -> None:
        if (FINALIZER in obj.finalizers) == wanted:
            return
        finalizers = [f for f in obj.finalizers if f != FINALIZER] + ([FINALIZER] if wanted else [])
        try:
            await self.kube.set_finalizers(obj, finalizers)
            obj.finalizers = tuple(finalizers)
        except ApiError as error:
            if error.status != 404:
                log.info("finalizers of %s not updated (%s); retrying", obj.ref, error)
                self._retry(obj.ref)

    async def _event(self, obj: DurableTopicObject, kind: str, reason: str, message: str) -> None:
        try:
            await self.kube.post_event(obj, kind, reason, message)
        except ApiError as error:
            log.info("event %s on %s not posted: %s", reason, obj.ref, error)
        log.log(logging.WARNING if kind == "Warning" else logging.INFO, "%s %s: %s", obj.ref, reason, message)

    # ----- helpers -----

    def _retry(self, ref: ObjectRef) -> None:
        self.queue.add(ref, self.retries.next_delay(ref))

    def _count_resources(self) -> None:
        self.metrics.set_resources(resource_counts(obj.status for obj in self.store))
