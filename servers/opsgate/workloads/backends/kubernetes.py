"""Reads for the workloads capability through the official `kubernetes` client (no kubectl).

Lists are read as raw JSON (`_preload_content=False`): a namespace with thousands of events
deserializes much faster that way, and the logic works on API JSON anyway. Errors become messages an
agent can act on (404, 403 RBAC) or `BackendUnavailable` (timeouts, unreachable, 5xx) for the breaker.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
import kubernetes.client
import urllib3
from kubernetes.client.exceptions import ApiException

from opsgate import kube_client
from opsgate.contracts import BackendUnavailable

JsonObject = dict[str, Any]
T = TypeVar("T")

_READ_WORKLOAD = {
    "Deployment": "read_namespaced_deployment",
    "StatefulSet": "read_namespaced_stateful_set",
    "DaemonSet": "read_namespaced_daemon_set",
    "ReplicaSet": "read_namespaced_replica_set",
}


class KubernetesReader:
    """Workloads, ReplicaSets, ControllerRevisions, pods and events as API JSON."""

    name = "kubernetes"

    def __init__(
        self, api_client: kubernetes.client.ApiClient, *, request_timeout_s: float = 10.0, unavailable: str = ""
    ) -> None:
        self.api_client = api_client
        self.unavailable = unavailable
        self.apps = kubernetes.client.AppsV1Api(api_client)
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.timeout = request_timeout_s

    def close(self) -> None:
        self.api_client.close()  # type: ignore[no-untyped-call]

    async def _raw(self, what: str, fn: Callable[[], Any]) -> Any:
        if self.unavailable:
            raise BackendUnavailable(f"cannot {what}: {self.unavailable}")

        def run() -> Any:
            response = fn()
            return json.loads(response.data)

        try:
            return await anyio.to_thread.run_sync(run)
        except ApiException as exc:
            raise kube_client.api_error(what, exc) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise kube_client.transport_error(what, exc, self.timeout) from None
        except ValueError as exc:
            raise BackendUnavailable(f"the Kubernetes API answered {what} with malformed JSON: {exc}") from None

    async def get(self, kind: str, namespace: str, name: str) -> JsonObject:
        method = getattr(
            self.apps if kind in _READ_WORKLOAD else self.core, _READ_WORKLOAD.get(kind, "read_namespaced_pod")
        )
        result: JsonObject = await self._raw(
            f"read {kind.lower()} {namespace}/{name}",
            lambda: method(name, namespace, _request_timeout=self.timeout, _preload_content=False),
        )
        return result

    async def _list(self, what: str, method: Callable[..., Any], namespace: str, **query: Any) -> list[JsonObject]:
        query = {k: v for k, v in query.items() if v}
        body = await self._raw(
            f"list {what} in {namespace}",
            lambda: method(namespace, _request_timeout=self.timeout, _preload_content=False, **query),
        )
        return list(body.get("items") or [])

    async def list_replica_sets(self, namespace: str, selector: str | None = None) -> list[JsonObject]:
        return await self._list(
            "replicasets", self.apps.list_namespaced_replica_set, namespace, label_selector=selector
        )

    async def list_controller_revisions(self, namespace: str, selector: str | None = None) -> list[JsonObject]:
        return await self._list(
            "controllerrevisions", self.apps.list_namespaced_controller_revision, namespace, label_selector=selector
        )

    async def list_pods(self, namespace: str, selector: str | None = None) -> list[JsonObject]:
        return await self._list("pods", self.core.list_namespaced_pod, namespace, label_selector=selector)

    async def list_events(self, namespace: str, field_selector: str | None = None) -> list[JsonObject]:
        return await self._list("events", self.core.list_namespaced_event, namespace, field_selector=field_selector)
