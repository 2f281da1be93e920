"""What every capability that reads or changes Kubernetes through the official `kubernetes` client shares.

One way to connect (an explicit API URL, the in-cluster service account, or a kubeconfig), with one
attempt per request: the gate's timeout and breaker decide about retrying, not urllib3. One mapping of
failures to what an agent can act on: 404 not found, 403 RBAC, 401 credentials, 409 conflict and
400/422 rejections are `ToolError`s; timeouts, unreachable servers and other statuses are
`BackendUnavailable`, which feeds the breaker. And the two readings of API JSON they all need: a
selector as a label-selector string, and a timestamp.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import kubernetes.client
import kubernetes.config
import urllib3
from kubernetes.client.exceptions import ApiException

from opsgate.config import ConfigError
from opsgate.contracts import BackendUnavailable, ToolError

JsonObject = dict[str, Any]


def connect(
    *, api_url: str | None = None, kubeconfig: Path | None = None, context: str | None = None, in_cluster: bool = False
) -> kubernetes.client.ApiClient:
    configuration = kubernetes.client.Configuration()
    if api_url is not None:
        configuration.host = api_url
    elif in_cluster:
        kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig) if kubeconfig else None, context=context, client_configuration=configuration
        )
    configuration.retries = urllib3.Retry(total=0, raise_on_status=False)
    return kubernetes.client.ApiClient(configuration)


class ClusterSettings(Protocol):
    """The keys of a settings section that name a cluster (`[rollback]`, `[workloads]`)."""

    @property
    def api_url(self) -> str | None: ...
    @property
    def kubeconfig(self) -> Path | None: ...
    @property
    def context(self) -> str | None: ...
    @property
    def in_cluster(self) -> bool: ...


def configured(config: ClusterSettings) -> bool:
    return bool(config.api_url or config.kubeconfig or config.context or config.in_cluster)


def connect_section(section: str, config: ClusterSettings) -> tuple[kubernetes.client.ApiClient, str]:
    """The cluster `[section]` names (else the default kubeconfig) and "": a configured cluster that cannot be
    loaded is a ConfigError. With nothing configured and no default kubeconfig, an unconnected client and the
    reason every tool answers with (`BackendUnavailable`), instead of the server failing to start."""
    try:
        api_client = connect(
            api_url=config.api_url, kubeconfig=config.kubeconfig, context=config.context, in_cluster=config.in_cluster
        )
    except kubernetes.config.ConfigException as exc:
        if configured(config):
            raise ConfigError(f"[{section}] cannot reach the configured cluster: {exc}") from None
        return kubernetes.client.ApiClient(kubernetes.client.Configuration()), (
            f"no Kubernetes cluster is configured: set [{section}] kubeconfig, api_url or in_cluster "
            "(with no config at all, `opsgate serve` serves the sandbox's default scenario)"
        )
    return api_client, ""


def status_message(exc: ApiException) -> str:
    """The API's own `Status.message`, else the HTTP reason."""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return str(exc.reason or f"HTTP {exc.status}")


def api_error(what: str, exc: ApiException, *, unchanged: str = "", retry_hint: str = "read it again") -> ToolError:
    """`unchanged` is appended where a refused change left nothing changed (writers pass
    "; nothing was changed"); `retry_hint` says what to re-read after a 409 conflict."""
    message, status = status_message(exc), exc.status or 0
    if status == 404:
        return ToolError(f"not found: cannot {what}: {message}")
    if status == 403:
        return ToolError(f"forbidden by Kubernetes RBAC: cannot {what}: {message}{unchanged}")
    if status == 409:
        return ToolError(
            f"conflict: the object changed while trying to {what} ({message}){unchanged}; {retry_hint} and retry"
        )
    if status in (400, 422):
        return ToolError(f"the Kubernetes API rejected the request to {what}: {message}")
    if status == 401:
        return ToolError(f"the Kubernetes API did not accept opsgate's credentials to {what}: {message}")
    return BackendUnavailable(f"the Kubernetes API failed to {what}: HTTP {status}: {message}")


def transport_error(what: str, exc: Exception, timeout_s: float) -> BackendUnavailable:
    """A request that never got an HTTP answer (urllib3 errors, OSError)."""
    kind = "timed out" if "timeout" in type(exc).__name__.lower() or "timed out" in str(exc) else "failed"
    return BackendUnavailable(
        f"the Kubernetes API {kind} while trying to {what} (limit {timeout_s:g}s): {type(exc).__name__}"
    )


def label_selector(selector: JsonObject) -> str:
    """A workload's `spec.selector` as a label-selector string."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def parse_time(value: Any) -> datetime | None:
    """An API timestamp (RFC 3339, `Z` or an offset); None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
