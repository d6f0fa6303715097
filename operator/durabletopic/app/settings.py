"""Operator settings: `DURABLETOPIC_*` environment variables, overridden by `durabletopic run` flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from durabletopic.core.model import DEFAULT_MIN_INSYNC_REPLICAS, DEFAULT_REPLICATION_FACTOR, Policy

ENV_PREFIX = "DURABLETOPIC_"


class OperatorSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    bootstrap_servers: str = Field(
        default="localhost:9092", description="Kafka bootstrap servers, host:port[,...]."
    )
    namespaces: tuple[str, ...] = Field(
        default=(), description="Namespaces to watch, comma-separated; empty watches every namespace."
    )
    min_replication_factor: int = Field(
        default=DEFAULT_REPLICATION_FACTOR, ge=1, description="Floor for spec.replicationFactor."
    )
    min_insync_replicas: int = Field(
        default=DEFAULT_MIN_INSYNC_REPLICAS, ge=1, description="Floor for spec.minInSyncReplicas."
    )
    metrics_port: int = Field(default=9102, ge=0, le=65535, description="Port of /metrics (0 turns it off).")
    health_port: int = Field(default=8080, ge=0, le=65535, description="Port of the liveness probe /healthz.")
    sweep_interval_seconds: float = Field(
        default=10.0, gt=0, description="How often every managed topic is re-read from Kafka."
    )
    resync_interval_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How often the operator lists KafkaClusters, DurabilityPolicies and Namespaces again, "
        "and every DurableTopic when the watch was interrupted since the last listing (at least every 12 "
        "intervals), so that one deleted while the watch was down is forgotten.",
    )
    audit_interval_seconds: float = Field(
        default=300.0, gt=0, description="How often the whole cluster is audited."
    )
    kafka_config_file: Path | None = Field(
        default=None,
        description="File of extra librdkafka client properties (security.protocol, sasl.*, ssl.*), key=value lines.",
    )
    reassignment_throttle_bytes_per_second: int = Field(
        default=50 * 1024 * 1024,
        ge=1024,
        description="Replication throttle (bytes/s per broker) while replicas are moved for a replication-factor change.",
    )
    leader_election: bool = Field(
        default=True, description="Elect one active replica through a Lease (off for a single local process)."
    )
    leader_election_namespace: str = Field(
        default_factory=lambda: os.environ.get("POD_NAMESPACE", "default"),
        description="Namespace of the Lease `durable-topic-operator` (default: the pod's namespace).",
    )
    default_cluster: str = Field(
        default="",
        description="The KafkaCluster that DurableTopics without spec.clusterRef use; empty: the bootstrap "
        "servers (and client properties) of these settings.",
    )
    internal_topic_exceptions: tuple[str, ...] = Field(
        default=(),
        description="Internal or system topics (names starting with __, _schemas, connect-configs, "
        "connect-offsets, connect-status) that DurableTopics may manage all the same, comma-separated.",
    )
    batch_size: int = Field(default=1000, ge=1, description="Most DurableTopics reconciled in one pass.")
    status_writers: int = Field(default=16, ge=1, description="Concurrent status writes to the API server.")

    @field_validator("namespaces", "internal_topic_exceptions", mode="before")
    @classmethod
    def _split_namespaces(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(n.strip() for n in value.split(",") if n.strip())
        return value

    @property
    def policy(self) -> Policy:
        return Policy(
            min_replication_factor=self.min_replication_factor, min_insync_replicas=self.min_insync_replicas
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> OperatorSettings:
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in cls.model_fields:
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
