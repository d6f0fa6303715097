"""The deletion path: what happens to the topic when a DurableTopic is deleted.

The topic is deleted only for `deletionPolicy: Delete`, only by the object that owns it, only while
no other object declares it, only if the object is not paused and the retain annotation is not set,
and only if Kafka's topic is the very topic (id, cluster) the object recorded. In every other case
the finalizer is released and the topic kept. When Kafka cannot delete it, the object says why and
how to let it go (`core/ownership.delete_pending_message`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Collection, Mapping

from durabletopic.core import outcome as outcomes
from durabletopic.core.model import DeletionPolicy, DurableTopicSpec, ObjectRef, ObservedTopic
from durabletopic.core.outcome import Outcome, Subject
from durabletopic.core.ownership import (
    deleted,
    deleted_event,
    kept_before_kafka,
    plan_deletion,
    retained_event,
)
from durabletopic.loop.ports import KafkaPort
from durabletopic.loop.store import DurableTopicObject, Store
from durabletopic.loop.writes import Writes

Work = list[tuple[DurableTopicObject, DurableTopicSpec]]


def subject_of(obj: DurableTopicObject, attempts: int = 0, *, created_unseen: bool = False) -> Subject:
    return Subject(
        obj.topic_name,
        obj.status,
        obj.generation,
        obj.record,
        attempts,
        obj.accepted_topic_id,
        obj.accepted_cluster_id,
        created_unseen,
    )


class Deletions:
    def __init__(self, store: Store, kafka: KafkaPort, writes: Writes) -> None:
        self.store = store
        self.kafka = kafka
        self.writes = writes

    async def release_without_kafka(
        self, deleting: Work, violators: Collection[ObjectRef], breaks: Mapping[ObjectRef, str]
    ) -> Work:
        """Releases the objects whose topic is kept whatever Kafka says; returns those Kafka must decide.

        `violators` own nothing; `breaks` says which rule each of them breaks."""
        rest: Work = []
        releases: list[Awaitable[None]] = []
        for obj, spec in deleting:
            why = kept_before_kafka(
                spec,
                owner=self.store.owner(obj.key, violators) == obj.ref,
                others=[str(ref) for ref in self.store.claimants(obj.key) if ref != obj.ref],
                paused=obj.paused,
                retain=obj.retain_topic,
                breaks=breaks.get(obj.ref),
            )
            if why is None:
                rest.append((obj, spec))
            else:
                releases.append(self._keep(obj, spec, why))
        await asyncio.gather(*releases)
        return rest

    async def delete(
        self,
        deleting: Work,
        observed: Mapping[str, ObservedTopic | None],
        cluster_id: str | None,
        violators: Collection[ObjectRef] = (),
    ) -> dict[ObjectRef, Outcome]:
        """Deletes the topics these objects may delete (one batched request), and releases them."""
        results: dict[ObjectRef, Outcome] = {}
        to_delete: dict[str, DurableTopicObject] = {}
        kept = []
        for obj, spec in deleting:
            action, why = plan_deletion(
                spec,
                observed.get(obj.topic_name),
                obj.record,
                owner=self.store.owner(obj.key, violators) == obj.ref,
                cluster_id=cluster_id,
            )
            if action is None:
                kept.append(self._keep(obj, spec, why))
            else:
                to_delete[action.name] = obj
        await asyncio.gather(*kept)
        if not to_delete:
            return results
        answers = await self.kafka.delete_topics(sorted(to_delete))
        released = []
        for name, obj in to_delete.items():
            error = answers.get(name)
            if deleted(error):
                released.append(self._released(obj, *deleted_event(name)))
            else:
                assert error is not None
                problem = f"Kafka refused to delete it: {error.code}: {error.message}"
                results[obj.ref] = outcomes.delete_pending(subject_of(obj), problem)
        await asyncio.gather(*released)
        return results

    def pending(self, deleting: Work, problem: str) -> dict[ObjectRef, Outcome]:
        """Kafka could not be asked: every object waits, and says why."""
        return {obj.ref: outcomes.delete_pending(subject_of(obj), problem) for obj, _ in deleting}

    async def _keep(self, obj: DurableTopicObject, spec: DurableTopicSpec, why: str) -> None:
        if spec.deletion_policy is DeletionPolicy.DELETE:
            await self._released(obj, *retained_event(obj.topic_name, why))
        else:
            await self.writes.finalizer(obj, False)

    async def _released(self, obj: DurableTopicObject, kind: str, reason: str, message: str) -> None:
        await self.writes.event(obj, kind, reason, message)
        await self.writes.finalizer(obj, False)
