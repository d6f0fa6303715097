"""The KafkaCluster CustomResourceDefinition, generated from `KafkaClusterSpec`.

The spec's schema (names, types, bounds, defaults, descriptions: what `kubectl explain kafkacluster.spec`
shows) is converted from the model (`openapi.py`); its CEL rules are the model's rules over several
fields (`model.py`); the status is what `status.py` writes.
"""

from __future__ import annotations

from typing import Any

from durabletopic.core import crd as durabletopic_crd
from durabletopic.core.clusters.model import (
    FLOORS_ORDER_CEL,
    FLOORS_ORDER_MESSAGE,
    ONE_AUTHENTICATION_CEL,
    ONE_AUTHENTICATION_MESSAGE,
    KafkaClusterSpec,
)
from durabletopic.core.openapi import model_schema
from durabletopic.core.reasons import AUDIT_SEVERITIES, ClusterConditionType, Reason

KIND = "KafkaCluster"
PLURAL = "kafkaclusters"
SINGULAR = "kafkacluster"
SHORT_NAMES = ["kc"]
GROUP = durabletopic_crd.GROUP
VERSION = durabletopic_crd.VERSION
API_VERSION = durabletopic_crd.API_VERSION

# The reasons of the Ready condition, Connected first.
READY_REASONS = (
    Reason.CONNECTED,
    Reason.UNREACHABLE,
    Reason.AUTHENTICATION_FAILED,
    Reason.CLUSTER_ID_MISMATCH,
    Reason.SECRET_NOT_FOUND,
    Reason.INVALID_SPEC,
)
# Defaults written into stored objects: where the credentials are, and TLS on once `tls` is given.
_DEFAULTED = frozenset({"usernameKey", "passwordKey", "certificateKey", "keyKey", "kind", "key", "enabled"})
_RULES_BY_DEFINITION = {
    "Authentication": [{"rule": ONE_AUTHENTICATION_CEL, "message": ONE_AUTHENTICATION_MESSAGE}],
    "Floors": [
        {"rule": FLOORS_ORDER_CEL, "message": FLOORS_ORDER_MESSAGE, "fieldPath": ".minInSyncReplicas"}
    ],
}


def spec_schema() -> dict[str, Any]:
    return model_schema(KafkaClusterSpec, defaulted=_DEFAULTED, rules=_RULES_BY_DEFINITION)


def status_schema() -> dict[str, Any]:
    reasons = ", ".join(str(r) for r in READY_REASONS)
    return {
        "type": "object",
        "description": "What the operator found at the cluster. The facts of Kafka (clusterId, brokers, "
        "controllerId) are those of the last contact (lastContactTime), kept while the cluster cannot be reached.",
        "properties": {
            "observedGeneration": durabletopic_crd.OBSERVED_GENERATION,
            "conditions": durabletopic_crd.conditions_schema(
                durabletopic_crd.condition_schema(ClusterConditionType),
                f"Ready: whether the operator reaches the cluster and it is the cluster it must be. "
                f"Reasons: {reasons}.",
            ),
            "clusterId": {
                "type": "string",
                "description": "Kafka's id of the cluster, recorded at the first contact and pinned: Kafka reporting "
                "another id makes the cluster Ready=False/ClusterIdMismatch (see spec.clusterId).",
            },
            "brokers": {
                "type": "array",
                "description": "The brokers Kafka described, by id.",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer", "description": "The broker's node id."},
                        "rack": {"type": "string", "description": "Its broker.rack, when it has one."},
                    },
                },
            },
            "brokerCount": {"type": "integer", "description": "How many brokers Kafka described."},
            "controllerId": {"type": "integer", "description": "The node id of the active controller."},
            "durableTopics": {
                "type": "integer",
                "description": "DurableTopics on this cluster: naming it in spec.clusterRef, or, for the default "
                "cluster, naming none.",
            },
            "auditFindings": {
                "type": "array",
                "description": "Findings of the last audit of the whole cluster (every topic, managed or not, and "
                "the broker defaults), counted by rule: `durabletopic audit` lists them.",
                "items": {
                    "type": "object",
                    "properties": {
                        "rule": {"type": "string", "description": "The audit rule."},
                        "severity": {"type": "string", "enum": [str(s) for s in AUDIT_SEVERITIES]},
                        "count": {
                            "type": "integer",
                            "description": "Topics (or broker defaults) breaking it.",
                        },
                    },
                },
            },
            "lastContactTime": {
                "type": "string",
                "format": "date-time",
                "description": "When the operator last reached the cluster and found it the cluster it must be.",
            },
        },
    }


def build() -> dict[str, Any]:
    columns = [
        durabletopic_crd.condition_column("Ready", "Ready"),
        {"name": "Cluster-ID", "type": "string", "jsonPath": ".status.clusterId"},
        {"name": "Brokers", "type": "integer", "jsonPath": ".status.brokerCount"},
        {"name": "Topics", "type": "integer", "jsonPath": ".status.durableTopics"},
        durabletopic_crd.AGE_COLUMN,
    ]
    root = durabletopic_crd.root_schema(
        "A Kafka cluster the operator manages topics on: how to reach it and authenticate, which "
        "cluster it must be, and the floors of its topics. A DurableTopic names it in spec.clusterRef.",
        spec_schema(),
        status_schema(),
    )
    return durabletopic_crd.definition(
        durabletopic_crd.Names(KIND, PLURAL, SINGULAR, SHORT_NAMES), "Cluster", columns, root
    )
