"""`KafkaCluster`: a Kafka cluster the operator manages topics on, and how to reach it.

`KafkaClusterSpec` is the one source of the resource's schema (the CRD is generated from it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from durabletopic.core.model import MAX_REPLICATION_FACTOR


class SaslMechanism(StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class SourceKind(StrEnum):
    SECRET = "Secret"
    CONFIG_MAP = "ConfigMap"


class _Spec(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")


# The rules over several fields, each in Python (the model's validators: a spec that breaks one does not
# read, and the cluster is InvalidSpec) and in CEL (the CRD's, on the same object: the API server refuses it).
ONE_AUTHENTICATION_CEL = "has(self.sasl) != has(self.mutualTls)"
ONE_AUTHENTICATION_MESSAGE = "spec.authentication must set exactly one of sasl and mutualTls"
FLOORS_ORDER_CEL = (
    "!has(self.minInSyncReplicas) || !has(self.minReplicationFactor) "
    "|| self.minInSyncReplicas < self.minReplicationFactor"
)
FLOORS_ORDER_MESSAGE = "spec.floors.minInSyncReplicas must be less than spec.floors.minReplicationFactor, or no topic could meet both"

# The bounds of the namespace and the name of a Secret or ConfigMap.
_NAMESPACE: dict[str, Any] = {"minLength": 1, "maxLength": 63}
_NAME: dict[str, Any] = {"minLength": 1, "maxLength": 253}


class SaslCredentials(_Spec):
    """Where the SASL username and password are: keys of a Secret."""

    namespace: str = Field(
        description="Namespace of the Secret (the operator must be allowed to read it).",
        json_schema_extra=_NAMESPACE,
    )
    name: str = Field(description="Name of the Secret.", json_schema_extra=_NAME)
    username_key: str = Field(default="username", alias="usernameKey", description="Key of the username.")
    password_key: str = Field(default="password", alias="passwordKey", description="Key of the password.")


class Sasl(_Spec):
    """SASL authentication."""

    mechanism: SaslMechanism = Field(description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.")
    secret_ref: SaslCredentials = Field(alias="secretRef", description="The Secret holding the credentials.")


class ClientCertificate(_Spec):
    """Where the client certificate and its key are, for mutual TLS: keys of a Secret."""

    namespace: str = Field(
        description="Namespace of the Secret (the operator must be allowed to read it).",
        json_schema_extra=_NAMESPACE,
    )
    name: str = Field(description="Name of the Secret.", json_schema_extra=_NAME)
    certificate_key: str = Field(
        default="tls.crt", alias="certificateKey", description="Key of the PEM client certificate."
    )
    key_key: str = Field(default="tls.key", alias="keyKey", description="Key of the PEM private key.")


class MutualTls(_Spec):
    """Mutual TLS authentication."""

    secret_ref: ClientCertificate = Field(
        alias="secretRef", description="The Secret holding the certificate."
    )


class Authentication(_Spec):
    """How the operator authenticates to Kafka: SASL or mutual TLS (one of the two)."""

    sasl: Sasl | None = Field(
        default=None,
        description="SASL authentication: over TLS (SASL_SSL) when spec.tls is enabled, else SASL_PLAINTEXT.",
    )
    mutual_tls: MutualTls | None = Field(
        default=None, alias="mutualTls", description="Mutual TLS authentication (always over TLS)."
    )

    @model_validator(mode="after")
    def _one_method(self) -> Authentication:
        if (self.sasl is None) == (self.mutual_tls is None):
            raise ValueError(ONE_AUTHENTICATION_MESSAGE)
        return self


class CaBundle(_Spec):
    """Where the CA bundle is: a key of a Secret or a ConfigMap."""

    kind: SourceKind = Field(default=SourceKind.SECRET, description="Secret or ConfigMap.")
    namespace: str = Field(
        description="Namespace of the object (the operator must be allowed to read it).",
        json_schema_extra=_NAMESPACE,
    )
    name: str = Field(description="Name of the object.", json_schema_extra=_NAME)
    key: str = Field(default="ca.crt", description="Key of the PEM CA bundle.")


class Tls(_Spec):
    """TLS to the brokers."""

    enabled: bool = Field(default=True, description="Connect with TLS.")
    ca_ref: CaBundle | None = Field(
        default=None,
        alias="caRef",
        description="The CA bundle that signs the brokers' certificates; absent: the system's trust store.",
    )


class Floors(_Spec):
    """Durability floors for the topics of this cluster, on top of the operator-wide floors."""

    min_replication_factor: int | None = Field(
        default=None,
        alias="minReplicationFactor",
        description="Floor for spec.replicationFactor (at least the operator-wide floor).",
        json_schema_extra={"minimum": 1, "maximum": MAX_REPLICATION_FACTOR},
    )
    min_insync_replicas: int | None = Field(
        default=None,
        alias="minInSyncReplicas",
        description="Floor for spec.minInSyncReplicas (at least the operator-wide floor).",
        json_schema_extra={"minimum": 1, "maximum": MAX_REPLICATION_FACTOR},
    )

    @model_validator(mode="after")
    def _ordered(self) -> Floors:
        low, high = self.min_insync_replicas, self.min_replication_factor
        if low is not None and high is not None and low >= high:
            raise ValueError(FLOORS_ORDER_MESSAGE)
        return self


class KafkaClusterSpec(_Spec):
    """A Kafka cluster the operator manages topics on: how to reach it, which cluster it must be, and
    the floors of its topics."""

    bootstrap_servers: str = Field(
        alias="bootstrapServers",
        description="Kafka bootstrap servers, host:port[,host:port...].",
        json_schema_extra={"minLength": 1, "maxLength": 4096},
    )
    cluster_id: str | None = Field(
        default=None,
        alias="clusterId",
        description="The Kafka cluster id this resource must reach. When Kafka reports another, the cluster is "
        "Ready=False/ClusterIdMismatch and nothing is written to it. Empty: the first id seen is recorded in "
        "status.clusterId and pinned from then on; to accept another cluster, set this field to its id.",
    )
    authentication: Authentication | None = Field(
        default=None,
        description="How the operator authenticates: exactly one of sasl and mutualTls. Absent: no authentication.",
    )
    tls: Tls | None = Field(default=None, description="TLS to the brokers; absent: plaintext.")
    floors: Floors | None = Field(default=None, description="Floors for the topics of this cluster.")
    sweep_interval_seconds: float | None = Field(
        default=None,
        alias="sweepIntervalSeconds",
        description="How often the cluster's managed topics are re-read (default: the operator's setting).",
        json_schema_extra={"minimum": 1},
    )
    audit_interval_seconds: float | None = Field(
        default=None,
        alias="auditIntervalSeconds",
        description="How often the whole cluster is audited (default: the operator's setting).",
        json_schema_extra={"minimum": 10},
    )


@dataclass(frozen=True, slots=True)
class ClusterObject:
    """One KafkaCluster as the operator holds it; `problem` says why its spec could not be read."""

    name: str
    generation: int
    spec: KafkaClusterSpec | None
    status: Mapping[str, Any]
    problem: str | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ClusterObject:
        meta = body.get("metadata") or {}
        name, generation = str(meta.get("name", "")), int(meta.get("generation") or 0)
        status = dict(body.get("status") or {})
        try:
            return cls(name, generation, KafkaClusterSpec.model_validate(body.get("spec") or {}), status)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            problem = message if message.startswith("spec.") else f"spec.{where}: {message}"
            return cls(name, generation, None, status, problem)
