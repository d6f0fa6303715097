"""The sweep's check of quiet objects: one read per chunk of topics, compared as a digest.

Every settled object's topic is read in its chunk; chunks keep their topics while objects come and go
(a hash of the name picks the chunk). An object is *quiet* when its last pass changed nothing (the
controller keeps what that pass saw). Its *anchor* is the digest of the chunk read whose decoded answer
gave that pass its view of the topic. At the next sweep the chunk is read again: a quiet object whose
anchor equals the new digest sees exactly what its last pass saw, and is not looked at; when some quiet
object is not anchored to the new digest, the answer is decoded and every other object of the chunk
takes it as its pass's read (prefetched), and is anchored to it when the pass leaves it quiet. A read
that fails leaves its objects to the ordinary path: a pass of their own, reading Kafka itself.

Configs outside the planner's keys are read in full every few minutes. For a quiet object a digest of
every config of its chunk's topics stands for that read while it equals the configs digest of the last
full read its own pass was planned on (its *full anchor*).

An idle sweep does no work per object: the objects anchored to each digest are kept as a set, so a
chunk's quiet objects are one set intersection, and each chunk's next full check is worked out again
only when the full read or full anchor of one of its objects changed.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from durabletopic.core.model import ClusterInfo, ObjectRef, ObservedTopic
from durabletopic.loop.ports import ChunkRead, KafkaUnavailable, ReassignPort, TopicReads
from durabletopic.loop.store import DurableTopicObject

# Whether a quiet object's topic, as a decoded chunk read shows it in this cluster, is what its last pass saw.
Unchanged = Callable[[DurableTopicObject, ObservedTopic, ClusterInfo], bool]

log = logging.getLogger(__name__)

# About this many topics per request: 10,000 topics are 9 chunks, 18 requests per sweep.
CHUNK_TOPICS = 1200
# A prefetched read is used by a pass that starts within this long of it, else read again. Each chunk's
# objects are queued as soon as it is read, so their passes start while the next chunks are read.
PREFETCH_SECONDS = 5.0
# After this many chunk reads of one sweep fail, the sweeps leave every object to its own read for
# FAILED_READ_PAUSE_SECONDS; after fewer, only the failed chunks' objects read their own.
FAILED_CHUNKS_TO_PAUSE = 2
FAILED_READ_PAUSE_SECONDS = 30.0
# An object with no full anchor (a new one, or every one after a start) gets one this long after its
# last full read of its own, well before the interval between full reads is over.
UNANCHORED_FULL_READ_SECONDS = 60.0


@dataclass(frozen=True)
class Prefetched:
    obj: DurableTopicObject  # the copy the sweep saw: a newer copy is read afresh
    observed: ObservedTopic | None
    cluster: ClusterInfo
    digest: bytes
    configs_digest: bytes
    complete: bool  # every config of the topic was read
    at: float


@dataclass(frozen=True)
class Candidate:
    """An object whose generation is applied and whose topic is known: its topic is read by key in its
    chunk (whether or not its configs were read in full lately: that is the full check's business)."""

    obj: DurableTopicObject
    keys: frozenset[str]  # the config keys its planner reads
    quiet: bool  # its last pass changed nothing


@dataclass
class _Chunk:
    candidates: list[Candidate]
    keys: dict[str, frozenset[str] | None]  # the keys read of each topic; never changed once built
    refs: frozenset[ObjectRef]
    quiet_refs: frozenset[ObjectRef]
    full_check_at: float | None = field(default=None)  # when it is due a full check; None: not known

    @classmethod
    def of(cls, candidates: list[Candidate]) -> _Chunk:
        return cls(
            candidates,
            _keys(candidates),
            frozenset(c.obj.ref for c in candidates),
            frozenset(c.obj.ref for c in candidates if c.quiet),
        )


class FullReadTimes:
    """When each object's configs were last read in full. Every change is reported to `changed`."""

    def __init__(self, changed: Callable[[ObjectRef], None]) -> None:
        self._at: dict[ObjectRef, float] = {}
        self._changed = changed

    def __contains__(self, ref: ObjectRef) -> bool:
        return ref in self._at

    def __getitem__(self, ref: ObjectRef) -> float:
        return self._at[ref]

    def __setitem__(self, ref: ObjectRef, at: float) -> None:
        self._at[ref] = at
        self._changed(ref)

    def get(self, ref: ObjectRef, default: float) -> float:
        return self._at.get(ref, default)

    def pop(self, ref: ObjectRef, default: float | None = None) -> float | None:
        if ref in self._at:
            self._changed(ref)
        return self._at.pop(ref, default)

    def clear(self) -> None:
        for ref in self._at:
            self._changed(ref)
        self._at.clear()


def chunk_of(candidates: Collection[Candidate]) -> list[list[Candidate]]:
    """Candidates in chunks that keep their topics as the set changes: a topic's chunk is chosen by a
    hash of its name, so one object more or less changes one chunk's request, not every chunk's."""
    count = max(1, math.ceil(len(candidates) / CHUNK_TOPICS))
    chunks: list[list[Candidate]] = [[] for _ in range(count)]
    for candidate in candidates:
        chunks[zlib.crc32(candidate.obj.topic_name.encode()) % count].append(candidate)
    return [sorted(c, key=lambda c: c.obj.topic_name) for c in chunks if c]


class QuietCheck:
    def __init__(self, complete_every: float) -> None:
        """Configs are read in full again `complete_every` seconds after the last full read (the times
        are `complete_read_at`, which the controller's passes set too)."""
        self._full_reads_changed: set[ObjectRef] = set()  # since each chunk's next full check was worked out
        self.complete_read_at = FullReadTimes(self._full_reads_changed.add)
        self.complete_every = complete_every
        self.anchors: dict[ObjectRef, bytes] = {}
        self._anchored: dict[bytes, set[ObjectRef]] = {}  # the objects anchored to each digest
        self.full_anchors: dict[ObjectRef, bytes] = {}
        self.prefetched: dict[ObjectRef, Prefetched] = {}
        self.paused_until = 0.0
        # The chunks of the last list of candidates checked, and each object's chunk.
        self._chunked: tuple[list[Candidate], list[_Chunk], dict[ObjectRef, _Chunk]] = ([], [], {})

    def forget(self, ref: ObjectRef) -> None:
        """The object is gone: its chunk is rebuilt with the next candidates (the store changed)."""
        self._unanchor(ref)
        self.full_anchors.pop(ref, None)
        self.complete_read_at.pop(ref)
        self._full_reads_changed.discard(ref)
        self.prefetched.pop(ref, None)

    def planned(self, ref: ObjectRef, used: Prefetched | None, quiet: bool, complete: bool) -> None:
        """After a pass: what the object's view came from. Anchored to a prefetched read that left it
        quiet; a view from a read of its own anchors nothing (the digests say nothing of it)."""
        if used is not None and quiet:
            self._anchor(ref, used.digest)
        else:
            self._unanchor(ref)
        if used is not None and used.complete:
            self.full_anchors[ref] = used.configs_digest
            self._full_reads_changed.add(ref)
        elif complete:
            self.full_anchors.pop(ref, None)
            self._full_reads_changed.add(ref)

    def _anchor(self, ref: ObjectRef, digest: bytes) -> None:
        if self.anchors.get(ref) != digest:
            self._unanchor(ref)
            self.anchors[ref] = digest
            self._anchored.setdefault(digest, set()).add(ref)

    def _unanchor(self, ref: ObjectRef) -> None:
        digest = self.anchors.pop(ref, None)
        if digest is not None:
            anchored = self._anchored[digest]
            anchored.discard(ref)
            if not anchored:
                del self._anchored[digest]

    def take(self, obj: DurableTopicObject, now: float) -> Prefetched | None:
        """The prefetched read for this copy of the object, if fresh; used once."""
        found = self.prefetched.pop(obj.ref, None)
        if found is None or found.obj is not obj or now - found.at > PREFETCH_SECONDS:
            return None
        return found

    async def check(
        self,
        reader: ReassignPort,
        candidates: list[Candidate],
        due: Callable[[Iterable[ObjectRef]], None],
        unchanged: Unchanged,
    ) -> set[ObjectRef]:
        """Reads every chunk; returns the objects it has seen to: those of every chunk read. The quiet
        ones need no pass; the others have their read prefetched and are handed to `due` at once. Their
        passes may well be over before the last chunk is read: they are not due again this sweep, or a
        second pass, on a read of its own, would undo what the first concluded. `unchanged` tells of a
        quiet object whether a decoded read says what its last pass saw."""
        now = time.monotonic()
        if now < self.paused_until:
            return set()
        if self._chunked[0] is not candidates:
            chunks = [_Chunk.of(chunk) for chunk in chunk_of(candidates)]
            self._chunked = (candidates, chunks, {ref: chunk for chunk in chunks for ref in chunk.refs})
        chunks = self._chunked[1]
        full_check = self._full_check_due(chunks, now)
        seen_to: set[ObjectRef] = set()
        failed = 0
        for chunk in chunks:
            try:
                chunk_quiet = await self._check_chunk(reader, chunk, unchanged)
                if chunk is full_check:
                    chunk_quiet = chunk_quiet - await self._check_complete(reader, chunk.candidates, now)
                if len(chunk_quiet) < len(chunk.refs):
                    due(c.obj.ref for c in chunk.candidates if c.obj.ref not in chunk_quiet)
                seen_to |= chunk.refs
            except KafkaUnavailable as error:
                for candidate in chunk.candidates:
                    self.prefetched.pop(candidate.obj.ref, None)
                failed += 1
                if failed < FAILED_CHUNKS_TO_PAUSE:
                    # One request that timed out (a broker busy for a moment): only this chunk's objects
                    # read their own, and the sweep goes on.
                    log.info(
                        "a chunk of %d topics was not read (%s): its objects read their own",
                        len(chunk.refs),
                        error,
                    )
                    continue
                # Kafka is failing (a broker down, say): the objects of the chunks not read yet are not
                # held up by more reads that would wait out the same failure.
                log.info(
                    "%d chunks of topics were not read (%s): for %.0f s each object reads its own",
                    failed,
                    error,
                    FAILED_READ_PAUSE_SECONDS,
                )
                self.paused_until = time.monotonic() + FAILED_READ_PAUSE_SECONDS
                break
        return seen_to

    async def _check_chunk(
        self, reader: ReassignPort, chunk: _Chunk, unchanged: Unchanged
    ) -> frozenset[ObjectRef]:
        read = await reader.read_chunk(chunk.keys)
        quiet = chunk.quiet_refs & self._anchored.get(read.digest, frozenset())
        if len(quiet) == len(chunk.quiet_refs):
            return quiet
        # Decoded only for a quiet object not anchored to it (the chunk changed, or its last view came
        # from a read of its own). A quiet object whose topic reads as its last pass saw it is anchored
        # to this read and stays quiet: a change to one topic sends one object to a pass, not its chunk.
        # Every other object of the chunk takes this read as its pass's.
        decoded = read.decode()
        reads, cluster = decoded
        still: set[ObjectRef] = set()
        for candidate in chunk.candidates:
            ref = candidate.obj.ref
            if candidate.quiet and ref not in quiet:
                observed = reads.observed.get(candidate.obj.topic_name)
                if observed is not None and unchanged(candidate.obj, observed, cluster):
                    self._anchor(ref, read.digest)
                    still.add(ref)
        quiet = quiet | still
        self._prefetch((c for c in chunk.candidates if c.obj.ref not in quiet), read, decoded)
        return quiet

    async def _check_complete(
        self, reader: ReassignPort, chunk: list[Candidate], now: float
    ) -> set[ObjectRef]:
        """Every config of the chunk's topics: for an object whose full anchor it equals, it counts as
        a full read again; the others are read in full and prefetched (returned: not quiet)."""
        names = list(dict.fromkeys(c.obj.topic_name for c in chunk))
        digest = await reader.configs_digest(names)
        stale = []
        for candidate in chunk:
            if self.full_anchors.get(candidate.obj.ref) == digest:
                self.complete_read_at[candidate.obj.ref] = now
            else:
                stale.append(candidate)
        if stale:
            # The same configs request as the digest's: the full anchors it gives compare with the next one.
            read = await reader.read_chunk(dict.fromkeys(names))
            self._prefetch(stale, read)
        return {c.obj.ref for c in stale}

    def _prefetch(
        self,
        candidates: Iterable[Candidate],
        read: ChunkRead,
        decoded: tuple[TopicReads, ClusterInfo] | None = None,
    ) -> None:
        reads, cluster = decoded or read.decode()
        now = time.monotonic()
        for candidate in candidates:
            name = candidate.obj.topic_name
            if name in reads.observed:
                observed = reads.observed[name]
                self.prefetched[candidate.obj.ref] = Prefetched(
                    candidate.obj,
                    observed,
                    cluster,
                    read.digest,
                    read.configs_digest,
                    observed is not None and observed.configs_complete,
                    now,
                )

    def _full_check_due(self, chunks: list[_Chunk], now: float) -> _Chunk | None:
        """The chunk most overdue for a full check: one whose objects' configs were read in full most
        of the interval between full reads ago, or an object with no full anchor a minute after its last
        full read. One chunk a sweep, so that the full reads of many chunks spread out."""
        chunk_of_ref = self._chunked[2]
        for ref in self._full_reads_changed:
            if (changed := chunk_of_ref.get(ref)) is not None:
                changed.full_check_at = None
        self._full_reads_changed.clear()
        due: tuple[float, _Chunk] | None = None
        for chunk in chunks:
            if chunk.full_check_at is None:
                chunk.full_check_at = min(self._full_check_at(ref) for ref in chunk.refs)
            overdue = now - chunk.full_check_at
            if overdue >= 0 and (due is None or overdue > due[0]):
                due = (overdue, chunk)
        return None if due is None else due[1]

    def _full_check_at(self, ref: ObjectRef) -> float:
        wait = self.complete_every * 0.8 if ref in self.full_anchors else UNANCHORED_FULL_READ_SECONDS
        return self.complete_read_at.get(ref, 0.0) + wait


def _keys(chunk: list[Candidate]) -> dict[str, frozenset[str] | None]:
    keys: dict[str, frozenset[str] | None] = {}
    for candidate in chunk:
        name = candidate.obj.topic_name
        keys[name] = (keys.get(name) or frozenset()) | candidate.keys
    return keys
