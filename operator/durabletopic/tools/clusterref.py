"""The Kafka a command reaches: given by `--bootstrap-servers`, or read from the KafkaCluster `--cluster`
names and the Secrets and ConfigMaps it points at (through a kubeconfig), then checked to be the cluster
that KafkaCluster must be before anything is asked of it.

The Kubernetes and Kafka clients load only when `--cluster` is used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from durabletopic.core.clusters.connection import MissingSource, SourceRef, client_properties, sources
from durabletopic.core.clusters.model import ClusterObject, KafkaClusterSpec

SPEC_CLUSTER_ID = "spec.clusterId"
STATUS_CLUSTER_ID = "status.clusterId"


class TargetError(Exception):
    """The command cannot use the Kafka cluster it was pointed at; the message says why."""


class SourceReader(Protocol):
    """Reads a KafkaCluster and the objects it names (`adapters.kubernetes.clusterread.ClusterReader`).
    Both return None when the object does not exist and raise `KubeReadError` when it cannot be read."""

    def kafka_cluster(self, name: str) -> Mapping[str, Any] | None: ...

    def source(self, kind: str, namespace: str, name: str) -> Mapping[str, str] | None: ...


@dataclass(frozen=True, slots=True)
class KafkaTarget:
    """Where a command connects and with which librdkafka properties. With `--cluster`, `cluster` is the
    KafkaCluster, and `expected_id` the cluster id it demands (read from `expected_id_field`), if any."""

    bootstrap_servers: str
    client_config: dict[str, str] = field(default_factory=dict, repr=False)  # holds credentials
    cluster: str | None = None
    expected_id: str | None = None
    expected_id_field: str = SPEC_CLUSTER_ID

    def __str__(self) -> str:
        if self.cluster is None:
            return self.bootstrap_servers
        return f"{self.bootstrap_servers} (KafkaCluster {self.cluster})"


def from_kafka_cluster(name: str, reader: SourceReader, base_config: Mapping[str, str]) -> KafkaTarget:
    """The target the KafkaCluster `name` describes; its properties are merged over `base_config`.
    Raises TargetError naming what is missing or refused."""
    from durabletopic.adapters.kubernetes.clusterread import KubeReadError

    try:
        body = reader.kafka_cluster(name)
    except KubeReadError as error:
        raise TargetError(str(error)) from None
    if body is None:
        raise TargetError(f"KafkaCluster {name} not found")
    found = ClusterObject.from_body(body)
    if found.spec is None:
        raise TargetError(f"KafkaCluster {name} cannot be used: {found.problem}")
    try:
        properties = _client_properties(found.spec, reader)
    except (KubeReadError, MissingSource) as error:
        raise TargetError(f"KafkaCluster {name}: {error}") from None
    expected_id, id_field = _expected_id(found)
    return KafkaTarget(
        found.spec.bootstrap_servers,
        {**base_config, **properties},
        cluster=name,
        expected_id=expected_id,
        expected_id_field=id_field,
    )


def _client_properties(spec: KafkaClusterSpec, reader: SourceReader) -> dict[str, str]:
    data: dict[SourceRef, Mapping[str, str]] = {}
    for ref in sources(spec):
        values = reader.source(str(ref.kind), ref.namespace, ref.name)
        if values is not None:
            data[ref] = values
    return client_properties(spec, data)


def _expected_id(found: ClusterObject) -> tuple[str | None, str]:
    """The id the spec demands, else the one the operator pinned in the status."""
    if found.spec is not None and found.spec.cluster_id:
        return found.spec.cluster_id, SPEC_CLUSTER_ID
    pinned = found.status.get("clusterId")
    if isinstance(pinned, str) and pinned:
        return pinned, STATUS_CLUSTER_ID
    return None, SPEC_CLUSTER_ID


def id_mismatch(target: KafkaTarget, reported_id: str | None) -> str | None:
    """Why the cluster Kafka reports is not the one the target must reach; None when it is (or any will do)."""
    if target.expected_id is None or reported_id == target.expected_id:
        return None
    reported = f"cluster id {reported_id}" if reported_id else "no cluster id"
    return (
        f"Kafka at {target.bootstrap_servers} reports {reported}, but KafkaCluster {target.cluster} must be "
        f"cluster {target.expected_id} ({target.expected_id_field}): nothing was done"
    )


async def reported_cluster_id(target: KafkaTarget, timeout_s: float) -> str | None:
    """The id Kafka reports (one describe-cluster request)."""
    from durabletopic.adapters.kafka.admin import KafkaAdmin  # confluent-kafka loads only when needed

    kafka = KafkaAdmin(target.bootstrap_servers, target.client_config, request_timeout_s=timeout_s)
    try:
        return (await asyncio.wait_for(kafka.describe_cluster(), timeout_s * 2 + 5)).cluster_id
    finally:
        kafka.close()


def check_cluster_id(target: KafkaTarget, timeout_s: float) -> None:
    """Raises TargetError when Kafka is not the cluster the target must reach, or cannot tell."""
    if target.expected_id is None:
        return
    from durabletopic.loop.ports import KafkaAdminError

    try:
        reported = asyncio.run(reported_cluster_id(target, timeout_s))
    except (KafkaAdminError, TimeoutError) as error:
        raise TargetError(
            f"cannot check the cluster id of Kafka at {target}: {error or type(error).__name__}"
        ) from None
    mismatch = id_mismatch(target, reported)
    if mismatch is not None:
        raise TargetError(mismatch)


def resolve(
    bootstrap_servers: str | None,
    cluster: str | None,
    *,
    kubeconfig: str | None,
    base_config: Mapping[str, str],
    timeout_s: float,
) -> KafkaTarget:
    """The target of `--bootstrap-servers`, or of `--cluster` read through `kubeconfig` and checked."""
    if cluster is None:
        if bootstrap_servers is None:
            raise TargetError("give --bootstrap-servers or --cluster")
        return KafkaTarget(bootstrap_servers, dict(base_config))
    from durabletopic.adapters.kubernetes.clusterread import ClusterReader, KubeReadError

    try:
        reader = ClusterReader(kubeconfig, timeout_s=timeout_s)
    except KubeReadError as error:
        raise TargetError(str(error)) from None
    target = from_kafka_cluster(cluster, reader, base_config)
    check_cluster_id(target, timeout_s)
    return target
