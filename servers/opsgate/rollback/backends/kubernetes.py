"""The Kubernetes backend: `apps/v1` Deployments and ReplicaSets through the official `kubernetes` client.

No kubectl. The client is synchronous, so each request runs in a worker thread with a per-request
timeout. Responses are the client's typed models, turned back into API JSON (camelCase) for the
pure logic in `opsgate.rollback.revisions`. API errors become messages an agent can act on: 404 not
found, 403 RBAC forbidden, 409 conflict and 422 invalid are `ToolError`s; timeouts, unreachable
servers and 5xx/429 are `BackendUnavailable` (they feed the circuit breaker).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
import kubernetes.client
import kubernetes.config
import urllib3
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from opsgate import kube_client
from opsgate.contracts import BackendUnavailable

JsonObject = dict[str, Any]
T = TypeVar("T")

JSON_PATCH = "application/json-patch+json"


class KubernetesBackend:
    """Reads and patches Deployments; every method returns API JSON."""

    name = "kubernetes"

    def __init__(
        self, api_client: kubernetes.client.ApiClient, *, request_timeout_s: float = 10.0, unavailable: str = ""
    ) -> None:
        self.api_client = api_client
        self.apps = kubernetes.client.AppsV1Api(api_client)
        self.timeout = request_timeout_s
        self.unavailable = unavailable

    def close(self) -> None:
        self.api_client.close()  # type: ignore[no-untyped-call]

    def _json(self, model: Any) -> Any:
        return self.api_client.sanitize_for_serialization(model)  # type: ignore[no-untyped-call]

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        if self.unavailable:
            raise BackendUnavailable(f"cannot {what}: {self.unavailable}")
        try:
            return await anyio.to_thread.run_sync(fn)
        except ApiException as exc:
            raise kube_client.api_error(
                what, exc, unchanged="; nothing was changed", retry_hint="read rollout_history again"
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise kube_client.transport_error(what, exc, self.timeout) from None
        except ValidationError as exc:
            raise BackendUnavailable(
                f"the Kubernetes API answered {what} with a malformed object: {exc.error_count()} schema error(s)"
            ) from None

    async def get_deployment(self, namespace: str, name: str) -> JsonObject:
        model = await self._call(
            f"read deployment {namespace}/{name}",
            lambda: self.apps.read_namespaced_deployment(name, namespace, _request_timeout=self.timeout),
        )
        result: JsonObject = self._json(model)
        return result

    async def list_deployments(self, namespace: str) -> list[JsonObject]:
        model = await self._call(
            f"list deployments in {namespace}",
            lambda: self.apps.list_namespaced_deployment(namespace, _request_timeout=self.timeout),
        )
        return list(self._json(model).get("items") or [])

    async def list_replica_sets(self, namespace: str, selector: str | None) -> list[JsonObject]:
        model = await self._call(
            f"list replicasets in {namespace}",
            lambda: self.apps.list_namespaced_replica_set(
                namespace, label_selector=selector or None, _request_timeout=self.timeout
            ),
        )
        return list(self._json(model).get("items") or [])

    async def patch_deployment(
        self, namespace: str, name: str, patch: list[JsonObject], *, dry_run: bool
    ) -> JsonObject:
        model = await self._call(
            f"{'dry-run ' if dry_run else ''}patch deployment {namespace}/{name}",
            lambda: self.apps.patch_namespaced_deployment(
                name,
                namespace,
                patch,
                dry_run="All" if dry_run else None,
                field_manager="opsgate",
                _content_type=JSON_PATCH,
                _request_timeout=self.timeout,
            ),
        )
        result: JsonObject = self._json(model)
        return result
