"""The Kafka clusters the operator reaches: one link per cluster, with its clients, the id it must
have, and what was last seen of it.

A KafkaCluster object becomes a link once its spec reads and the Secrets and ConfigMaps it names are
there: its clients are made then (through the `Connector` port), made again when its connection
settings or credentials change, and closed when it goes. The operator's own bootstrap servers are the
link of objects without `spec.clusterRef` when no KafkaCluster is the default.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from durabletopic.core.clusters.connection import MissingSource, SourceRef, client_properties, sources
from durabletopic.core.clusters.model import ClusterObject
from durabletopic.core.model import ClusterInfo, Policy
from durabletopic.core.reasons import Reason
from durabletopic.loop.ports import (
    ApiError,
    Connector,
    KafkaAuthenticationFailed,
    KafkaPort,
    KafkaUnavailable,
    KubePort,
    ReassignPort,
)
from durabletopic.loop.store import SETTINGS_CLUSTER

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ClusterLink:
    """One cluster as the loop uses it.

    `problem` (a reason and a message) says why the cluster cannot be used at all (no such
    KafkaCluster, a spec that does not read, a missing Secret): nothing is asked of Kafka then.
    `expected_id` is the id the KafkaCluster's spec demands; `pinned_id` the id recorded in its
    status (the first one seen). `failure` is the last contact's failure, for the cluster's status.
    """

    name: str
    kafka: KafkaPort | None = None
    reassigner: ReassignPort | None = None
    problem: tuple[Reason, str] | None = None
    expected_id: str | None = None
    pinned_id: str | None = None
    pins: bool = False  # a KafkaCluster, whose status keeps the id: the settings' cluster keeps none
    floors: Policy | None = None
    sweep_interval: float | None = None
    audit_interval: float | None = None
    fingerprint: str = ""
    seen: ClusterInfo | None = None
    last_contact: str | None = None
    failure: tuple[Reason, str] | None = None
    audit_counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def check(self, info: ClusterInfo, now: str) -> str | None:
        """After Kafka described the cluster: a message when it is not the cluster this link must reach
        (then nothing may be written to it), else None; the contact is recorded either way."""
        self.seen = info
        self.last_contact = now
        wanted = self.expected_id or self.pinned_id
        if self.pins and info.cluster_id and wanted and info.cluster_id != wanted:
            message = (
                f"Kafka at this KafkaCluster's bootstrap servers reports cluster id {info.cluster_id}, but "
                f"{self.name} must be cluster {wanted}: nothing is written to it. If the new cluster is "
                f"intended, set spec.clusterId of KafkaCluster {self.name} to {info.cluster_id}."
            )
            self.failure = (Reason.CLUSTER_ID_MISMATCH, message)
            return message
        if self.pins and info.cluster_id and not self.pinned_id:
            self.pinned_id = info.cluster_id
        self.failure = None
        return None

    def lost(self, error: Exception) -> None:
        reason = (
            Reason.AUTHENTICATION_FAILED
            if isinstance(error, KafkaAuthenticationFailed)
            else Reason.UNREACHABLE
        )
        self.failure = (reason, str(error))


class NoClients:
    """The Kafka port of a cluster that has no clients (yet): every call fails as unreachable."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster

    def __getattr__(self, name: str) -> Any:
        async def unreachable(*_: Any, **__: Any) -> Any:
            raise KafkaUnavailable(f"KafkaCluster {self.cluster} has no clients")

        return unreachable


def settings_link(kafka: KafkaPort | None, reassigner: ReassignPort | None) -> ClusterLink:
    return ClusterLink(SETTINGS_CLUSTER, kafka, reassigner)


def _fingerprint(bootstrap: str, properties: Mapping[str, str]) -> str:
    digest = hashlib.sha256(bootstrap.encode())
    for key in sorted(properties):
        digest.update(f"\0{key}\0{properties[key]}".encode())
    return digest.hexdigest()


class ClusterDirectory:
    """The KafkaCluster objects known and their links."""

    def __init__(self, kube: KubePort, connector: Connector | None) -> None:
        self.kube = kube
        self.connector = connector
        self.objects: dict[str, ClusterObject] = {}
        self.links: dict[str, ClusterLink] = {}

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> str:
        """A KafkaCluster event; returns its name (its link is refreshed by `refresh`)."""
        obj = ClusterObject.from_body(body)
        if event_type == "DELETED":
            self.objects.pop(obj.name, None)
        else:
            self.objects[obj.name] = obj
        return obj.name

    def replace(self, bodies: list[dict[str, Any]]) -> None:
        self.objects = {o.name: o for o in map(ClusterObject.from_body, bodies)}

    def link(self, name: str) -> ClusterLink:
        found = self.links.get(name)
        if found is None:
            found = self.links[name] = ClusterLink(name, pins=True)
            found.problem = (Reason.CLUSTER_NOT_READY, f"KafkaCluster {name} does not exist")
        return found

    async def refresh(self, name: str) -> bool:
        """Brings the link up to date with its KafkaCluster and Secrets; True when its clients changed."""
        link = self.link(name)
        obj = self.objects.get(name)
        if obj is None:
            changed = self._close(link)
            link.problem = (Reason.CLUSTER_NOT_READY, f"KafkaCluster {name} does not exist")
            return changed
        if obj.spec is None:
            changed = self._close(link)
            link.problem = (Reason.CLUSTER_NOT_READY, f"KafkaCluster {name} cannot be read: {obj.problem}")
            return changed
        spec = obj.spec
        link.expected_id = spec.cluster_id
        if spec.cluster_id is None:
            pinned = obj.status.get("clusterId")
            link.pinned_id = pinned if isinstance(pinned, str) and pinned else link.pinned_id
        else:
            link.pinned_id = spec.cluster_id
        floors = spec.floors
        link.floors = (
            Policy(
                min_replication_factor=floors.min_replication_factor or 1,
                min_insync_replicas=floors.min_insync_replicas or 1,
            )
            if floors is not None
            else None
        )
        link.sweep_interval = spec.sweep_interval_seconds
        link.audit_interval = spec.audit_interval_seconds
        try:
            data = {ref: await self._read(ref) for ref in sources(spec)}
            properties = client_properties(spec, {r: d for r, d in data.items() if d is not None})
        except (MissingSource, ApiError) as error:
            changed = self._close(link)
            link.problem = (Reason.CLUSTER_NOT_READY, f"KafkaCluster {name}: {error}")
            link.failure = (Reason.SECRET_NOT_FOUND, str(error))
            return changed
        fingerprint = _fingerprint(spec.bootstrap_servers, properties)
        link.problem = None
        if fingerprint == link.fingerprint and link.kafka is not None:
            return False
        self._close(link)
        if self.connector is None:
            link.problem = (Reason.CLUSTER_NOT_READY, "this operator reaches no KafkaCluster")
            return True
        link.kafka, link.reassigner = self.connector.connect(name, spec.bootstrap_servers, properties)
        link.fingerprint = fingerprint
        log.info("KafkaCluster %s: clients made for %s", name, spec.bootstrap_servers)
        return True

    async def _read(self, ref: SourceRef) -> dict[str, str] | None:
        return await self.kube.read_source(str(ref.kind), ref.namespace, ref.name)

    def _close(self, link: ClusterLink) -> bool:
        if link.kafka is None:
            return False
        if self.connector is not None:
            self.connector.close(link.kafka, link.reassigner)
        link.kafka = link.reassigner = None
        link.fingerprint = ""
        return True
