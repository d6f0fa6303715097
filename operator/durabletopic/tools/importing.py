"""`durabletopic import`'s reads and writes around the core's `importing`: the DurableTopics that say which
topics are managed (from the API server, or from manifest files), the topics read from Kafka, and the
manifests written as YAML, each headed by the comments that say what it changes."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from durabletopic.core import importing
from durabletopic.core.importing import ImportedTopic
from durabletopic.core.model import ObservedTopic, Policy
from durabletopic.tools import manifests
from durabletopic.tools.manifests import ReadError


@dataclass(slots=True)
class ManagedObjects:
    """The DurableTopic objects that say which topics are managed, and what could not be read."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    errors: list[ReadError] = field(default_factory=list)


def from_manifests(paths: Sequence[str]) -> ManagedObjects:
    """The DurableTopics of YAML files and directories (the objects kept in Git, say)."""
    read = manifests.load(paths)
    return ManagedObjects([dict(m.object) for m in read.manifests], list(read.errors))


def from_api_server(kubeconfig: str | None, timeout_s: float) -> list[dict[str, Any]]:
    """Every DurableTopic the API server holds. Raises `KubeReadError` saying why it cannot."""
    from durabletopic.adapters.kubernetes.clusterread import ClusterReader  # kubernetes loads only here

    return ClusterReader(kubeconfig, timeout_s=timeout_s).durable_topics()


async def read_topics(
    bootstrap_servers: str,
    client_config: Mapping[str, str],
    timeout_s: float,
    select: Any,
) -> tuple[set[str], dict[str, ObservedTopic]]:
    """Every topic name (one listing), and the topics `select(names)` picks, described with their configs
    (one batched request)."""
    from durabletopic.adapters.kafka.admin import KafkaAdmin  # confluent-kafka loads only when needed

    kafka = KafkaAdmin(bootstrap_servers, client_config, request_timeout_s=timeout_s)
    try:
        names = await kafka.list_topics()
        chosen = select(names)
        described = await kafka.describe_topics(chosen) if chosen else {}
    finally:
        kafka.close()
    return names, {name: topic for name, topic in described.items() if topic is not None}


def build(
    topics: Iterable[ObservedTopic], namespace: str | None, policy: Policy, taken: Collection[str] = ()
) -> list[ImportedTopic]:
    """The DurableTopic of each topic, sorted by topic name."""
    by_name = {t.name: t for t in topics}
    names = importing.object_names(by_name, taken)
    return [importing.import_topic(by_name[t], names[t], namespace, policy) for t in sorted(by_name)]


def render(imported: ImportedTopic) -> str:
    """One manifest as YAML, headed by its comments."""
    header = "".join(f"# {line}\n" for line in imported.comments())
    return header + yaml.safe_dump(imported.manifest(), sort_keys=False, default_flow_style=False)


def render_all(imported: Sequence[ImportedTopic]) -> str:
    """Every manifest in one YAML stream."""
    return "---\n".join(render(i) for i in imported)


def write(imported: Sequence[ImportedTopic], directory: Path) -> list[Path]:
    """One file `<metadata.name>.yaml` per manifest in `directory` (made if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for item in imported:
        path = directory / f"{item.name}.yaml"
        path.write_text(render(item))
        written.append(path)
    return written
