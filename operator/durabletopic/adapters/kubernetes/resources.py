"""The requests the loop makes about DurableTopics: status, finalizers, events, client-profile ConfigMaps.

Implements the loop's `KubePort` over the API client: every path and body is built here.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from durabletopic.adapters.kubernetes.client import ApiPort
from durabletopic.core import clientprofile, crd
from durabletopic.core.model import ObjectRef
from durabletopic.core.tenancy import crd as policy_crd
from durabletopic.loop.ports import ApiError
from durabletopic.loop.store import DurableTopicObject

log = logging.getLogger(__name__)

APPLY_PATCH = "application/apply-patch+yaml"
FIELD_MANAGER = "durabletopic"
CLIENT_PROFILE_SUFFIX = "-client-profile"
EVENT_MESSAGE_LIMIT = 1024
MANAGED_BY = "durable-topic-operator"


def object_path(ref: ObjectRef) -> str:
    return f"/apis/{crd.GROUP}/{crd.VERSION}/namespaces/{ref.namespace}/{crd.PLURAL}/{ref.name}"


def status_patch(status: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch of the status subresource: every key of `status`, and null for keys it dropped."""
    return {"status": {key: status.get(key) for key in set(status) | set(previous)}}


def finalizers_patch(finalizers: Sequence[str], resource_version: str) -> dict[str, Any]:
    """The resource version makes the patch fail (409) if the object changed since it was read."""
    return {"metadata": {"finalizers": list(finalizers), "resourceVersion": resource_version}}


def involved_object(obj: DurableTopicObject) -> dict[str, str]:
    return {
        "apiVersion": crd.API_VERSION,
        "kind": crd.KIND,
        "namespace": obj.ref.namespace,
        "name": obj.ref.name,
        "uid": obj.uid,
        "resourceVersion": obj.resource_version,
    }


def event_body(
    obj: DurableTopicObject, event_type: str, reason: str, message: str, instance: str, now: str
) -> dict[str, Any]:
    return {
        "metadata": {"generateName": f"{obj.ref.name}.", "namespace": obj.ref.namespace},
        "involvedObject": involved_object(obj),
        "type": str(event_type),
        "reason": str(reason),
        "message": message[:EVENT_MESSAGE_LIMIT],
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "source": {"component": MANAGED_BY},
        "reportingComponent": "durabletopic.dev/operator",
        "reportingInstance": instance,
    }


def client_profile_name(ref: ObjectRef) -> str:
    return f"{ref.name}{CLIENT_PROFILE_SUFFIX}"


def client_profile_body(obj: DurableTopicObject) -> dict[str, Any]:
    """The ConfigMap `<name>-client-profile`, owned by the DurableTopic so that it goes with it."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": client_profile_name(obj.ref),
            "namespace": obj.ref.namespace,
            "labels": {
                "app.kubernetes.io/managed-by": MANAGED_BY,
                "durabletopic.dev/topic-object": obj.ref.name,
            },
            "ownerReferences": [
                {
                    "apiVersion": crd.API_VERSION,
                    "kind": crd.KIND,
                    "name": obj.ref.name,
                    "uid": obj.uid,
                    "controller": True,
                }
            ],
        },
        "data": clientprofile.configmap_data(obj.topic_name),
    }


LIST_PAGE = 500
POLICIES_PATH = f"/apis/{policy_crd.GROUP}/{policy_crd.VERSION}/{policy_crd.PLURAL}"
CLUSTERS_PATH = f"/apis/{crd.GROUP}/{crd.VERSION}/kafkaclusters"


def collection_paths(namespaces: Sequence[str]) -> list[str]:
    """Where every watched DurableTopic is listed: cluster-wide, or one path per namespace."""
    base = f"/apis/{crd.GROUP}/{crd.VERSION}"
    if not namespaces:
        return [f"{base}/{crd.PLURAL}"]
    return [f"{base}/namespaces/{namespace}/{crd.PLURAL}" for namespace in namespaces]


class DurableTopicRequests:
    """The loop's requests to the API server, through one API client."""

    def __init__(
        self, api: ApiPort, *, reporting_instance: str, now: Any, namespaces: Sequence[str] = ()
    ) -> None:
        self.api = api
        self.reporting_instance = reporting_instance
        self.now = now
        self.namespaces = tuple(namespaces)

    async def list_durabletopics(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for path in collection_paths(self.namespaces):
            items += await self._list(path)
        return items

    async def list_policies(self) -> list[dict[str, Any]]:
        """Every DurabilityPolicy; none while its CRD is not installed (an upgrade that has not applied it)."""
        try:
            return await self._list(POLICIES_PATH)
        except ApiError as error:
            if error.status != 404:
                raise
            log.warning("the DurabilityPolicy CRD is not installed: no tenancy policy applies")
            return []

    async def list_namespaces(self) -> list[dict[str, Any]]:
        return await self._list("/api/v1/namespaces")

    async def list_clusters(self) -> list[dict[str, Any]]:
        """Every KafkaCluster; none while its CRD is not installed."""
        try:
            return await self._list(CLUSTERS_PATH)
        except ApiError as error:
            if error.status != 404:
                raise
            log.warning(
                "the KafkaCluster CRD is not installed: only the operator's bootstrap servers are used"
            )
            return []

    async def read_source(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's data, decoded, or a ConfigMap's; None when there is no such object."""
        plural = "secrets" if kind == "Secret" else "configmaps"
        try:
            body = await self.api.request("GET", f"/api/v1/namespaces/{namespace}/{plural}/{name}")
        except ApiError as error:
            if error.status == 404:
                return None
            raise
        data = dict(body.get("data") or {})
        if kind == "Secret":
            return {key: base64.b64decode(value).decode() for key, value in data.items()}
        return {key: str(value) for key, value in data.items()}

    async def write_cluster_status(
        self, name: str, status: Mapping[str, Any], previous: Mapping[str, Any]
    ) -> None:
        await self.api.merge_patch(f"{CLUSTERS_PATH}/{name}/status", status_patch(status, previous))

    async def _list(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query = f"?limit={LIST_PAGE}" + (f"&continue={quote(token)}" if token else "")
            page = await self.api.request("GET", path + query)
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return items

    async def write_policy_status(
        self, name: str, status: Mapping[str, Any], previous: Mapping[str, Any]
    ) -> None:
        await self.api.merge_patch(f"{POLICIES_PATH}/{name}/status", status_patch(status, previous))

    async def write_status(
        self, obj: DurableTopicObject, status: Mapping[str, Any], previous: Mapping[str, Any]
    ) -> None:
        await self.api.merge_patch(object_path(obj.ref) + "/status", status_patch(status, previous))

    async def set_finalizers(self, obj: DurableTopicObject, finalizers: Sequence[str]) -> None:
        await self.api.merge_patch(object_path(obj.ref), finalizers_patch(finalizers, obj.resource_version))

    async def post_event(self, obj: DurableTopicObject, event_type: str, reason: str, message: str) -> None:
        body = event_body(obj, event_type, reason, message, self.reporting_instance, self.now())
        await self.api.request("POST", f"/api/v1/namespaces/{obj.ref.namespace}/events", body)

    async def apply_client_profile(self, obj: DurableTopicObject) -> None:
        path = (
            f"/api/v1/namespaces/{obj.ref.namespace}/configmaps/{client_profile_name(obj.ref)}"
            f"?fieldManager={FIELD_MANAGER}&force=true"
        )
        await self.api.request("PATCH", path, client_profile_body(obj), content_type=APPLY_PATCH)
