"""From a KafkaCluster's spec and the Secrets and ConfigMaps it names, to the client properties that
reach it (librdkafka's names; certificates as PEM text, never written to disk here). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from durabletopic.core.clusters.model import KafkaClusterSpec, SourceKind


@dataclass(frozen=True, slots=True, order=True)
class SourceRef:
    """A Secret or ConfigMap a KafkaCluster names."""

    kind: SourceKind
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


class MissingSource(Exception):
    """A Secret or ConfigMap, or a key of one, that the KafkaCluster needs is not there."""


def sources(spec: KafkaClusterSpec) -> list[SourceRef]:
    """The Secrets and ConfigMaps to read, each once."""
    found: set[SourceRef] = set()
    auth = spec.authentication
    if auth is not None and auth.sasl is not None:
        ref = auth.sasl.secret_ref
        found.add(SourceRef(SourceKind.SECRET, ref.namespace, ref.name))
    if auth is not None and auth.mutual_tls is not None:
        cert = auth.mutual_tls.secret_ref
        found.add(SourceRef(SourceKind.SECRET, cert.namespace, cert.name))
    if spec.tls is not None and spec.tls.ca_ref is not None:
        ca = spec.tls.ca_ref
        found.add(SourceRef(ca.kind, ca.namespace, ca.name))
    return sorted(found)


def _value(data: Mapping[SourceRef, Mapping[str, str]], ref: SourceRef, key: str) -> str:
    values = data.get(ref)
    if values is None:
        raise MissingSource(f"{ref} not found")
    if key not in values:
        raise MissingSource(f"{ref} has no key {key}")
    return values[key]


def client_properties(spec: KafkaClusterSpec, data: Mapping[SourceRef, Mapping[str, str]]) -> dict[str, str]:
    """librdkafka properties for the cluster; `data` holds each source's keys (decoded). Raises
    MissingSource naming what is missing."""
    auth = spec.authentication
    sasl = auth.sasl if auth is not None else None
    mutual = auth.mutual_tls if auth is not None else None
    tls = (spec.tls is not None and spec.tls.enabled) or mutual is not None
    properties: dict[str, str] = {}
    if sasl is not None:
        properties["security.protocol"] = "SASL_SSL" if tls else "SASL_PLAINTEXT"
        properties["sasl.mechanism"] = str(sasl.mechanism)
        ref = SourceRef(SourceKind.SECRET, sasl.secret_ref.namespace, sasl.secret_ref.name)
        properties["sasl.username"] = _value(data, ref, sasl.secret_ref.username_key)
        properties["sasl.password"] = _value(data, ref, sasl.secret_ref.password_key)
    elif tls:
        properties["security.protocol"] = "SSL"
    if mutual is not None:
        cert = mutual.secret_ref
        ref = SourceRef(SourceKind.SECRET, cert.namespace, cert.name)
        properties["ssl.certificate.pem"] = _value(data, ref, cert.certificate_key)
        properties["ssl.key.pem"] = _value(data, ref, cert.key_key)
    if spec.tls is not None and spec.tls.ca_ref is not None:
        ca = spec.tls.ca_ref
        properties["ssl.ca.pem"] = _value(data, SourceRef(ca.kind, ca.namespace, ca.name), ca.key)
    return properties
