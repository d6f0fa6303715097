"""Runs the operator: builds the adapters and the loop from the settings, and lets kopf feed the loop."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import kopf

from durabletopic.adapters.kafka.admin import KafkaAdmin
from durabletopic.adapters.kafka.clientconfig import read_client_properties
from durabletopic.adapters.kafka.connector import KafkaConnector
from durabletopic.adapters.kafka.reassign import Reassigner
from durabletopic.adapters.kubernetes.client import KubeApi, load_configuration
from durabletopic.adapters.kubernetes.lease import LeaderElector
from durabletopic.adapters.kubernetes.resources import DurableTopicRequests
from durabletopic.adapters.prometheus import Metrics
from durabletopic.app.settings import OperatorSettings
from durabletopic.app.shutdown import StepDown
from durabletopic.core import crd
from durabletopic.core.tenancy import crd as policy_crd
from durabletopic.loop.clusters import ClusterLink, settings_link
from durabletopic.loop.controller import metric_cluster, utc_now
from durabletopic.loop.fleet import Fleet
from durabletopic.loop.leadership import reconcile_while_leader
from durabletopic.loop.store import SETTINGS_CLUSTER, Store
from durabletopic.loop.tenancy import Tenancy

log = logging.getLogger(__name__)

ANNOTATION_PREFIX = "durabletopic.dev"
LEASE_NAME = "durable-topic-operator"
CLUSTERS = "kafkaclusters"


class RetriedIsWarning(logging.Filter):
    """kopf logs a request it will retry as an ERROR; with endless retries (EndlessBackoffs) it is a
    warning: a fresh CRD's watch answering 429 for a second, or an API server restart."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno == logging.ERROR
            and record.name.startswith("kopf.")
            and "; will retry:" in str(record.msg)
        ):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class EndlessBackoffs:
    """Retry delays for kopf's API calls that never run out: an API server restart is waited for."""

    def __iter__(self) -> Iterator[float]:
        yield from (0.5, 1, 2, 3)
        yield from itertools.repeat(5.0)


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf here only watches: with no change handlers it never compares an object's versions, yet its
    default storage deep-copies every body on every event to build the essence it would compare. This
    one builds an empty essence and stores nothing."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def kopf_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/kopf-finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    settings.networking.error_backoffs = EndlessBackoffs()
    return settings


def build_registry(fleet: Fleet) -> kopf.OperatorRegistry:
    """kopf only watches: every event goes to the fleet, which decides what to do."""
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(kopf.login_via_client)

    @kopf.on.event(crd.GROUP, crd.VERSION, crd.PLURAL, registry=registry)
    async def durabletopic_event(event: Mapping[str, Any], body: Mapping[str, Any], **_: Any) -> None:
        fleet.observe_event(event.get("type"), body)

    @kopf.on.event(policy_crd.GROUP, policy_crd.VERSION, policy_crd.PLURAL, registry=registry)
    async def policy_event(event: Mapping[str, Any], body: Mapping[str, Any], **_: Any) -> None:
        fleet.observe_policy_event(event.get("type"), body)

    @kopf.on.event(crd.GROUP, crd.VERSION, CLUSTERS, registry=registry)
    async def cluster_event(event: Mapping[str, Any], body: Mapping[str, Any], **_: Any) -> None:
        fleet.observe_cluster_event(event.get("type"), body)

    @kopf.on.event("", "v1", "namespaces", registry=registry)
    async def namespace_event(event: Mapping[str, Any], body: Mapping[str, Any], **_: Any) -> None:
        fleet.observe_namespace_event(event.get("type"), body)

    return registry


async def run(settings: OperatorSettings, *, kubeconfig: str | None = None) -> None:
    metrics = Metrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
    client_config = read_client_properties(settings.kafka_config_file) if settings.kafka_config_file else {}

    def record(cluster: str, op: str, outcome: str, seconds: float) -> None:
        metrics.record_admin_request(op, outcome, seconds, cluster)

    settings_clients: ClusterLink | None = None
    if not settings.default_cluster:
        label = metric_cluster(SETTINGS_CLUSTER)
        settings_clients = settings_link(
            KafkaAdmin(settings.bootstrap_servers, client_config, on_request=lambda *a: record(label, *a)),
            Reassigner(settings.bootstrap_servers, client_config, on_request=lambda *a: record(label, *a)),
        )
    api = KubeApi(
        load_configuration(kubeconfig),
        concurrency=settings.status_writers,
        on_request=metrics.record_api_request,
    )
    fleet = Fleet(
        store=Store(),
        kube=DurableTopicRequests(
            api, reporting_instance=socket.gethostname(), now=utc_now, namespaces=settings.namespaces
        ),
        metrics=metrics,
        policy=settings.policy,
        connector=KafkaConnector(record, metric_cluster),
        settings_link=settings_clients,
        default_cluster=settings.default_cluster,
        tenancy=Tenancy(settings.internal_topic_exceptions),
        resync_interval=settings.resync_interval_seconds,
        audit_interval=settings.audit_interval_seconds,
        controller_settings={
            "batch_size": settings.batch_size,
            "sweep_interval": settings.sweep_interval_seconds,
            "throttle_bytes_per_second": settings.reassignment_throttle_bytes_per_second,
        },
    )
    registry = build_registry(fleet)
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    log.info(
        "durabletopic operator starting: kafka %s, namespaces %s, floors RF %d / min ISR %d",
        settings.bootstrap_servers,
        ",".join(settings.namespaces) or "all",
        settings.min_replication_factor,
        settings.min_insync_replicas,
    )
    # Its own client: a lease renewal must never queue behind a burst of status writes.
    lease_api = KubeApi(load_configuration(kubeconfig), concurrency=2, on_request=metrics.record_api_request)
    identity = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    elector = (
        LeaderElector(
            lease_api,
            namespace=settings.leader_election_namespace,
            name=LEASE_NAME,
            identity=identity,
        )
        if settings.leader_election
        else None
    )

    leading = asyncio.create_task(reconcile_while_leader(fleet, elector, metrics))
    step_down = StepDown(leading, elector)
    kopf.on.startup(registry=registry)(step_down.take_signals)
    kopf.on.cleanup(registry=registry)(step_down.cleanup)
    try:
        await kopf.operator(
            registry=registry,
            settings=kopf_settings(),
            standalone=True,
            clusterwide=not settings.namespaces,
            namespaces=list(settings.namespaces),
            liveness_endpoint=liveness,
            stop_flag=step_down.stop_flag,
            # Without one, kopf names itself after the password database's user name, and a UID with no
            # entry there (the image's, or one a platform picks at random) stops it at start.
            identity=identity,  # type: ignore[arg-type]  # kopf's Identity is a NewType of str
        )
    finally:
        await step_down()
        await api.close()
        await lease_api.close()
        fleet.close()
