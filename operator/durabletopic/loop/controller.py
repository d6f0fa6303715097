"""The reconcile loop: DurableTopics in, batched Kafka calls out, status back.

Watch events only mark objects as due. One loop takes every due object at once (up to a batch
size) and runs one pass over them: read their topics and the cluster from Kafka in one batched
call, plan each one (the core), act with one batched call per kind of action, read the changed
topics back and plan again (confirm), and write status where it changed. A periodic sweep marks
every object due, so drift and replica health are checked by the same path; a periodic listing of
every object keeps the store complete. Every decision is the core's; this module only sequences
the calls through the ports.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

from durabletopic.core import outcome as outcomes
from durabletopic.core.drift import reported_keys
from durabletopic.core.health import needs_eligible_leaders, replica_health, with_eligible_leaders
from durabletopic.core.model import ClusterInfo, DeletionPolicy, ObjectRef, ObservedTopic, Policy, TopicError
from durabletopic.core.outcome import Outcome
from durabletopic.core.ownership import ACCEPT_TOPIC_ID
from durabletopic.core.plan import (
    AddPartitions,
    AlterConfigs,
    CreateTopic,
    Reassign,
    TopicPlan,
    broker_throttle_removable,
    keys_to_read,
    plan_topic,
    replication_in_question,
)
from durabletopic.core.reasons import Reason
from durabletopic.core.rules import Violation
from durabletopic.core.status import next_status, replicas_change
from durabletopic.core.tenancy.rules import check_adoption
from durabletopic.loop.chunks import Candidate, Prefetched, QuietCheck
from durabletopic.loop.clusters import ClusterLink, NoClients, settings_link
from durabletopic.loop.deletion import Deletions, Work, subject_of
from durabletopic.loop.moves import Mover, Moves
from durabletopic.loop.ports import (
    KafkaPort,
    KafkaUnavailable,
    KubePort,
    MetricsPort,
    ReassignPort,
    TopicReads,
)
from durabletopic.loop.profiles import ClientProfiles
from durabletopic.loop.retry import POLL_SECONDS, Retries
from durabletopic.loop.store import SETTINGS_CLUSTER, DurableTopicObject, Store
from durabletopic.loop.tenancy import Tenancy, write_policy_statuses
from durabletopic.loop.workqueue import WorkQueue
from durabletopic.loop.writes import FINALIZER, Writes

log = logging.getLogger(__name__)

__all__ = ["FINALIZER", "Controller", "utc_now"]

BATCH_LINGER_SECONDS = 0.02
# A topic just created may not be in the metadata of the broker that answers the confirming read yet:
# the topics not seen are read again after each of these delays, within the pass, before their objects
# are left for a later pass.
CONFIRM_REREAD_DELAYS = (0.1, 0.2, 0.4)
# A pass's writes to the API server, drawn up and not yet sent.
Writing = Callable[[], Awaitable[None]]
# A settled object's topic has only the planner's config keys read (a few instead of every config);
# every config is read again at least this often, to see overrides set out of band.
COMPLETE_CONFIGS_EVERY_SECONDS = 300.0
# Sweeps start one interval apart, start to start, so that a Kafka slow to answer does not stretch the time
# a change waits to be seen; but at least this share of the interval passes between the end of one sweep
# and the start of the next, so that a struggling Kafka is not read back to back.
SWEEP_LEAST_PAUSE_SHARE = 0.2
# The `cluster` label of the operator's own bootstrap servers.
DEFAULT_CLUSTER_LABEL = "default"


def metric_cluster(cluster: str) -> str:
    return cluster or DEFAULT_CLUSTER_LABEL


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Controller:
    def __init__(
        self,
        *,
        store: Store,
        kafka: KafkaPort | None,
        kube: KubePort,
        metrics: MetricsPort,
        policy: Policy,
        batch_size: int = 1000,
        sweep_interval: float = 10.0,
        resync_interval: float = 300.0,
        now: Callable[[], str] = utc_now,
        reassigner: ReassignPort | None = None,
        throttle_bytes_per_second: int = 50 * 1024 * 1024,
        tenancy: Tenancy | None = None,
        link: ClusterLink | None = None,
        default_cluster: str = SETTINGS_CLUSTER,
    ) -> None:
        self.store = store
        self.kube = kube
        self.metrics = metrics
        self.operator_floors = policy
        self.batch_size = batch_size
        self.default_sweep_interval = sweep_interval
        self.resync_interval = resync_interval
        self.now = now
        self.throttle_bytes_per_second = throttle_bytes_per_second
        self.default_cluster = default_cluster
        self.queue: WorkQueue[ObjectRef] = WorkQueue()
        self.retries = Retries()
        self.writes = Writes(store, kube, retry=self._retry, gone=self.forget)
        self.link = link or settings_link(kafka, reassigner)
        self.mover = Mover(self.kafka, self.link.reassigner, throttle_bytes_per_second)
        self.deletions = Deletions(store, self.kafka, self.writes)
        self.attach(self.link)
        self.profiles = ClientProfiles(store, kube, self.queue)
        # Set by a fleet of controllers: where objects to look at again are sent.
        self.route: Callable[[Iterable[ObjectRef]], None] | None = None
        self.tenancy = tenancy or Tenancy()
        # Objects whose topic this operator created in a pass that could not see it yet: the next pass
        # records that topic's id as theirs (it cannot be told from a topic someone else created).
        self._created_unseen: set[ObjectRef] = set()
        # The objects of the pass whose writes are under way, and those taken meanwhile, held back.
        self._being_written: set[ObjectRef] = set()
        self._held_back: set[ObjectRef] = set()
        # Objects whose last pass changed nothing, with what that pass saw: the same copy of the object,
        # the same read of its topic and the same cluster and floors conclude the same again.
        self._quiet: dict[ObjectRef, tuple[DurableTopicObject, ObservedTopic, object]] = {}
        self._quiet_version = 0  # bumped by every change of _quiet
        # The sweep's candidates, for the store's version and _quiet's they were made at.
        self._candidates: tuple[tuple[int, int], list[Candidate]] | None = None
        self._pass_context: object = None
        # The sweep reads quiet objects' topics a chunk at a time and passes over only what changed.
        self.quiet_check = QuietCheck(COMPLETE_CONFIGS_EVERY_SECONDS)
        # When each object's configs were last read in full.
        self._complete_read_at = self.quiet_check.complete_read_at
        self._pass_prefetched: dict[ObjectRef, Prefetched] = {}
        self._read_keys: dict[ObjectRef, tuple[DurableTopicObject, frozenset[str]]] = {}
        self._drained = asyncio.Event()

    # ----- the cluster -----

    @property
    def cluster(self) -> str:
        return self.link.name

    @property
    def kafka(self) -> KafkaPort:
        return self.link.kafka or cast(KafkaPort, NoClients(self.cluster))

    @property
    def policy(self) -> Policy:
        """The operator's floors, raised by the cluster's own."""
        floors = self.link.floors
        if floors is None:
            return self.operator_floors
        return Policy(
            min_replication_factor=max(
                self.operator_floors.min_replication_factor, floors.min_replication_factor
            ),
            min_insync_replicas=max(self.operator_floors.min_insync_replicas, floors.min_insync_replicas),
        )

    @property
    def sweep_interval(self) -> float:
        return self.link.sweep_interval or self.default_sweep_interval

    def attach(self, link: ClusterLink) -> None:
        """The cluster's clients, made again (new settings or credentials): later passes use them."""
        self.link = link
        if link.kafka is not None:
            self.mover = Mover(link.kafka, link.reassigner, self.throttle_bytes_per_second)
            self.deletions = Deletions(self.store, link.kafka, self.writes)

    def mine(self, obj: DurableTopicObject) -> bool:
        return obj.cluster == self.cluster

    # ----- events in -----

    def observe_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Called for every watch event of a DurableTopic."""
        if event_type == "DELETED":
            meta = body.get("metadata", {})
            self.forget(ObjectRef(meta.get("namespace", ""), meta.get("name", "")))
            return
        self._upsert(DurableTopicObject.from_body(body, self.default_cluster))

    def observe_policy_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Called for every watch event of a DurabilityPolicy: the objects it may govern are judged again."""
        if self.tenancy.observe_policy(event_type, body):
            self.requeue(obj.ref for obj in self.store)

    def observe_namespace_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Called for every watch event of a Namespace: new labels may bring other policies."""
        namespace = self.tenancy.observe_namespace(event_type, body)
        if namespace is not None:
            self.requeue(self.tenancy.affected(self.store, {namespace}))

    def requeue(self, refs: Iterable[ObjectRef]) -> None:
        """Objects to look at again, whichever cluster they are on (a fleet routes them to theirs)."""
        if self.route is not None:
            self.route(refs)
            return
        for ref in refs:
            obj = self.store.get(ref)
            if obj is not None and self.mine(obj):
                self.look_again(ref)

    def look_again(self, ref: ObjectRef) -> None:
        """The object in full at the next pass: something it may rest on changed (a policy, a namespace's
        labels, another object that names its topic), so it is not taken as unchanged."""
        self._quiet.pop(ref, None)
        self._quiet_version += 1
        self.queue.add(ref)

    def _upsert(self, obj: DurableTopicObject) -> None:
        previous = self.store.get(obj.ref)
        self.tenancy.remember(obj.key, obj.record.topic_id)
        if self.store.upsert(obj):
            self.queue.add(obj.ref)
            if previous is None:
                self.requeue(self.store.claimants(obj.key))
        self._count_resources()

    def forget(self, ref: ObjectRef) -> None:
        """The object is gone: out of the store, the queue and the metrics; the other objects that
        declare its topic are looked at again (one of them may own it now)."""
        removed = self.store.remove(ref)
        self.queue.discard(ref)
        self.tenancy.forget(ref)
        self.retries.settle(ref)
        self.profiles.forget(ref)
        self._created_unseen.discard(ref)
        self._quiet.pop(ref, None)
        self._quiet_version += 1
        self.quiet_check.forget(ref)
        self._read_keys.pop(ref, None)
        self._complete_read_at.pop(ref, None)
        self.metrics.forget(ref)
        if removed is not None:
            self.requeue(self.store.claimants(removed.key))
            # A quota it held is free for the next object of its namespace.
            self.requeue(
                r for r in self.tenancy.affected(self.store, {ref.namespace}) if self.tenancy.verdicts.get(r)
            )
        self._count_resources()

    def enqueue_all(self) -> None:
        """Every object looked at again in full (a new leader, new policies): nothing is taken as unchanged."""
        self._quiet.clear()
        self._quiet_version += 1
        for obj in self.store:
            if self.mine(obj):
                self.queue.add(obj.ref)

    async def resync(self) -> None:
        """Makes the store hold exactly the DurableTopics that exist, from one full listing.

        Ownership is decided on a complete view: the first pass after leadership is acquired waits
        for this. An object that is gone (deleted while the watch was down) leaves the store; one the
        watch brought in or changed while the listing was under way is not touched by it.
        """
        mark = self.store.mark()
        policies, namespaces = await asyncio.gather(self.kube.list_policies(), self.kube.list_namespaces())
        if self.tenancy.replace(policies, namespaces):
            self.enqueue_all()
        bodies = await self.kube.list_durabletopics()
        listed = set()
        for body in bodies:
            obj = DurableTopicObject.from_body(body)
            listed.add(obj.ref)
            current = self.store.get(obj.ref)
            if self.store.touched_since(obj.ref, mark) or (current is not None and current.newer_than(obj)):
                continue
            self._upsert(obj)
        for obj in self.store:
            if obj.ref not in listed and not self.store.touched_since(obj.ref, mark):
                log.info("%s no longer exists: forgotten", obj.ref)
                self.forget(obj.ref)

    # ----- loops -----

    async def run(self) -> None:
        """Passes one after the other; a pass's writes to the API server go on while the next pass reads
        and acts on Kafka, one pass's writes at a time, in order. An object whose writes are under way
        waits for them before its next pass (its next pass rests on what they record)."""
        writing: asyncio.Future[None] | None = None
        try:
            while True:
                refs = await self.queue.take(self.batch_size, linger=BATCH_LINGER_SECONDS)
                refs = self._not_being_written(refs)
                if not refs:
                    continue
                started, result = time.monotonic(), "ok"
                try:
                    write = await self._pass(refs)
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    log.exception("reconcile pass failed; the objects are retried")
                    write, result = self._conclude_failed(refs, error), "error"
                if writing is not None:
                    await writing
                self._being_written = set(refs)
                writing = asyncio.ensure_future(self._written(write, refs, started, result))
        finally:
            if writing is not None:
                writing.cancel()
                await asyncio.gather(writing, return_exceptions=True)

    def _not_being_written(self, refs: list[ObjectRef]) -> list[ObjectRef]:
        held = [ref for ref in refs if ref in self._being_written]
        self._held_back.update(held)
        return [ref for ref in refs if ref not in self._being_written] if held else refs

    async def _written(self, write: Writing, refs: list[ObjectRef], started: float, result: str) -> None:
        try:
            await write()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the writes of a reconcile pass failed; the objects are retried")
            result = "error"
            for ref in refs:
                self._retry(ref)
        finally:
            self.metrics.record_pass(result, len(refs), time.monotonic() - started)
            self._being_written = set()
            for ref in self._held_back:
                self.queue.add(ref)
            self._held_back.clear()
            if not self.queue.due_count():
                self._drained.set()

    async def sweep(self) -> None:
        """Every sweep interval (start to start, see `next_sweep_start`): quiet objects whose topics are as
        their last pass saw them are checked by one read per chunk of topics; every other managed object
        is marked due. Times the check."""
        next_start = time.monotonic() + self.sweep_interval
        while True:
            await asyncio.sleep(max(0.0, next_start - time.monotonic()))
            started = time.monotonic()
            self._drained.clear()
            await self.sweep_once()
            if not self.queue.due_count():
                self._drained.set()  # nothing to check: no pass will come to say so
            try:
                await asyncio.wait_for(self._drained.wait(), self.sweep_interval * 3)
                self.metrics.record_sweep(time.monotonic() - started)
            except TimeoutError:
                log.warning("sweep not finished within %.0f s", self.sweep_interval * 3)
            next_start = next_sweep_start(started, time.monotonic(), self.sweep_interval)

    def _sweep_due(self, refs: Iterable[ObjectRef]) -> None:
        for ref in refs:
            self.queue.add(ref)

    async def sweep_once(self) -> None:
        seen_to = await self._check_quiet()
        if self.store.refs() - seen_to:
            for obj in self.store:
                if not obj.paused and self.mine(obj) and obj.ref not in seen_to:
                    self.queue.add(obj.ref)

    async def resync_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.resync_interval)
            try:
                await self.resync()
            except Exception as error:
                log.warning(
                    "listing every DurableTopic failed (%s); tried again in %.0f s",
                    error,
                    self.resync_interval,
                )

    def loops(self) -> list[Awaitable[None]]:
        """The loops of this cluster's work."""
        return [self.run(), self.sweep(), self.profiles.run()]

    def leader_loops(self) -> list[Awaitable[None]]:
        """Everything a leader runs when this controller is the only one."""
        return [*self.loops(), self.resync_periodically(), self.policy_statuses()]

    def _settled(self, obj: DurableTopicObject, now: float) -> bool:
        """Its generation applied, its topic known, its configs read in full within
        COMPLETE_CONFIGS_EVERY_SECONDS: only the keys the planner needs are read."""
        record = obj.record
        return (
            record.applied_generation == obj.generation
            and record.topic_id is not None
            and now - self._complete_read_at.get(obj.ref, -COMPLETE_CONFIGS_EVERY_SECONDS)
            < COMPLETE_CONFIGS_EVERY_SECONDS
        )

    def _keys_of(self, obj: DurableTopicObject) -> frozenset[str]:
        kept = self._read_keys.get(obj.ref)
        if kept is None or kept[0] is not obj:
            kept = self._read_keys[obj.ref] = (obj, keys_to_read(obj.spec(), obj.record))
        return kept[1]

    async def _check_quiet(self) -> set[ObjectRef]:
        """The objects the chunk reads have seen to: the quiet ones whose topics are exactly as their
        last pass saw them, and the others of each chunk read, already due with that read (see `chunks`)."""
        reader = self.link.reassigner
        if reader is None or self.link.kafka is None or self.link.problem is not None:
            return set()
        candidates = self._sweep_candidates()
        if not candidates:
            return set()
        return await self.quiet_check.check(reader, candidates, self._sweep_due, self._unchanged_in)

    def _sweep_candidates(self) -> list[Candidate]:
        """The objects whose generation is applied and whose topic is known; the same list while
        neither the objects nor what their passes concluded changed (an idle sweep makes none)."""
        version = (self.store.version, self._quiet_version)
        if self._candidates is not None and self._candidates[0] == version:
            return self._candidates[1]
        candidates = []
        for obj in self.store:
            record = obj.record
            if (
                record.applied_generation == obj.generation
                and record.topic_id is not None
                and not obj.paused
                and not obj.deleting
                and self.mine(obj)
            ):
                quiet = self._quiet.get(obj.ref)
                candidates.append(Candidate(obj, self._keys_of(obj), quiet is not None and quiet[0] is obj))
        self._candidates = (version, candidates)
        return candidates

    async def _read_topics(self, names: list[str], work: Work) -> TopicReads:
        """The pass's topics. Every config of a topic is read unless each object that names it is
        settled (see `_settled`): then only the keys the planner needs, through the second client; if
        that read fails, in full."""
        reader = self.link.reassigner
        now = time.monotonic()
        keys: dict[str, frozenset[str]] = {}
        complete: set[str] = set(names) if reader is None else set()
        for obj, spec in work:
            if self._settled(obj, now):
                keys[obj.topic_name] = keys.get(obj.topic_name, frozenset()) | keys_to_read(spec, obj.record)
            else:
                complete.add(obj.topic_name)
        complete |= set(names) - {obj.topic_name for obj, _ in work}  # deletions: read in full
        partial = {name: k for name, k in keys.items() if name not in complete}
        reads = await self.kafka.read_topics(names, configs_of=complete if partial else None)
        for obj, _ in work:
            if obj.topic_name in complete:
                self._complete_read_at[obj.ref] = now
        wanted = {
            n: partial[n] for n, t in reads.observed.items() if t is not None and not t.configs_complete
        }
        if not wanted or reader is None:
            return reads
        try:
            found = await reader.topic_configs(wanted)
        except KafkaUnavailable as error:
            log.debug("configs by key not read (%s): read in full", error)
            again = await self.kafka.read_topics(sorted(wanted))
            return dataclasses.replace(
                reads,
                observed={**reads.observed, **again.observed},
                errors={**reads.errors, **again.errors},
                unanswered={**reads.unanswered, **again.unanswered},
            )
        observed = dict(reads.observed)
        unanswered = dict(reads.unanswered)
        for name in wanted:
            configs = found.get(name)
            topic = observed[name]
            if configs is None or topic is None:
                del observed[name]
                unanswered[name] = "Kafka did not answer for its configs"
            else:
                observed[name] = dataclasses.replace(topic, overrides=configs[0], effective=configs[1])
        return dataclasses.replace(reads, observed=observed, unanswered=unanswered)

    def _prefetched_reads(
        self, work: Work, deleting: Work
    ) -> tuple[dict[str, ObservedTopic | None], ClusterInfo | None]:
        """The topics the sweep has just read for this pass (see `chunks`), where they say that nothing the
        planner rests on changed since the object's last pass: a prefetched read never leads to an
        action. Not for a topic an object being deleted names, one that another object of the pass has
        no such read of, or one the read shows changed: those are read afresh."""
        now = time.monotonic()
        self._pass_prefetched = {}
        found = {obj.ref: p for obj, _ in work if (p := self.quiet_check.take(obj, now)) is not None}
        afresh = {o.topic_name for o, _ in deleting} | {o.topic_name for o, _ in work if o.ref not in found}
        for obj, _ in work:
            prefetched = found.get(obj.ref)
            if prefetched is not None and not self._as_last_seen(obj, prefetched):
                afresh.add(obj.topic_name)
        given: dict[str, ObservedTopic | None] = {}
        cluster: ClusterInfo | None = None
        for obj, _ in work:
            prefetched = found.get(obj.ref)
            if prefetched is None or obj.topic_name in afresh:
                continue
            self._pass_prefetched[obj.ref] = prefetched
            given[obj.topic_name] = prefetched.observed
            cluster = cluster or prefetched.cluster
            if prefetched.complete:
                self._complete_read_at[obj.ref] = prefetched.at
        return given, cluster

    def _unchanged_in(self, obj: DurableTopicObject, observed: ObservedTopic, cluster: ClusterInfo) -> bool:
        """A sweep's read says what the object's last pass saw and concluded on, as a pass's would
        (`_unchanged`): the object stays quiet without a pass."""
        context = (dataclasses.replace(cluster, controller_id=None), self.policy)
        return self._seen_before(obj, observed, context, either_way=False)

    def _as_last_seen(self, obj: DurableTopicObject, prefetched: Prefetched) -> bool:
        """The prefetched read says, of every key the planner reads, what the object's last pass saw,
        in the same cluster under the same floors."""
        context = (dataclasses.replace(prefetched.cluster, controller_id=None), self.policy)
        return self._seen_before(obj, prefetched.observed, context, either_way=True)

    async def _with_eligible_leaders(self, reads: TopicReads) -> TopicReads:
        """The reads, with Kafka 4.x's eligible leader replicas where a partition is under min ISR or
        leaderless (no request at all while every partition is healthy); without them if they cannot
        be read (an older Kafka, or no answer): they are reported, never acted on."""
        wanted = {n: t for n, t in reads.observed.items() if t is not None and needs_eligible_leaders(t)}
        reader = self.link.reassigner
        if not wanted or reader is None:
            return reads
        try:
            found = await reader.eligible_leader_replicas(sorted(wanted))
        except KafkaUnavailable as error:
            log.debug("eligible leader replicas not read: %s", error)
            return reads
        observed = dict(reads.observed)
        for name, topic in wanted.items():
            if name in found:
                observed[name] = with_eligible_leaders(topic, found[name])
        return dataclasses.replace(reads, observed=observed)

    async def policy_statuses(self) -> None:
        await write_policy_statuses(self.tenancy, self.store, self.kube, self.metrics, self.now)

    # ----- one pass -----

    async def reconcile(self, refs: list[ObjectRef]) -> None:
        """One pass over these objects, its writes included."""
        write = await self._pass(refs)
        await write()

    async def _pass(self, refs: list[ObjectRef]) -> Writing:
        """One pass up to its writes to the API server, which it returns: every conclusion is drawn."""
        self._pass_context = None  # set once this pass has read Kafka and checked the cluster
        self._pass_prefetched = {}
        # Only this cluster's objects: the clients of this pass reach no other.
        objects = [obj for ref in refs if (obj := self.store.get(ref)) is not None and self.mine(obj)]
        results: dict[ObjectRef, Outcome] = {}
        work: Work = []
        deleting: Work = []
        verdicts = self._judge(objects)
        violators = {ref for ref, violations in verdicts.items() if violations}
        breaks = {ref: _breaks(verdicts[ref]) for ref in violators}
        for obj in objects:
            try:
                spec = obj.spec()
            except ValueError as error:
                results[obj.ref] = outcomes.invalid_spec(str(error))
                if obj.deleting:
                    await self.writes.finalizer(obj, False)
                continue
            owner = self.store.owner(obj.key, violators)
            if obj.deleting:
                deleting.append((obj, spec))
            elif obj.ref in violators:
                results[obj.ref] = outcomes.policy_violation(self._subject(obj), verdicts[obj.ref])
            elif obj.paused:
                results[obj.ref] = outcomes.paused(obj.status)
            elif owner != obj.ref:
                results[obj.ref] = outcomes.conflict(obj.topic_name, str(owner))
            else:
                work.append((obj, spec))

        await asyncio.gather(
            *(self.writes.finalizer(o, s.deletion_policy is DeletionPolicy.DELETE) for o, s in work)
        )
        deleting = await self.deletions.release_without_kafka(deleting, violators, breaks)

        names = sorted({obj.topic_name for obj, _ in work} | {obj.topic_name for obj, _ in deleting})
        unusable = self.link.problem or (
            None if self.link.kafka else (Reason.CLUSTER_NOT_READY, "no clients")
        )
        if names and unusable is not None:
            results.update(self.deletions.pending(deleting, unusable[1]))
            for obj, _ in work:
                results[obj.ref] = outcomes.cluster_not_ready(self._subject(obj), unusable[1])
        elif names:
            given, given_cluster = self._prefetched_reads(work, deleting)
            rest = [name for name in names if name not in given]
            try:
                reads = (
                    await self._read_topics(rest, [(o, s) for o, s in work if o.topic_name not in given])
                    if rest
                    else TopicReads()
                )
                if given_cluster is None or rest:
                    cluster = await self.kafka.describe_cluster()
                else:
                    cluster = given_cluster
            except KafkaUnavailable as error:
                self.link.lost(error)
                results.update(self.deletions.pending(deleting, f"Kafka cannot be reached ({error})"))
                for obj, _ in work:
                    results[obj.ref] = outcomes.kafka_unavailable(str(error))
                return self._conclude(objects, results, verdicts)
            reads = dataclasses.replace(reads, observed={**given, **reads.observed})
            reads = await self._with_eligible_leaders(reads)
            wrong = self.link.check(cluster, self.now())
            if wrong is not None:
                results.update(self.deletions.pending(deleting, wrong))
                for obj, _ in work:
                    results[obj.ref] = outcomes.wrong_cluster(self._subject(obj), wrong)
            else:
                answered = [(o, s) for o, s in deleting if o.topic_name in reads.observed]
                results.update(self._unanswered(deleting, reads, deleting=True))
                results.update(
                    await self.deletions.delete(answered, reads.observed, cluster.cluster_id, violators)
                )
                results.update(self._unanswered(work, reads, deleting=False))
                checked: Work = []
                for obj, spec in work:
                    if obj.topic_name not in reads.observed:
                        continue
                    mismatch = outcomes.identity_mismatch(
                        self._subject(obj), reads.observed[obj.topic_name], cluster.cluster_id
                    )
                    adoption = self._adoption_refused(obj, reads.observed[obj.topic_name])
                    if mismatch is not None:
                        results[obj.ref] = mismatch
                    elif adoption is not None:
                        verdicts[obj.ref] = [adoption]
                        results[obj.ref] = outcomes.policy_violation(self._subject(obj), [adoption])
                    else:
                        checked.append((obj, spec))
                # The controller a Metadata answer names is picked at random: it says nothing of a topic.
                self._pass_context = (dataclasses.replace(cluster, controller_id=None), self.policy)
                unchanged = {
                    o.ref for o, _ in checked if self._unchanged(o, reads.observed.get(o.topic_name))
                }
                for obj, _ in checked:
                    if obj.ref not in unchanged:
                        continue
                    observed = reads.observed.get(obj.topic_name)
                    self.quiet_check.planned(
                        obj.ref,
                        self._pass_prefetched.get(obj.ref),
                        True,
                        complete=observed is not None and observed.configs_complete,
                    )
                checked = [(o, s) for o, s in checked if o.ref not in unchanged]
                if checked:
                    results.update(await self._apply(checked, reads.observed, cluster))
        return self._conclude(objects, results, verdicts)

    def _judge(self, objects: list[DurableTopicObject]) -> dict[ObjectRef, list[Violation]]:
        """The verdicts of the pass's objects and of every other object that declares one of their
        topics (an object that breaks a policy owns nothing)."""
        judged = {obj.ref: obj for obj in objects}
        for obj in objects:
            for ref in self.store.claimants(obj.key):
                if ref not in judged and (other := self.store.get(ref)) is not None:
                    judged[ref] = other
        return self.tenancy.judge(self.store, judged.values())

    def _adoption_refused(self, obj: DurableTopicObject, observed: ObservedTopic | None) -> Violation | None:
        """A topic that exists and that neither this object nor the operator created: may it be taken over?"""
        record = obj.record
        if (
            observed is None
            or record.topic_id
            or record.applied_generation is not None
            or obj.ref in self._created_unseen
            or self.tenancy.operator_created(obj.key, observed.topic_id)
        ):
            return None
        return check_adoption(
            self.tenancy.governing(obj.ref.namespace),
            obj.topic_name,
            observed.topic_id,
            obj.accepted_topic_id,
            ACCEPT_TOPIC_ID,
        )

    def _unanswered(self, work: Work, reads: TopicReads, *, deleting: bool) -> dict[ObjectRef, Outcome]:
        """Objects whose topic Kafka did not answer for: marked by what Kafka said, the others go on."""
        results: dict[ObjectRef, Outcome] = {}
        for obj, _ in work:
            topic = obj.topic_name
            problem: TopicError | str | None = reads.errors.get(topic) or reads.unanswered.get(topic)
            if problem is None:
                continue
            if deleting:
                results[obj.ref] = outcomes.delete_pending(
                    subject_of(obj), f"Kafka did not answer for it ({problem})"
                )
            elif isinstance(problem, TopicError):
                results[obj.ref] = outcomes.unreadable(subject_of(obj), problem)
            else:
                results[obj.ref] = outcomes.kafka_unavailable(problem)
        return results

    async def _apply(
        self, work: Work, observed: dict[str, ObservedTopic | None], cluster: ClusterInfo
    ) -> dict[ObjectRef, Outcome]:
        results: dict[ObjectRef, Outcome] = {}
        moves: Moves | None = None
        if self.mover.available and any(
            replication_in_question(
                spec, observed.get(obj.topic_name), obj.status.get("replicasChange") or {}
            )
            for obj, spec in work
        ):
            try:
                moves = await self.mover.ongoing()
            except KafkaUnavailable as error:
                # Without Kafka's list of moves no replication decision is safe: the topics in question
                # wait, the others go on.
                problem = f"Kafka's running reassignments cannot be read: {error}"
                for obj, spec in work:
                    if replication_in_question(
                        spec, observed.get(obj.topic_name), obj.status.get("replicasChange") or {}
                    ):
                        results[obj.ref] = outcomes.kafka_unavailable(problem)
                work = [(o, s) for o, s in work if o.ref not in results]

        plans: dict[ObjectRef, TopicPlan] = {}
        for obj, spec in work:
            record = obj.record
            plans[obj.ref] = plan_topic(
                spec,
                obj.topic_name,
                observed.get(obj.topic_name),
                cluster,
                self.policy,
                spec_already_applied=outcomes.spec_already_applied(record, obj.generation),
                reassigning=moves is not None and obj.topic_name in moves,
                moves=(moves or {}).get(obj.topic_name),
                recorded=record,
            )
        actions = [a for p in plans.values() for a in p.actions]
        errors = await self._execute(actions)
        reassigned = {a.name: a for a in actions if isinstance(a, Reassign)}
        reassign_errors = await self.mover.start(list(reassigned.values()), cluster)

        acted = sorted({obj.topic_name for obj, _ in work if plans[obj.ref].actions})
        after = dict(observed)
        if acted:
            confirmed = await self.kafka.read_topics(acted)
            after.update(confirmed.observed)
            made = {a.name for a in actions if isinstance(a, CreateTopic) and errors.get(a.name) is None}
            after.update(await self._reread_unseen(made, after))

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
                    moves=(moves or {}).get(topic),
                    recorded=obj.record,
                )
                if first.actions
                else first
            )
            result = outcomes.after_pass(
                self._subject(obj),
                spec,
                first,
                final,
                now_observed,
                errors.get(topic),
                self.now(),
                cluster.cluster_id,
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
            created = errors.get(topic) is None and any(isinstance(a, CreateTopic) for a in first.actions)
            if now_observed is None and created:
                self._created_unseen.add(obj.ref)
            else:
                self._created_unseen.discard(obj.ref)
                if created and now_observed is not None:
                    # Known as the operator's even if this pass's outcome is dropped (the object changed
                    # meanwhile): the next pass must not take it for a topic someone else made.
                    self.tenancy.remember(obj.key, now_observed.topic_id)
        if broker_throttle_removable(move_finished, list(moves or {}), list(reassigned)):
            await self.mover.set_broker_throttle(cluster, None)
        return results

    async def _reread_unseen(
        self, created: set[str], after: Mapping[str, ObservedTopic | None]
    ) -> dict[str, ObservedTopic]:
        """Topics this pass created that its confirming read did not see (the broker that answered had
        not applied the new metadata yet), read again a moment later, those alone: seen now, their
        objects get their status in this pass, not a full pass later."""
        unseen = {name for name in created if after.get(name) is None}
        seen: dict[str, ObservedTopic] = {}
        for delay in CONFIRM_REREAD_DELAYS:
            if not unseen:
                break
            await asyncio.sleep(delay)
            try:
                again = await self.kafka.read_topics(sorted(unseen))
            except KafkaUnavailable as error:
                log.debug("created topics not read again: %s", error)
                break
            seen.update({name: topic for name, topic in again.observed.items() if topic is not None})
            unseen -= seen.keys()
        return seen

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

    def _conclude_failed(self, refs: list[ObjectRef], error: Exception) -> Writing:
        """A pass that raised: its objects are retried, and none keeps a Ready that was not checked (a
        write that fails is retried by `_written`)."""
        results = {ref: outcomes.failed(type(error).__name__) for ref in refs}
        objects = [obj for ref in refs if (obj := self.store.get(ref)) is not None]
        try:
            return self._conclude(objects, results)
        except Exception:
            log.exception("the status of a failed pass could not be drawn up either")

            async def retry() -> None:
                for ref in refs:
                    self._retry(ref)

            return retry

    # ----- writing back -----

    def _conclude(
        self,
        objects: list[DurableTopicObject],
        results: Mapping[ObjectRef, Outcome],
        verdicts: Mapping[ObjectRef, list[Violation]] | None = None,
    ) -> Writing:
        """Draws every conclusion of the pass now; returns its writes (status and events), to be awaited."""
        sends: list[Callable[[], Awaitable[None]]] = []
        finished = []
        for obj in objects:
            result = results.get(obj.ref)
            if result is None:
                continue
            if not self.store.holds(obj):
                # Replaced while the pass ran (its own finalizer coming back, say): what was concluded
                # about the old copy is not written; the new copy is looked at now, not at the next sweep.
                if self.store.get(obj.ref) is not None:
                    self.queue.add(obj.ref)
                continue
            finished.append(obj)
            if verdicts is not None and not obj.deleting:
                self.tenancy.record(obj.ref, verdicts.get(obj.ref, []))
            self._schedule(obj.ref, result)
            self._count_drift(obj, result)
            sends += [
                functools.partial(self.writes.event, obj, kind, reason, message)
                for kind, reason, message in result.events
            ]
            if result.defer_write:
                continue
            if result.observed is not None:
                self.metrics.set_health(
                    obj.ref, obj.topic_name, replica_health(result.observed), metric_cluster(self.cluster)
                )
            if result.drift is not None or result.plan is not None:
                self.metrics.set_drift(obj.ref, obj.topic_name, reported_keys(result.drift or []))
            status = next_status(obj.status, obj.topic_name, obj.generation, result, self.now())
            if status is not None:
                sends.append(functools.partial(self.writes.status, obj, status))
                if result.record:
                    self.tenancy.remember(obj.key, result.record.get("topicId"))
            self._remember_quiet(obj, result, status is None)

        async def write() -> None:
            await asyncio.gather(*(send() for send in sends))
            self.profiles.wanted(o for o in finished if not o.deleting)
            self._count_resources()

        return write

    def _unchanged(self, obj: DurableTopicObject, observed: ObservedTopic | None) -> bool:
        """The object's last pass changed nothing, and nothing it rests on has changed since."""
        return self._seen_before(obj, observed, self._pass_context, either_way=False)

    def _seen_before(
        self, obj: DurableTopicObject, observed: ObservedTopic | None, context: object, *, either_way: bool
    ) -> bool:
        """This copy of the object is quiet, and `observed` says of every key the planner reads what its last
        pass saw, in the same cluster under the same floors. A read by key stands for an earlier complete
        read; with `either_way`, a complete read for an earlier read by key too (its other keys may still
        change what is reported, so such a read is planned, but it leads to no action)."""
        quiet = self._quiet.get(obj.ref)
        if quiet is None or quiet[0] is not obj or observed is None or obj.ref in self._created_unseen:
            return False
        seen = quiet[1]
        same = (
            seen == observed
            or _says_the_same_by_key(seen, observed)
            or (either_way and _says_the_same_by_key(observed, seen))
        )
        return same and quiet[2] == context

    def _remember_quiet(self, obj: DurableTopicObject, result: Outcome, unwritten: bool) -> None:
        quiet = (
            unwritten
            and result.observed is not None
            and not needs_eligible_leaders(result.observed)
            and result.settled
            and not (result.events or result.drift_counted or result.backoff or result.poll)
            and not (result.plan is not None and result.plan.actions)
            and self._pass_context is not None
        )
        if quiet and result.observed is not None:
            self._quiet[obj.ref] = (obj, result.observed, self._pass_context)
        else:
            self._quiet.pop(obj.ref, None)
        self._quiet_version += 1
        self.quiet_check.planned(
            obj.ref,
            self._pass_prefetched.get(obj.ref),
            quiet,
            complete=result.observed is not None and result.observed.configs_complete,
        )

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
        for difference, action in result.drift_counted:
            self.metrics.count_drift(
                obj.ref, obj.topic_name, difference.key, str(difference.severity), str(action)
            )

    # ----- helpers -----

    def _subject(self, obj: DurableTopicObject) -> outcomes.Subject:
        return subject_of(obj, self.retries.attempts(obj.ref), created_unseen=obj.ref in self._created_unseen)

    def _retry(self, ref: ObjectRef) -> None:
        self.queue.add(ref, self.retries.next_delay(ref))

    def _count_resources(self) -> None:
        self.metrics.set_resources(self.store.counts())


def next_sweep_start(started: float, ended: float, interval: float) -> float:
    """One interval after the last sweep started, and not sooner than SWEEP_LEAST_PAUSE_SHARE of an
    interval after it ended."""
    return max(started + interval, ended + interval * SWEEP_LEAST_PAUSE_SHARE)


def _says_the_same_by_key(complete: ObservedTopic, by_key: ObservedTopic) -> bool:
    """A read of the planner's keys that says what a complete read of the same topic said of each key
    it read: every decision rests on those keys (`keys_to_read`), so the planner concludes the same."""
    if not complete.configs_complete or by_key.configs_complete:
        return False
    if complete.topic_id != by_key.topic_id or complete.partitions != by_key.partitions:
        return False
    return all(
        complete.effective.get(key) == by_key.effective.get(key)
        and complete.overrides.get(key) == by_key.overrides.get(key)
        for key in by_key.effective.keys() | by_key.overrides.keys()
    )


def _breaks(violations: list[Violation]) -> str:
    first = violations[0]
    where = f"DurabilityPolicy {first.policy}" if first.policy else "an operator-wide rule"
    return f"{where} (rule {first.rule})"
