"""kopf only watches for the operator: no object's versions are compared, so none is copied to compare."""

from __future__ import annotations

from typing import Any

import kopf

from durabletopic.app.main import CLUSTERS, NoDiffBase, build_registry, kopf_settings
from durabletopic.core import crd
from durabletopic.core.tenancy import crd as policy_crd


class RecordingFleet:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda event_type, body: self.seen.append((name, event_type))


WATCHED = [
    kopf.Resource(crd.GROUP, crd.VERSION, crd.PLURAL),
    kopf.Resource(policy_crd.GROUP, policy_crd.VERSION, policy_crd.PLURAL),
    kopf.Resource(crd.GROUP, crd.VERSION, CLUSTERS),
    kopf.Resource("", "v1", "namespaces"),
]


def test_every_watched_resource_has_an_event_handler_and_nothing_that_compares_versions() -> None:
    registry = build_registry(RecordingFleet())  # type: ignore[arg-type]
    for resource in WATCHED:
        assert registry._watching.has_handlers(resource=resource), resource
        # NoDiffBase is only right while kopf has no change or daemon handlers to feed with diffs.
        assert not registry._changing.has_handlers(resource=resource), resource
        assert not registry._spawning.has_handlers(resource=resource), resource


def test_an_event_builds_no_copy_of_the_object() -> None:
    storage = kopf_settings().persistence.diffbase_storage
    assert isinstance(storage, NoDiffBase)
    body = kopf.Body(
        {
            "apiVersion": crd.API_VERSION,
            "kind": crd.KIND,
            "metadata": {"name": "orders", "namespace": "shop", "annotations": {"team": "payments"}},
            "spec": {"partitions": 3},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }
    )
    assert storage.build(body=body, extra_fields=None) == {}
    assert storage.fetch(body=body) is None
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    assert not patch
