"""The DurableTopic CustomResourceDefinition, generated from the rules.

`crds/durabletopics.durabletopic.dev.yaml` is this module's output (`make crds`); a test keeps the
two equal.
"""

from __future__ import annotations

from typing import Any

import yaml

from durabletopic import rules

GROUP = "durabletopic.dev"
VERSION = "v1alpha1"
KIND = "DurableTopic"
PLURAL = "durabletopics"
SINGULAR = "durabletopic"
SHORT_NAMES = ["dt"]
API_VERSION = f"{GROUP}/{VERSION}"


def _cel(path: str) -> list[dict[str, str]]:
    validations = []
    for rule in rules.CEL_RULES:
        if rule.path != path:
            continue
        validation = {"rule": rule.expression, "message": rule.message}
        relative = rule.field.removeprefix(path)
        if relative.startswith("."):
            validation["fieldPath"] = relative
        validations.append(validation)
    return validations


def _spec_schema() -> dict[str, Any]:
    config_schema: dict[str, Any] = {
        "type": "object",
        "description": "Other topic configs (retention.ms, cleanup.policy, ...), set on the topic itself. "
        "min.insync.replicas and unclean.leader.election.enable are owned by the durability fields and not allowed here.",
        "maxProperties": rules.MAX_CONFIG_ENTRIES,
        "additionalProperties": {"type": "string", "maxLength": rules.MAX_CONFIG_VALUE_LENGTH},
        "x-kubernetes-validations": _cel("spec.config"),
    }
    schema: dict[str, Any] = {
        "type": "object",
        "description": "The Kafka topic this object declares and the durability it must have.",
        "required": ["partitions"],
        "properties": {
            "topicName": {
                "type": "string",
                "description": "Name of the Kafka topic. Defaults to metadata.name. Immutable.",
                "minLength": 1,
                "maxLength": rules.TOPIC_NAME_MAX_LENGTH,
                "pattern": rules.TOPIC_NAME_PATTERN,
                "x-kubernetes-validations": _cel("spec.topicName"),
            },
            "partitions": {
                "type": "integer",
                "description": "Number of partitions. May only grow: Kafka cannot remove partitions.",
                "minimum": 1,
                "maximum": rules.MAX_PARTITIONS,
            },
            "replicationFactor": {
                "type": "integer",
                "description": "Replicas of each partition. At least the platform's floor (3 by default).",
                "default": 3,
                "minimum": 1,
                "maximum": rules.MAX_REPLICATION_FACTOR,
            },
            "minInSyncReplicas": {
                "type": "integer",
                "description": "min.insync.replicas written on the topic: replicas that must have a message before "
                "an acks=all producer is told it is written. At least the platform's floor (2 by default) "
                "and less than replicationFactor.",
                "default": 2,
                "minimum": 1,
                "maximum": rules.MAX_REPLICATION_FACTOR,
            },
            "config": config_schema,
            "deletionPolicy": {
                "type": "string",
                "description": "Retain (default) keeps the Kafka topic and its data when this object is deleted; "
                "Delete deletes the topic too.",
                "enum": ["Retain", "Delete"],
                "default": "Retain",
            },
            "driftPolicy": {
                "type": "string",
                "description": "Enforce (default) puts right any change made to the topic behind the operator's "
                "back; Report only reports it.",
                "enum": ["Enforce", "Report"],
                "default": "Enforce",
            },
        },
        "x-kubernetes-validations": _cel("spec"),
    }
    return schema


def _condition_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {
                "type": "string",
                "description": "Ready, Reconciling, Stalled, Paused, Drifted or ReplicasHealthy.",
            },
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string", "description": "One CamelCase word saying why."},
            "message": {"type": "string", "description": "A sentence a person can act on."},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer"},
        },
    }


def _status_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "What the operator observed in Kafka and concluded.",
        "properties": {
            "observedGeneration": {
                "type": "integer",
                "description": "The metadata.generation this status describes.",
            },
            "topicName": {"type": "string", "description": "The Kafka topic."},
            "topicId": {
                "type": "string",
                "description": "Kafka's id of the topic (changes when it is recreated).",
            },
            "partitions": {"type": "integer", "description": "Partitions in Kafka."},
            "replicationFactor": {
                "type": "integer",
                "description": "Smallest replica count of any partition in Kafka.",
            },
            "minInSyncReplicas": {
                "type": "integer",
                "description": "min.insync.replicas in force on the topic.",
            },
            "unmanagedConfigs": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Configs set on the topic that the spec does not name (left alone).",
            },
            "conditions": {
                "type": "array",
                "items": _condition_schema(),
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
            "drift": {
                "type": "array",
                "description": "Keys in which Kafka differs from the spec and the policy, found by the sweep.",
                "items": {
                    "type": "object",
                    "properties": {
                        "key": {
                            "type": "string",
                            "description": "A topic config, replicationFactor, partitions or topic.",
                        },
                        "expected": {"type": "string"},
                        "actual": {"type": "string"},
                        "severity": {"type": "string", "enum": ["weakening", "benign"]},
                        "firstSeen": {"type": "string", "format": "date-time"},
                        "action": {"type": "string", "enum": ["reverted", "reported"]},
                    },
                },
            },
            "replicasChange": {
                "type": "object",
                "description": "Progress of a replication-factor change done by partition reassignment.",
                "properties": {
                    "targetReplicationFactor": {"type": "integer"},
                    "state": {"type": "string", "enum": ["Pending", "Ongoing", "Done", "Failed"]},
                    "partitionsDone": {"type": "integer"},
                    "partitionsTotal": {"type": "integer"},
                    "message": {"type": "string"},
                },
            },
            "health": {
                "type": "object",
                "description": "Replica health of the topic's partitions at the last sweep.",
                "properties": {
                    "partitions": {"type": "integer"},
                    "underReplicated": {
                        "type": "integer",
                        "description": "Partitions whose ISR is smaller than their replicas.",
                    },
                    "underMinIsr": {
                        "type": "integer",
                        "description": "Partitions with no leader or fewer in-sync replicas than min.insync.replicas.",
                    },
                    "atMinIsr": {
                        "type": "integer",
                        "description": "Partitions one failure away from under-min-ISR.",
                    },
                    "offline": {"type": "integer", "description": "Partitions with no leader."},
                },
            },
            "lastReconcileTime": {
                "type": "string",
                "format": "date-time",
                "description": "When the operator last changed this status.",
            },
        },
    }


def build() -> dict[str, Any]:
    columns = [
        {"name": "Topic", "type": "string", "jsonPath": ".status.topicName"},
        {"name": "Partitions", "type": "integer", "jsonPath": ".spec.partitions"},
        {"name": "RF", "type": "integer", "jsonPath": ".spec.replicationFactor"},
        {"name": "MinISR", "type": "integer", "jsonPath": ".spec.minInSyncReplicas"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Reason", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].reason'},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "durable-topic-operator"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": SHORT_NAMES,
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A Kafka topic that is durable by construction: replication factor, "
                            "min.insync.replicas and unclean leader election enforced by the operator.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": _spec_schema(),
                                "status": _status_schema(),
                            },
                            "x-kubernetes-validations": _cel(""),
                        }
                    },
                }
            ],
        },
    }


def render() -> str:
    header = "# Generated from operator/durabletopic/crd.py by `make crds`; do not edit by hand.\n"
    return header + yaml.safe_dump(build(), sort_keys=False, width=120)
