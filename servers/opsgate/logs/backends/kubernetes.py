"""Kubernetes pod logs through the official `kubernetes` client: selector -> pods -> logs since a time."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import anyio
import kubernetes.client
import kubernetes.config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from opsgate.contracts import BackendUnavailable, ToolError
from opsgate.logs.backend_settings import KubernetesSettings as KubernetesSettings
from opsgate.logs.backends import Fetched, check_deadline, remaining
from opsgate.logs.query import LogQuery
from opsgate.logs.records import LogRecord, parse_line
from opsgate.logs.selector import Requirement
from opsgate.logs.timeparse import NS_PER_S, log_time_ns, to_ns


def _api_client(settings: KubernetesSettings) -> kubernetes.client.ApiClient:
    client: kubernetes.client.ApiClient
    if settings.kubeconfig is not None:
        client = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(settings.kubeconfig), context=settings.context
        )
        return client
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        return kubernetes.client.ApiClient()
    except kubernetes.config.ConfigException:
        client = kubernetes.config.new_client_from_config(context=settings.context)  # type: ignore[no-untyped-call]
        return client


class KubernetesBackend:
    name = "kubernetes"
    page_cap = 1_000_000
    filters_remotely = False

    def __init__(self, settings: KubernetesSettings, api_client: kubernetes.client.ApiClient | None = None) -> None:
        self.settings = settings
        self._api_client = api_client
        self._owned = api_client is None

    def _core(self) -> kubernetes.client.CoreV1Api:
        if self._api_client is None:
            try:
                self._api_client = _api_client(self.settings)
            except (kubernetes.config.ConfigException, OSError) as exc:
                raise ToolError(f"no usable Kubernetes configuration: {exc}") from None
        return kubernetes.client.CoreV1Api(self._api_client)

    async def fetch(self, query: LogQuery, limit: int, deadline: float) -> Fetched:
        if query.raw_query is not None:
            raise ToolError("the kubernetes backend has no native query language: use the typed filter fields")
        return await anyio.to_thread.run_sync(self._fetch, query, limit, deadline, abandon_on_cancel=True)

    def label_selector(self, query: LogQuery) -> str:
        requirements = list(query.selector)
        if query.services:
            requirements.append(Requirement(self.settings.service_label, "in", query.services))
        return ",".join(str(r) for r in requirements)

    def _fetch(self, query: LogQuery, limit: int, deadline: float) -> Fetched:
        core = self._core()
        namespace = query.namespace or self.settings.namespace
        selector = self.label_selector(query)
        timeout = min(self.settings.timeout_s, remaining(deadline))
        try:
            pods = core.list_namespaced_pod(namespace, label_selector=selector or None, _request_timeout=timeout)
        except ApiException as exc:
            raise _api_error(exc, f"listing pods in {namespace}") from None
        except Urllib3Error as exc:
            raise BackendUnavailable(f"Kubernetes API unreachable: {type(exc).__name__}: {exc}") from None
        notes = []
        items = sorted(_pods(pods.items), key=lambda pod: pod[0])
        if len(items) > self.settings.max_pods:
            notes.append(f"{len(items)} pods match; logs read from the first {self.settings.max_pods} only")
            items = items[: self.settings.max_pods]
        now_ns = to_ns(_now())
        since_seconds = max(1, math.ceil((now_ns - query.start_ns) / NS_PER_S))
        records: list[LogRecord] = []
        for pod_name, labels, containers in items:
            service = labels.get(self.settings.service_label) or pod_name
            for container in containers:
                check_deadline(deadline, self.name)
                try:
                    text = core.read_namespaced_pod_log(
                        pod_name,
                        namespace,
                        container=container,
                        timestamps=True,
                        since_seconds=since_seconds,
                        limit_bytes=self.settings.max_bytes_per_container,
                        _request_timeout=min(self.settings.timeout_s, remaining(deadline)),
                    )
                except ApiException as exc:
                    if exc.status in (400, 404):  # container not started yet, pod gone
                        continue
                    raise _api_error(exc, f"reading logs of {namespace}/{pod_name}") from None
                except Urllib3Error as exc:
                    raise BackendUnavailable(f"Kubernetes API unreachable: {type(exc).__name__}: {exc}") from None
                source = f"{pod_name}/{container}"
                records.extend(self._records(text, query, service, source, labels))
        records.sort(key=lambda r: (r.ts_ns, r.source), reverse=query.order == "newest")
        return Fetched(
            records=records[:limit], query=f"pods in {namespace} matching {selector or 'everything'}", notes=notes
        )

    @staticmethod
    def _records(text: Any, query: LogQuery, service: str, source: str, labels: dict[str, str]) -> list[LogRecord]:
        records = []
        for raw in str(text or "").splitlines():
            stamp, _, line = raw.partition(" ")
            ts = log_time_ns(stamp)
            if ts is None or not query.matches_text(line):
                continue
            parsed = parse_line(line)
            record = LogRecord(
                ts_ns=ts, service=service, level=parsed.level, message=parsed.message, source=source, labels=labels
            )
            if query.matches_record(record):
                records.append(record)
        return records

    async def aclose(self) -> None:
        if self._owned and self._api_client is not None:
            self._api_client.close()  # type: ignore[no-untyped-call]


def _now() -> datetime:
    return datetime.now(UTC)


def _pods(pods: list[Any]) -> list[tuple[str, dict[str, str], list[str]]]:
    """(name, labels, container names) of each pod."""
    found = []
    for pod in pods:
        if pod.metadata is None or pod.spec is None or not pod.metadata.name:
            continue
        labels = {str(k): str(v) for k, v in (pod.metadata.labels or {}).items()}
        found.append((str(pod.metadata.name), labels, [str(c.name) for c in pod.spec.containers or []]))
    return found


def _api_error(exc: ApiException, doing: str) -> ToolError:
    if exc.status in (401, 403):
        return ToolError(f"Kubernetes refused {doing} ({exc.status} {exc.reason}): check the credentials and RBAC")
    if exc.status is not None and exc.status >= 500:
        return BackendUnavailable(f"Kubernetes API failed {doing} ({exc.status} {exc.reason})")
    return ToolError(f"Kubernetes API error {doing} ({exc.status} {exc.reason})")
