"""Several Kafka clusters from one operator: one controller per cluster, one store, one set of policies.

Every DurableTopic is routed to the controller of its cluster (`spec.clusterRef`, or the default), so
batching, the sweep, the audit, retries and conflicts are per cluster, and a cluster that is down, slow
or refusing authentication never delays the objects of another: each controller has its own queue,
loop and clients. The store, the tenancy rules and the status writes are shared.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from durabletopic.core import audit
from durabletopic.core.clusters.model import ClusterObject
from durabletopic.core.clusters.status import ClusterObservation, cluster_status
from durabletopic.core.conditions import says_nothing_new
from durabletopic.core.model import ObjectRef, Policy
from durabletopic.core.reasons import Reason
from durabletopic.loop.audit import read_cluster
from durabletopic.loop.clusters import ClusterDirectory, ClusterLink
from durabletopic.loop.controller import Controller, metric_cluster, utc_now
from durabletopic.loop.ports import ApiError, Connector, KafkaAdminError, KubePort, MetricsPort
from durabletopic.loop.store import SETTINGS_CLUSTER, DurableTopicObject, Store
from durabletopic.loop.tenancy import Tenancy, write_policy_statuses

log = logging.getLogger(__name__)

SOURCE_REFRESH_SECONDS = 60.0
CLUSTER_STATUS_SECONDS = 5.0
CONTACT_WRITE_SECONDS = 60.0
# The periodic resync lists every DurableTopic at least once in this many resync intervals, even while the
# watch has run unbroken.
FULL_LISTING_EVERY = 12


class Fleet:
    def __init__(
        self,
        *,
        store: Store,
        kube: KubePort,
        metrics: MetricsPort,
        policy: Policy,
        connector: Connector | None,
        settings_link: ClusterLink | None,
        default_cluster: str = SETTINGS_CLUSTER,
        tenancy: Tenancy | None = None,
        resync_interval: float = 300.0,
        audit_interval: float = 300.0,
        now: Callable[[], str] = utc_now,
        controller_settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.kube = kube
        self.metrics = metrics
        self.policy = policy
        self.directory = ClusterDirectory(kube, connector)
        self.settings_link = settings_link
        self.default_cluster = default_cluster
        self.tenancy = tenancy or Tenancy()
        self.resync_interval = resync_interval
        self.audit_interval = audit_interval
        self.now = now
        self.controller_settings = dict(controller_settings or {})
        self.controllers: dict[str, Controller] = {}
        self._refresh_due: set[str] = set()
        # The watch listed DurableTopics again since this fleet last listed them: it was interrupted, and a
        # deletion may have been missed. An unbroken watch (kopf resumes from the last resource version
        # across disconnects) delivers every deletion.
        self._watch_listed = True
        self._resyncs_without_listing = 0
        self._statuses: dict[str, dict[str, Any]] = {}
        self._written_at: dict[str, float] = {}
        self._changed = asyncio.Event()
        # The default cluster is there from the start: audited, and checked, before any object names it.
        self.controller(default_cluster)

    # ----- controllers -----

    def controller(self, cluster: str) -> Controller:
        found = self.controllers.get(cluster)
        if found is None:
            if cluster == SETTINGS_CLUSTER and self.settings_link is not None:
                link = self.settings_link
            else:
                link = self.directory.link(cluster)
                self._refresh_due.add(cluster)
            found = Controller(
                store=self.store,
                kafka=None,
                kube=self.kube,
                metrics=self.metrics,
                policy=self.policy,
                now=self.now,
                tenancy=self.tenancy,
                link=link,
                default_cluster=self.default_cluster,
                resync_interval=self.resync_interval,
                **self.controller_settings,
            )
            found.route = self.requeue
            self.controllers[cluster] = found
            self._changed.set()
        return found

    def requeue(self, refs: Iterable[ObjectRef]) -> None:
        for ref in refs:
            obj = self.store.get(ref)
            if obj is not None:
                self.controller(obj.cluster).look_again(ref)

    # ----- events in -----

    def observe_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A DurableTopic's watch event, to the controller of its cluster."""
        if event_type is None:  # kopf's listing, at the start of a watch
            self._watch_listed = True
        meta = body.get("metadata", {})
        ref = ObjectRef(meta.get("namespace", ""), meta.get("name", ""))
        known = self.store.get(ref)
        if event_type == "DELETED":
            if known is not None:
                self.controller(known.cluster).forget(ref)
            return
        obj = DurableTopicObject.from_body(body, self.default_cluster)
        if known is not None and known.cluster != obj.cluster:
            # spec.clusterRef is immutable; an object recreated under the same name may name another.
            self.controller(known.cluster).forget(ref)
        self.controller(obj.cluster)._upsert(obj)

    def observe_policy_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        # The tenancy state is shared, and a controller's requeue goes through `route` to every cluster.
        self.controller(self.default_cluster).observe_policy_event(event_type, body)

    def observe_namespace_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        self.controller(self.default_cluster).observe_namespace_event(event_type, body)

    def observe_cluster_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A KafkaCluster's watch event: its link is refreshed by the leader's loop, then its objects
        are looked at again."""
        name = self.directory.observe(event_type, body)
        self.controller(name)
        self._refresh_due.add(name)
        self._changed.set()

    # ----- a complete view -----

    async def resync(self, *, durabletopics: bool = True) -> None:
        """Every KafkaCluster, DurabilityPolicy and Namespace, and (unless told not to) every DurableTopic,
        from full listings."""
        clusters, policies, namespaces = await asyncio.gather(
            self.kube.list_clusters(), self.kube.list_policies(), self.kube.list_namespaces()
        )
        self.directory.replace(clusters)
        for name in self.directory.objects:
            self.controller(name)
        await self.refresh_links(set(self.controllers))
        if self.tenancy.replace(policies, namespaces):
            self.enqueue_all()
        if not durabletopics:
            return
        self._watch_listed = False
        mark = self.store.mark()
        bodies = await self.kube.list_durabletopics()
        listed = set()
        for body in bodies:
            obj = DurableTopicObject.from_body(body, self.default_cluster)
            listed.add(obj.ref)
            current = self.store.get(obj.ref)
            if self.store.touched_since(obj.ref, mark) or (current is not None and current.newer_than(obj)):
                continue
            self.controller(obj.cluster)._upsert(obj)
        for obj in self.store:
            if obj.ref not in listed and not self.store.touched_since(obj.ref, mark):
                log.info("%s no longer exists: forgotten", obj.ref)
                self.controller(obj.cluster).forget(obj.ref)

    async def refresh_links(self, names: set[str]) -> None:
        """Brings the links of these clusters up to date; the objects of a changed one are looked at again."""
        for name in sorted(names):
            if name == SETTINGS_CLUSTER and self.settings_link is not None:
                continue
            self._refresh_due.discard(name)
            controller = self.controller(name)
            await self.directory.refresh(name)
            controller.attach(self.directory.link(name))
            controller.enqueue_all()

    async def refresh_due(self) -> None:
        if self._refresh_due:
            await self.refresh_links(set(self._refresh_due))

    def enqueue_all(self) -> None:
        for controller in list(self.controllers.values()):
            controller.enqueue_all()

    # ----- loops -----

    def leader_loops(self) -> list[Awaitable[None]]:
        return [
            self.supervise(),
            self.resync_periodically(),
            write_policy_statuses(self.tenancy, self.store, self.kube, self.metrics, self.now),
            self.refresh_periodically(),
            self.cluster_statuses(),
        ]

    async def supervise(self) -> None:
        """Runs the loops of every controller, and of each one added later; a loop that fails ends
        them all (the leader starts them again)."""
        running: dict[str, list[asyncio.Future[None]]] = {}
        try:
            while True:
                self._changed.clear()
                await self.refresh_due()
                for name, controller in list(self.controllers.items()):
                    if name not in running:
                        running[name] = [
                            asyncio.ensure_future(loop)
                            for loop in (*controller.loops(), self.audit(controller))
                        ]
                tasks: list[asyncio.Future[Any]] = [t for ts in running.values() for t in ts]
                changed = asyncio.ensure_future(self._changed.wait())
                done, _ = await asyncio.wait([*tasks, changed], return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
                for task in done:
                    if task is not changed and not task.cancelled() and (error := task.exception()):
                        raise error
        finally:
            for task in (t for ts in running.values() for t in ts):
                task.cancel()
            await asyncio.gather(*(t for ts in running.values() for t in ts), return_exceptions=True)

    async def audit(self, controller: Controller) -> None:
        """The cluster-wide audit of one cluster, at its own interval."""
        while True:
            link = controller.link
            if link.kafka is not None and link.problem is None:
                try:
                    topics, broker = await read_cluster(link.kafka)
                    findings = audit.audit_cluster(topics, broker, controller.policy)
                    link.audit_counts = dict(audit.counts_by_rule(findings))
                    self.metrics.set_audit(link.audit_counts, metric_cluster(link.name))
                    log.info(
                        "cluster audit: %d findings over %d topics of cluster %s",
                        len(findings),
                        len(topics),
                        metric_cluster(link.name),
                    )
                except KafkaAdminError as error:
                    log.warning("cluster audit skipped for cluster %s: %s", metric_cluster(link.name), error)
            await asyncio.sleep(link.audit_interval or self.audit_interval)

    async def resync_periodically(self) -> None:
        """Every resync interval the small listings; the DurableTopics only when the watch was interrupted
        since they were last listed, and at least every FULL_LISTING_EVERY intervals (listing 10,000 of
        them is most of an idle operator's work)."""
        while True:
            await asyncio.sleep(self.resync_interval)
            listing = self._watch_listed or self._resyncs_without_listing + 1 >= FULL_LISTING_EVERY
            try:
                await self.resync(durabletopics=listing)
                self._resyncs_without_listing = 0 if listing else self._resyncs_without_listing + 1
            except Exception as error:
                log.warning("listing failed (%s); tried again in %.0f s", error, self.resync_interval)

    async def refresh_periodically(self) -> None:
        """Credentials are read again now and then: a rotated Secret gives new clients."""
        while True:
            await asyncio.sleep(SOURCE_REFRESH_SECONDS)
            self._refresh_due.update(self.directory.objects)
            self._changed.set()

    def close(self) -> None:
        """Closes every cluster's clients (at shutdown)."""
        for controller in self.controllers.values():
            link = controller.link
            if link.kafka is not None and self.directory.connector is not None:
                self.directory.connector.close(link.kafka, link.reassigner)

    # ----- the KafkaClusters' status -----

    async def cluster_statuses(self) -> None:
        """Every few seconds: each KafkaCluster is described (so that one with no DurableTopic is known
        too) and its status written when it says something new (the contact time alone, once a minute)."""
        while True:
            await asyncio.gather(*(self._cluster_status(name) for name in sorted(self.directory.objects)))
            await asyncio.sleep(CLUSTER_STATUS_SECONDS)

    async def _cluster_status(self, name: str) -> None:
        obj = self.directory.objects.get(name)
        if obj is None:
            return
        link = self.directory.link(name)
        if link.kafka is not None and link.problem is None:
            try:
                link.check(await link.kafka.describe_cluster(), self.now())
            except KafkaAdminError as error:
                link.lost(error)
        status = cluster_status(
            name,
            obj.generation,
            self._observation(obj, link),
            self._statuses.get(name, obj.status),
            self.now(),
        )
        previous = self._statuses.get(name, obj.status)
        written = self._written_at.get(name, 0.0)
        if says_nothing_new(status, previous, ignore=("lastContactTime",)) and (
            status.get("lastContactTime") == previous.get("lastContactTime")
            or time.monotonic() - written < CONTACT_WRITE_SECONDS
        ):
            return
        try:
            await self.kube.write_cluster_status(name, status, previous)
        except ApiError as error:
            log.warning("status of KafkaCluster %s not written: %s", name, error)
            return
        self._statuses[name] = status
        self._written_at[name] = time.monotonic()

    def _observation(self, obj: ClusterObject, link: ClusterLink) -> ClusterObservation:
        topics = sum(1 for o in self.store if o.cluster == obj.name)
        audit_counts = link.audit_counts or None
        if obj.spec is None:
            return ClusterObservation.failed(
                Reason.INVALID_SPEC, obj.problem or "unreadable", topics, audit_counts
            )
        failure = link.failure
        if link.problem is not None and failure is None:
            failure = (Reason.SECRET_NOT_FOUND, link.problem[1])
        if failure is not None:
            return ClusterObservation.failed(failure[0], failure[1], topics, audit_counts)
        if link.seen is None or link.last_contact is None:
            return ClusterObservation.failed(Reason.UNREACHABLE, "not reached yet", topics, audit_counts)
        return ClusterObservation.connected(link.seen, link.last_contact, topics, audit_counts)
