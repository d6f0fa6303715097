"""A synchronous reader of one KafkaCluster and the Secrets and ConfigMaps it names, for the commands.

Credentials come from the kubernetes client's loaders, as kubectl finds them: the given kubeconfig, else
$KUBECONFIG or ~/.kube/config, else the in-cluster ServiceAccount. Every failure is a `KubeReadError`
whose message names the object and what went wrong (refused by RBAC, unreachable, ...).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from urllib3.exceptions import HTTPError

from durabletopic.core import crd as topic_crd
from durabletopic.core.clusters import crd as cluster_crd

DEFAULT_KUBECONFIG = "~/.kube/config"


class KubeReadError(Exception):
    """An object could not be read; the message says which and why."""


def kubeconfig_in_use(kubeconfig: str | None) -> str:
    """The kubeconfig the client loads, as kubectl names it."""
    return kubeconfig or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG


def _configuration(kubeconfig: str | None) -> k8s_client.Configuration:
    """The kubeconfig's; without one given and none found, the in-cluster ServiceAccount's."""
    path = kubeconfig_in_use(kubeconfig)
    configuration = k8s_client.Configuration()
    try:
        k8s_config.load_kube_config(config_file=path, client_configuration=configuration)  # type: ignore[no-untyped-call]
        return configuration
    except (k8s_config.ConfigException, OSError, ValueError) as error:
        problem = f"cannot load the kubeconfig {path}: {error}"
        if kubeconfig is not None or os.path.exists(os.path.expanduser(path)):
            raise KubeReadError(problem) from None
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException as error:
        raise KubeReadError(f"{problem}; nor is this a pod with a ServiceAccount token ({error})") from None
    return configuration


class ClusterReader:
    """Reads through one API client; `timeout_s` bounds each request."""

    def __init__(self, kubeconfig: str | None = None, *, timeout_s: float = 10.0) -> None:
        configuration = _configuration(kubeconfig)
        self._server = configuration.host
        self._timeout_s = timeout_s
        api_client = k8s_client.ApiClient(configuration)
        self._core = k8s_client.CoreV1Api(api_client)
        self._custom = k8s_client.CustomObjectsApi(api_client)

    def kafka_cluster(self, name: str) -> dict[str, Any] | None:
        """The KafkaCluster object, or None when there is none of that name."""
        what = f"KafkaCluster {name}"
        try:
            body = self._custom.get_cluster_custom_object(
                cluster_crd.GROUP,
                cluster_crd.VERSION,
                cluster_crd.PLURAL,
                name,
                _request_timeout=self._timeout_s,
            )
        except k8s_client.ApiException as error:
            if error.status == 404 and _names_object(error, name):
                return None
            if error.status == 404:
                raise self._not_served(
                    f"read {what}", "KafkaCluster", cluster_crd.PLURAL, cluster_crd.GROUP
                ) from None
            raise self._refused(what, error) from None
        except HTTPError as error:
            raise self._unreachable(what, error) from None
        if not isinstance(body, dict):
            raise KubeReadError(f"cannot read {what}: the API server answered with no object")
        return body

    def durable_topics(self) -> list[dict[str, Any]]:
        """Every DurableTopic of every namespace (one list request)."""
        what = "DurableTopics"
        try:
            body = self._custom.list_cluster_custom_object(
                topic_crd.GROUP, topic_crd.VERSION, topic_crd.PLURAL, _request_timeout=self._timeout_s
            )
        except k8s_client.ApiException as error:
            if error.status == 404:
                raise self._not_served(
                    f"list {what}", topic_crd.KIND, topic_crd.PLURAL, topic_crd.GROUP
                ) from None
            raise self._refused(what, error) from None
        except HTTPError as error:
            raise self._unreachable(what, error) from None
        items = body.get("items") if isinstance(body, dict) else None
        return [item for item in items or () if isinstance(item, dict)]

    def source(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        """The data of a Secret (decoded) or of a ConfigMap, or None when there is no such object."""
        what = f"{kind} {namespace}/{name}"
        read = (
            self._core.read_namespaced_secret if kind == "Secret" else self._core.read_namespaced_config_map
        )
        try:
            found = read(name, namespace, _request_timeout=self._timeout_s)
        except k8s_client.ApiException as error:
            if error.status == 404:
                return None
            raise self._refused(what, error) from None
        except HTTPError as error:
            raise self._unreachable(what, error) from None
        data = found.data or {}
        if kind == "Secret":
            return _decoded(data)
        return {key: str(value) for key, value in data.items()}

    def _not_served(self, doing: str, kind: str, plural: str, group: str) -> KubeReadError:
        return KubeReadError(
            f"cannot {doing}: the API server at {self._server} serves no {kind} resource "
            f"(is the CRD {plural}.{group} installed?)"
        )

    def _refused(self, what: str, error: k8s_client.ApiException) -> KubeReadError:
        message = _status_message(error)
        if error.status == 403:
            return KubeReadError(f"not allowed to read {what} (403 Forbidden, RBAC): {message}")
        if error.status == 401:
            return KubeReadError(
                f"cannot read {what}: the API server at {self._server} refused the kubeconfig's "
                f"credentials (401 Unauthorized)"
            )
        return KubeReadError(f"cannot read {what}: {error.status} {error.reason}: {message}")

    def _unreachable(self, what: str, error: HTTPError) -> KubeReadError:
        return KubeReadError(f"cannot read {what}: the API server at {self._server} did not answer: {error}")


def _status_message(error: k8s_client.ApiException) -> str:
    """The message of the API server's Status body, else the body itself."""
    body = error.body.decode(errors="replace") if isinstance(error.body, bytes) else str(error.body or "")
    try:
        return str(json.loads(body).get("message") or body)
    except (ValueError, AttributeError):
        return body.strip()


def _names_object(error: k8s_client.ApiException, name: str) -> bool:
    """A 404 about the object itself, not about its resource type being unknown."""
    try:
        details = json.loads(error.body or "").get("details") or {}
    except (ValueError, TypeError, AttributeError):
        return False
    return bool(details.get("name") == name)


def _decoded(data: Mapping[str, str | bytes]) -> dict[str, str]:
    """A Secret's values as text; a binary value (a keystore, say) is left out: no client property is one."""
    decoded: dict[str, str] = {}
    for key, value in data.items():
        try:
            decoded[key] = base64.b64decode(value).decode()
        except (binascii.Error, UnicodeDecodeError):
            continue
    return decoded
