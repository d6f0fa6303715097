"""A small asynchronous client for the few Kubernetes API calls the operator makes itself.

Credentials come from the kubernetes client's own loaders (kubeconfig, or the in-cluster
ServiceAccount), so every login method it knows works here too; the calls go through one pooled
aiohttp session.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import aiohttp
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from durabletopic.loop.ports import ApiError

MERGE_PATCH = "application/merge-patch+json"


class ApiPort(Protocol):
    """What the requests and the leader elector need of the API client."""

    async def merge_patch(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]: ...
    async def request(
        self, method: str, path: str, body: Any = None, *, content_type: str = "application/json"
    ) -> dict[str, Any]: ...


def load_configuration(kubeconfig: str | None = None) -> k8s_client.Configuration:
    """Kubeconfig when one is given or found, the in-cluster ServiceAccount otherwise."""
    configuration = k8s_client.Configuration()
    try:
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        if kubeconfig:
            raise
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


class KubeApi:
    def __init__(
        self,
        configuration: k8s_client.Configuration,
        *,
        concurrency: int = 8,
        on_request: Callable[[str, str, float], None] | None = None,
    ) -> None:
        self._configuration = configuration
        self._server = configuration.host.rstrip("/")
        self._limit = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._on_request = on_request
        self._session: aiohttp.ClientSession | None = None

    def _ssl_context(self) -> ssl.SSLContext | bool:
        cfg = self._configuration
        if not self._server.startswith("https"):
            return False
        context = (
            ssl.create_default_context(cafile=cfg.ssl_ca_cert)
            if cfg.ssl_ca_cert
            else ssl.create_default_context()
        )
        if not cfg.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if cfg.cert_file:
            context.load_cert_chain(cfg.cert_file, cfg.key_file)
        return context

    def _headers(self, content_type: str) -> dict[str, str]:
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        token = self._configuration.auth_settings().get("BearerToken", {}).get("value")
        if token:
            headers["Authorization"] = token
        return headers

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._concurrency, ssl=self._ssl_context())
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=30)
            )
        return self._session

    async def request(
        self, method: str, path: str, body: Any = None, *, content_type: str = "application/json"
    ) -> dict[str, Any]:
        session = await self._get_session()
        data = None if body is None else json.dumps(body)
        started = time.monotonic()
        result = "error"
        async with self._limit:
            try:
                async with session.request(
                    method, self._server + path, data=data, headers=self._headers(content_type)
                ) as response:
                    payload = await response.read()
                    if response.status >= 400:
                        raise _api_error(response.status, payload)
                    result = "ok"
                    return json.loads(payload) if payload else {}
            except (aiohttp.ClientError, TimeoutError) as error:
                raise ApiError(0, "Unavailable", f"{type(error).__name__}: {error}") from None
            finally:
                if self._on_request is not None:
                    self._on_request(method, result, time.monotonic() - started)

    async def merge_patch(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("PATCH", path, body, content_type=MERGE_PATCH)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _api_error(status: int, payload: bytes) -> ApiError:
    try:
        document = json.loads(payload)
        return ApiError(status, document.get("reason", ""), document.get("message", ""))
    except (ValueError, AttributeError):
        return ApiError(status, "", payload[:200].decode(errors="replace"))
