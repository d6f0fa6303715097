"""Runs the operator: kopf watches DurableTopics and feeds the controller."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import kopf

from durabletopic import audit, crd
from durabletopic.controller import Controller
from durabletopic.k8s.api import KubeApi, load_configuration
from durabletopic.k8s.leader import LeaderElector
from durabletopic.k8s.store import Store
from durabletopic.kafka.admin import KafkaAdmin, KafkaAdminError
from durabletopic.kafka.reassign import Reassigner
from durabletopic.metrics import Metrics
from durabletopic.model import Policy
from durabletopic.settings import OperatorSettings, read_client_properties

log = logging.getLogger(__name__)

ANNOTATION_PREFIX = "durabletopic.dev"
LEASE_NAME = "durable-topic-operator"


class EndlessBackoffs:
    """Retry delays for kopf's API calls that never run out: an API server restart is waited for."""

    def __iter__(self) -> Iterator[float]:
        yield from (0.5, 1, 2, 3)
        yield from itertools.repeat(5.0)


def kopf_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/kopf-finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    settings.networking.error_backoffs = EndlessBackoffs()
    return settings


async def audit_periodically(kafka: KafkaAdmin, metrics: Metrics, policy: Policy, interval: float) -> None:
    while True:
        try:
            topics, broker = await audit.read_cluster(kafka)
            findings = audit.audit_cluster(topics, broker, policy)
            metrics.set_audit(audit.counts_by_rule(findings))
            log.info("cluster audit: %d findings over %d topics", len(findings), len(topics))
        except KafkaAdminError as error:
            log.warning("cluster audit skipped: %s", error)
        await asyncio.sleep(interval)


def build_registry(controller: Controller) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(kopf.login_via_client)

    @kopf.on.event(crd.GROUP, crd.VERSION, crd.PLURAL, registry=registry)
    async def durabletopic_event(event: Mapping[str, Any], body: Mapping[str, Any], **_: Any) -> None:
        controller.observe_event(event.get("type"), body)

    return registry


async def run(settings: OperatorSettings, *, kubeconfig: str | None = None) -> None:
    metrics = Metrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
    client_config = read_client_properties(settings.kafka_config_file) if settings.kafka_config_file else {}
    kafka = KafkaAdmin(settings.bootstrap_servers, client_config, on_request=metrics.record_admin_request)
    api = KubeApi(
        load_configuration(kubeconfig),
        concurrency=settings.status_writers,
        on_request=metrics.record_api_request,
    )
    controller = Controller(
        store=Store(),
        kafka=kafka,
        api=api,
        metrics=metrics,
        policy=settings.policy,
        batch_size=settings.batch_size,
        sweep_interval=settings.sweep_interval_seconds,
        reporting_instance=socket.gethostname(),
        reassigner=Reassigner(
            settings.bootstrap_servers, client_config, on_request=metrics.record_admin_request
        ),
        throttle_bytes_per_second=settings.reassignment_throttle_bytes_per_second,
    )
    registry = build_registry(controller)
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
    elector = (
        LeaderElector(
            lease_api,
            namespace=settings.leader_election_namespace,
            name=LEASE_NAME,
            identity=f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}",
        )
        if settings.leader_election
        else None
    )
    leading = asyncio.create_task(reconcile_while_leader(controller, elector, kafka, metrics, settings))
    try:
        await kopf.operator(
            registry=registry,
            settings=kopf_settings(),
            standalone=True,
            clusterwide=not settings.namespaces,
            namespaces=list(settings.namespaces),
            liveness_endpoint=liveness,
        )
    finally:
        leading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leading
        if elector is not None:
            await elector.release()
        await api.close()
        await lease_api.close()
        kafka.close()


async def reconcile_while_leader(
    controller: Controller,
    elector: LeaderElector | None,
    kafka: KafkaAdmin,
    metrics: Metrics,
    settings: OperatorSettings,
) -> None:
    """Watches run on every replica so the store stays warm; only the leader reconciles."""
    while True:
        if elector is not None:
            await elector.acquire()
        metrics.leader.set(1)
        controller.enqueue_all()
        tasks = [
            asyncio.create_task(controller.run()),
            asyncio.create_task(controller.sweep()),
            asyncio.create_task(controller.write_client_profiles()),
            asyncio.create_task(
                audit_periodically(kafka, metrics, settings.policy, settings.audit_interval_seconds)
            ),
        ]
        holding = asyncio.create_task(elector.hold()) if elector is not None else None
        if holding is not None:
            tasks.append(holding)
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            metrics.leader.set(0)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if holding is not None and holding in done:
            log.warning("leadership lost: reconciling stops until this replica leads again")
            continue
        failed = [t for t in done if not t.cancelled() and t.exception() is not None]
        if not failed:
            return  # the operator is shutting down
        for task in failed:
            log.error("a reconcile loop failed; restarting them", exc_info=task.exception())
        await asyncio.sleep(1)
