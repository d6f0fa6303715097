"""The sweep's reads, compared as bytes before anything is built from them.

Kafka answers the same Metadata or DescribeConfigs request about an unchanged cluster with the same
bytes, apart from the throttle time and, in Metadata, the controller id it picks at random for each
answer. A digest of the rest tells whether anything a chunk of topics holds has changed, at the cost of
receiving the answer: no object per topic, partition or config. Only a chunk whose digest changed is
decoded (`decode_chunk`). The requests are encoded once and kept: a chunk's request is the same bytes
from sweep to sweep, only the header changes.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from durabletopic.adapters.kafka.configmaps import ConfigMaps
from durabletopic.core.configs import MIN_INSYNC_REPLICAS
from durabletopic.core.model import Broker, ClusterInfo, ObservedTopic, PartitionState
from durabletopic.loop.ports import TopicReads

TOPIC_RESOURCE = 2
DYNAMIC_TOPIC_CONFIG = 1
NO_ERROR = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
# Metadata is read with a flexible version (Kafka 2.4 and later): its layout is what `_metadata_digest` reads.
FIRST_FLEXIBLE_METADATA = 9


class RawAnswer:
    """The answer to a `RawRequest`: its version's response class and the body's bytes."""

    def __init__(self, response_class: Any, body: bytes) -> None:
        self.response_class = response_class
        self.body = body

    @property
    def version(self) -> int:
        return int(self.response_class.API_VERSION)

    def decode(self) -> Any:
        return self.response_class.decode(self.body)


class _KeepBytes:
    """Stands for a response class in kafka-python's protocol: reads the header, keeps the body."""

    def __init__(self, response_class: Any) -> None:
        self._response_class = response_class

    def parse_header(self, buffer: Any) -> Any:
        return self._response_class.parse_header(buffer)

    def decode(self, buffer: Any) -> RawAnswer:
        return RawAnswer(self._response_class, buffer.read())


class _RawHeader:
    def __init__(self, header: Any) -> None:
        self._header = header

    def __getattr__(self, name: str) -> Any:
        return getattr(self._header, name)

    def get_response_class(self) -> _KeepBytes:
        return _KeepBytes(self._header.get_response_class())

    def __repr__(self) -> str:
        return repr(self._header)


class RawRequest:
    """A kafka-python request whose answer comes back as a `RawAnswer`, and whose body is encoded once
    per version (only the header, with its correlation id, is encoded for each send)."""

    def __init__(self, request: Any) -> None:
        self.__dict__["_request"] = request
        self.__dict__["_bodies"] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._request, name, value)

    @property
    def header(self) -> _RawHeader:
        return _RawHeader(self._request.header)

    def encode(self, version: int | None = None, header: bool = False, framed: bool = False) -> bytes:
        request = self._request
        version = request.API_VERSION if version is None else version
        body: bytes | None = self._bodies.get(version)
        if body is None:
            body = self._bodies[version] = bytes(request.encode(version=version))
        head = bytes(request.encode_header(flexible=request.flexible_version_q(version))) if header else b""
        payload = head + body
        return struct.pack(">i", len(payload)) + payload if framed else payload

    def __repr__(self) -> str:
        return f"RawRequest({self._request!r})"


def metadata_request(names: Sequence[str]) -> RawRequest:
    from kafka.protocol.metadata import MetadataRequest

    return RawRequest(
        MetadataRequest(
            topics=[MetadataRequest.MetadataRequestTopic(name=name) for name in names],
            allow_auto_topic_creation=False,
            include_cluster_authorized_operations=False,
            include_topic_authorized_operations=False,
            min_version=FIRST_FLEXIBLE_METADATA,
        )
    )


def configs_request(keys: Mapping[str, Collection[str] | None]) -> RawRequest:
    """DescribeConfigs of these topics: the keys named for each, or every config where None."""
    from kafka.protocol.admin import DescribeConfigsRequest

    return RawRequest(
        DescribeConfigsRequest(
            resources=[
                DescribeConfigsRequest.DescribeConfigsResource(
                    resource_type=TOPIC_RESOURCE,
                    resource_name=name,
                    configuration_keys=None if wanted is None else sorted(wanted),
                )
                for name, wanted in keys.items()
            ],
            include_synonyms=False,
            include_documentation=False,
        )
    )


def _uvarint(data: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _skip_compact_string(data: memoryview, pos: int) -> int:
    length, pos = _uvarint(data, pos)
    return pos + max(length - 1, 0)


def _skip_tagged_fields(data: memoryview, pos: int) -> int:
    count, pos = _uvarint(data, pos)
    for _ in range(count):
        _, pos = _uvarint(data, pos)
        size, pos = _uvarint(data, pos)
        pos += size
    return pos


def controller_id_offset(body: bytes) -> int:
    """Where the controller id sits in a flexible Metadata answer: after the throttle time, the
    brokers and the cluster id."""
    data = memoryview(body)
    count, pos = _uvarint(data, 4)
    for _ in range(max(count - 1, 0)):
        pos += 4  # node id
        pos = _skip_compact_string(data, pos)  # host
        pos += 4  # port
        pos = _skip_compact_string(data, pos)  # rack (nullable)
        pos = _skip_tagged_fields(data, pos)
    return _skip_compact_string(data, pos)  # cluster id (nullable)


def metadata_digest(answer: RawAnswer, into: Any) -> None:
    """Feeds the Metadata answer to a digest, without its throttle time and controller id."""
    body = answer.body
    at = controller_id_offset(body)
    view = memoryview(body)
    into.update(view[4:at])
    into.update(view[at + 4 :])


def configs_digest(answer: RawAnswer) -> bytes:
    """The digest of a DescribeConfigs answer, without its throttle time."""
    return hashlib.blake2b(memoryview(answer.body)[4:], digest_size=16).digest()


@dataclass(frozen=True)
class ChunkAnswer:
    metadata: RawAnswer
    configs: RawAnswer
    complete: frozenset[str]  # the topics whose every config was read

    @property
    def digest(self) -> bytes:
        into = hashlib.blake2b(digest_size=16)
        metadata_digest(self.metadata, into)
        into.update(memoryview(self.configs.body)[4:])
        return into.digest()


def topic_id_text(topic_id: Any) -> str:
    """Kafka's topic id as the operator records it, the way librdkafka prints it: standard base64 (not
    the URL-safe alphabet Kafka's own tools use), unpadded."""
    raw = getattr(topic_id, "bytes", None)
    if raw is None or raw == bytes(16):
        return ""
    return base64.b64encode(raw).rstrip(b"=").decode()


def decode_chunk(answer: ChunkAnswer) -> tuple[TopicReads, ClusterInfo]:
    """The chunk's topics as the pass reads them. Only topics Kafka answered in full are in `observed`
    (or None where Kafka says there is no such topic); any other answer is left out, for a read of its own."""
    metadata = answer.metadata.decode()
    configs = answer.configs.decode()
    entries: dict[str, Any] = {}
    for result in configs.results:
        if result.error_code == NO_ERROR:
            entries[result.resource_name] = result.configs
    observed: dict[str, ObservedTopic | None] = {}
    for topic in metadata.topics:
        name = topic.name
        if topic.error_code == UNKNOWN_TOPIC_OR_PARTITION:
            observed[name] = None
            continue
        found = entries.get(name)
        if topic.error_code != NO_ERROR or found is None:
            continue
        maps = ConfigMaps()
        for entry in found:
            maps.add(entry.name, entry.value, override=entry.config_source == DYNAMIC_TOPIC_CONFIG)
        if MIN_INSYNC_REPLICAS not in maps:  # every topic has it: its absence is no answer
            continue
        partitions = sorted(
            (
                PartitionState(
                    partition=p.partition_index,
                    leader=p.leader_id if p.leader_id >= 0 else None,
                    replicas=tuple(p.replica_nodes),
                    isr=tuple(p.isr_nodes),
                )
                for p in topic.partitions
            ),
            key=lambda p: p.partition,
        )
        overrides, effective = maps.done()
        observed[name] = ObservedTopic(
            name=name,
            topic_id=topic_id_text(topic.topic_id),
            partitions=tuple(partitions),
            overrides=overrides,
            effective=effective,
            configs_complete=name in answer.complete,
        )
    brokers = sorted(
        (Broker(node_id=b.node_id, rack=b.rack or None) for b in metadata.brokers), key=lambda b: b.node_id
    )
    cluster = ClusterInfo(
        brokers=tuple(brokers),
        controller_id=metadata.controller_id if metadata.controller_id >= 0 else None,
        cluster_id=metadata.cluster_id or None,
    )
    return TopicReads(observed=observed), cluster
