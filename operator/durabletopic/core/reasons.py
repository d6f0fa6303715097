"""The words the operator speaks: condition types, reasons, severities and stages.

Every condition type and reason, event reason and severity the operator writes comes from here.
They are a contract with users, dashboards, alerts and GitOps tools: add words, never rename one.
"""

from __future__ import annotations

from enum import StrEnum


class ConditionType(StrEnum):
    """kstatus conditions: Ready is the summary; Reconciling and Stalled are "abnormal-true"."""

    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    PAUSED = "Paused"
    DRIFTED = "Drifted"
    REPLICAS_HEALTHY = "ReplicasHealthy"


class PolicyConditionType(StrEnum):
    """Conditions of a DurabilityPolicy."""

    READY = "Ready"
    CONFLICTING = "Conflicting"


class ClusterConditionType(StrEnum):
    """Conditions of a KafkaCluster."""

    READY = "Ready"


class Reason(StrEnum):
    """Reasons of conditions and events."""

    # Ready, Reconciling, Stalled
    RECONCILED = "Reconciled"
    CREATING = "Creating"
    UPDATING = "Updating"
    REASSIGNING = "Reassigning"
    KAFKA_UNAVAILABLE = "KafkaUnavailable"
    POLICY_VIOLATION = "PolicyViolation"
    INSUFFICIENT_BROKERS = "InsufficientBrokers"
    PARTITION_DECREASE_REFUSED = "PartitionDecreaseRefused"
    REPLICATION_FACTOR_DECREASE_REFUSED = "ReplicationFactorDecreaseRefused"
    TOPIC_CONFLICT = "TopicConflict"
    INVALID_CONFIG = "InvalidConfig"
    PAUSED = "Paused"
    DRIFTED = "Drifted"
    WAITING_FOR_REPLICAS = "WaitingForReplicas"
    TOPIC_REPLACED = "TopicReplaced"
    CLUSTER_CHANGED = "ClusterChanged"
    AUTHORIZATION_FAILED = "AuthorizationFailed"
    KAFKA_ERROR = "KafkaError"
    RECONCILE_FAILED = "ReconcileFailed"
    DELETE_PENDING = "DeletePending"
    # Drifted, and the drift events
    DRIFT_DETECTED = "DriftDetected"
    DRIFT_REVERTED = "DriftReverted"
    DRIFT_RESOLVED = "DriftResolved"
    # ReplicasHealthy, worst first
    OFFLINE = "Offline"
    UNDER_MIN_ISR = "UnderMinIsr"
    UNDER_REPLICATED = "UnderReplicated"
    ALL_IN_SYNC = "AllInSync"
    # A DurableTopic whose KafkaCluster cannot be used (missing, unreadable, its Secret missing)
    CLUSTER_NOT_READY = "ClusterNotReady"
    # KafkaCluster conditions (ClusterIdMismatch is also a DurableTopic's Stalled reason)
    CONNECTED = "Connected"
    UNREACHABLE = "Unreachable"
    AUTHENTICATION_FAILED = "AuthenticationFailed"
    CLUSTER_ID_MISMATCH = "ClusterIdMismatch"
    SECRET_NOT_FOUND = "SecretNotFound"
    INVALID_SPEC = "InvalidSpec"
    # DurabilityPolicy conditions
    ENFORCED = "Enforced"
    INVALID_POLICY = "InvalidPolicy"
    OVERLAPPING_PREFIXES = "OverlappingPrefixes"
    NO_OVERLAP = "NoOverlap"
    # events of the deletion path
    TOPIC_DELETED = "TopicDeleted"
    TOPIC_RETAINED = "TopicRetained"
    DELETE_FAILED = "DeleteFailed"


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class Severity(StrEnum):
    """How much a finding or a difference matters, on the scale of the kind of thing judged.

    A difference between Kafka and the spec (`status.drift`, the drift metrics) is weakening or
    benign; a problem of a manifest (`validate`) is an error (refused) or a warning; a cluster audit
    finding is critical, high, medium or low.
    """

    WEAKENING = "weakening"
    BENIGN = "benign"
    ERROR = "error"
    WARNING = "warning"
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


DIFFERENCE_SEVERITIES = (Severity.WEAKENING, Severity.BENIGN)
MANIFEST_SEVERITIES = (Severity.ERROR, Severity.WARNING)
AUDIT_SEVERITIES = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)


class Stage(StrEnum):
    """Who refuses a manifest with a finding."""

    API_SERVER = "api-server"  # the CRD's schema and CEL rules: kubectl apply fails
    # the floors, internal topics and DurabilityPolicy rules: the admission policies, and the operator
    ADMISSION_POLICY = "admission-policy"
    OPERATOR = "operator"  # admitted, then refused at reconcile time (Stalled)


class ReplicasChangeState(StrEnum):
    """`status.replicasChange.state`."""

    PENDING = "Pending"
    ONGOING = "Ongoing"
    DONE = "Done"
    FAILED = "Failed"


class DriftAction(StrEnum):
    """`status.drift[].action`: what the operator did about a drifted key."""

    REVERTED = "reverted"
    REPORTED = "reported"
