"""Who owns a Kafka topic among the DurableTopics that name it, and whether deleting one deletes it. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from durabletopic.core.model import DeletionPolicy, DurableTopicSpec, ObservedTopic, Recorded, TopicError
from durabletopic.core.reasons import EventType, Reason

Event = tuple[str, str, str]
# Annotations by which a person accepts a topic or a cluster that is not the one the object recorded.
ACCEPT_TOPIC_ID = "durabletopic.dev/accept-topic-id"
ACCEPT_CLUSTER_ID = "durabletopic.dev/accept-cluster-id"
# Annotation by which a person keeps the topic of a `deletionPolicy: Delete` object being deleted.
RETAIN_TOPIC = "durabletopic.dev/retain-topic"
# Kafka's answer to a delete that means the topic is gone either way.
ALREADY_GONE = "UNKNOWN_TOPIC_OR_PART"


@dataclass(frozen=True, slots=True)
class Claim:
    """A DurableTopic's claim on a Kafka topic name."""

    namespace: str
    name: str
    uid: str
    created: str = field(compare=False)


def owner_of(claims: Iterable[Claim]) -> Claim:
    """The oldest claim owns the topic; ties go to the lexically first namespace/name."""
    return min(claims, key=lambda c: (c.created, c.namespace, c.name, c.uid))


def conflict_message(topic: str, owner: str) -> str:
    return (
        f"Kafka topic {topic} is already managed by DurableTopic {owner}, which is older: "
        "this object changes nothing; delete it or give it another spec.topicName."
    )


@dataclass(frozen=True, slots=True)
class DeleteTopic:
    name: str
    topic_id: str


def kept_before_kafka(
    spec: DurableTopicSpec,
    *,
    owner: bool,
    others: Sequence[str],
    paused: bool,
    retain: bool,
    breaks: str | None = None,
) -> str | None:
    """Why deleting the DurableTopic keeps its topic without asking Kafka anything, or None.

    `others` are the other DurableTopics that still declare the topic (a move to another namespace:
    the new object is created first, then the old one deleted; the topic and its data stay).
    """
    if spec.deletion_policy is not DeletionPolicy.DELETE:
        return "deletionPolicy is Retain: the topic and its data are kept"
    if retain:
        return f"the {RETAIN_TOPIC} annotation keeps the topic and its data"
    if paused:
        return "the object is paused: the operator makes no Kafka call for it, so the topic is kept"
    if breaks:
        return f"the object breaks {breaks}: the operator makes no Kafka call for it, so the topic is kept"
    if not owner:
        return "another DurableTopic owns this topic: it is kept"
    if others:
        return f"DurableTopic {others[0]} still declares this topic: it is kept for that object"
    return None


def plan_deletion(
    spec: DurableTopicSpec,
    observed: ObservedTopic | None,
    record: Recorded,
    *,
    owner: bool,
    cluster_id: str | None = None,
) -> tuple[DeleteTopic | None, str]:
    """Whether deleting the DurableTopic deletes the Kafka topic, and why.

    Only the very topic this object recorded (its id, on its cluster) is ever deleted.
    """
    if spec.deletion_policy is not DeletionPolicy.DELETE:
        return None, "deletionPolicy is Retain: the topic and its data are kept"
    if not owner:
        return None, "another DurableTopic owns this topic: it is kept"
    if observed is None:
        return None, "the topic no longer exists in Kafka"
    if record.cluster_id and cluster_id and cluster_id != record.cluster_id:
        return None, (
            f"Kafka reports cluster id {cluster_id}, not the cluster {record.cluster_id} this DurableTopic "
            "recorded: the topic is kept"
        )
    if not record.topic_id or observed.topic_id != record.topic_id:
        return None, (
            f"the topic's id {observed.topic_id} is not the one this DurableTopic recorded "
            f"({record.topic_id or 'none'}): it is kept"
        )
    return DeleteTopic(observed.name, observed.topic_id), "deletionPolicy is Delete: the topic is deleted"


def delete_pending_message(topic: str, problem: str) -> str:
    return (
        f"Kafka topic {topic} could not be deleted yet: {problem}. The object is deleted once the topic is. "
        f"To keep the topic and let the object go now, annotate it {RETAIN_TOPIC}=true "
        "(or set spec.deletionPolicy to Retain)."
    )


def deleted(error: TopicError | None) -> bool:
    """Kafka's answer to DeleteTopics means the topic is gone."""
    return error is None or error.code == ALREADY_GONE


def retained_event(topic: str, why: str) -> Event:
    return (EventType.NORMAL, Reason.TOPIC_RETAINED, f"Kafka topic {topic} kept: {why}.")


def deleted_event(topic: str) -> Event:
    return (EventType.NORMAL, Reason.TOPIC_DELETED, f"Kafka topic {topic} deleted: deletionPolicy is Delete.")
