"""Who owns a Kafka topic among the DurableTopics that name it, and whether deleting one deletes it. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from durabletopic.core.model import DeletionPolicy, DurableTopicSpec, ObservedTopic, TopicError
from durabletopic.core.reasons import EventType, Reason

Event = tuple[str, str, str]
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


def plan_deletion(
    spec: DurableTopicSpec, observed: ObservedTopic | None, recorded_topic_id: str | None, *, owner: bool
) -> tuple[DeleteTopic | None, str]:
    """Whether deleting the DurableTopic deletes the Kafka topic, and why."""
    if spec.deletion_policy is not DeletionPolicy.DELETE:
        return None, "deletionPolicy is Retain: the topic and its data are kept"
    if not owner:
        return None, "another DurableTopic owns this topic: it is kept"
    if observed is None:
        return None, "the topic no longer exists in Kafka"
    if not recorded_topic_id or observed.topic_id != recorded_topic_id:
        return None, (
            f"the topic's id {observed.topic_id} is not the one this DurableTopic recorded "
            f"({recorded_topic_id or 'none'}): it is kept"
        )
    return DeleteTopic(observed.name, observed.topic_id), "deletionPolicy is Delete: the topic is deleted"


def deleted(error: TopicError | None) -> bool:
    """Kafka's answer to DeleteTopics means the topic is gone."""
    return error is None or error.code == ALREADY_GONE


def retained_event(topic: str, why: str) -> Event:
    return (EventType.NORMAL, Reason.TOPIC_RETAINED, f"Kafka topic {topic} kept: {why}.")


def deleted_event(topic: str) -> Event:
    return (EventType.NORMAL, Reason.TOPIC_DELETED, f"Kafka topic {topic} deleted: deletionPolicy is Delete.")


def delete_failed_event(topic: str, error: TopicError) -> Event:
    return (EventType.WARNING, Reason.DELETE_FAILED, f"Kafka refused to delete {topic}: {error.message}")
