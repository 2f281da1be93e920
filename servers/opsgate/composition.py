"""Composition: the triage capability wired to the other capabilities' service interfaces.

Triage declares what it reads in `opsgate.triage.sources` (protocols); this module, part of the
application like `server`, implements those protocols over the capabilities as the same settings
configure them (the same cluster, the same Prometheus, the same log backend), so triage never
imports another capability and never calls an MCP tool. A capability that is not configured leaves
its source None, and triage reports the evidence it could not read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import anyio

from opsgate import kube_client
from opsgate.config import ConfigError, Settings, load_section
from opsgate.contracts import Capability
from opsgate.triage.server import build_capability
from opsgate.triage.sources import (
    Change,
    ClusterEvent,
    LogTemplate,
    MetricAnomaly,
    PodState,
    Sources,
)

_SERVICE = re.compile(r'(?:^|[{,])service="([^"]*)"')


def _ts(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


# -- changes: the rollback capability's cluster ----------------------------------------------------


class RolloutChanges:
    """Rollouts and config changes from the Deployments' revision histories (ReplicaSets)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    async def changes(self, namespace: str, since: float, until: float) -> list[Change]:
        from opsgate.rollback.revisions import images, owned_revisions, revision_of, template_diff
        from opsgate.rollback.server import rollout_status_of

        out: list[Change] = []
        # one list of the namespace's ReplicaSets, as changes_recent reads them: owned_revisions keeps each
        # Deployment's own (by controller uid), so one request serves every Deployment
        deployments = await self.backend.list_deployments(namespace)
        replica_sets = await self.backend.list_replica_sets(namespace, None)
        for deployment in deployments:
            revisions = owned_revisions(deployment, replica_sets)
            current = revision_of(deployment)
            state = rollout_status_of(deployment).state
            name = str(deployment["metadata"]["name"])
            for previous, revision in zip([None, *revisions[:-1]], revisions, strict=True):
                at = _ts(revision.created)
                if at is None or not since <= at <= until:
                    continue
                diff = template_diff(previous.template, revision.template) if previous is not None else None
                config = (
                    [f"{container}: env {var}: {old} -> {new}" for container, var, old, new in diff.env_changes]
                    + list(diff.other_changes)
                    if diff is not None
                    else []
                )
                before = images(previous.template) if previous is not None else {}
                after = images(revision.template)
                out.append(
                    Change(
                        kind="rollout" if before != after or diff is None else "config",
                        namespace=namespace,
                        service=name,
                        at=at,
                        revision=revision.number,
                        previous_revision=previous.number if previous is not None else None,
                        images_before=before,
                        images_after=after,
                        config_diff=tuple(config),
                        change_cause=revision.change_cause,
                        current=revision.number == current,
                        rollout_state=(
                            {"failed": "stalled"}.get(state, state) if revision.number == current else "complete"
                        ),
                    )
                )
        return out


# -- anomalies: the metrics capability's backend and detector --------------------------------------


class MetricAnomalies:
    def __init__(self, backend: Any, key_metrics: Sequence[str], step_s: float, baseline_s: float) -> None:
        self.backend = backend
        self.key_metrics = list(key_metrics)
        self.step_s = step_s
        self.baseline_s = baseline_s

    async def anomalies(
        self, namespace: str, services: Sequence[str] | None, start: float, end: float
    ) -> list[MetricAnomaly]:
        from opsgate.metrics import analysis
        from opsgate.metrics.selection import Selection, matchers_from

        found = []
        for metric in self.key_metrics:
            selection = Selection(metric=metric, matchers=matchers_from(namespace, None, []))
            found.extend(await self.backend.query_range(selection, start - self.baseline_s, end, self.step_s))
        if services:
            found = [s for s in found if s.labels.get("service") in services]
        ranked = await anyio.to_thread.run_sync(analysis.rank, found, (start, end))
        out = []
        for item in ranked.items:
            match = _SERVICE.search(item.series.split("{", 1)[-1]) if "{" in item.series else None
            onset = _ts(item.start)
            peak = _ts(item.peak)
            if onset is None or peak is None:
                continue
            out.append(
                MetricAnomaly(
                    metric=item.series.split("{", 1)[0],
                    service=match.group(1) if match else None,
                    series=item.series,
                    start=onset,
                    peak=peak,
                    direction=item.direction,
                    z=item.z,
                    change_pct=item.change_pct,
                    observed=item.observed,
                    baseline=item.baseline,
                    ongoing=item.ongoing,
                )
            )
        return out


# -- log templates: the logs capability's service --------------------------------------------------


_LEVEL_ORDER = ("trace", "debug", "info", "notice", "warn", "warning", "error", "critical", "fatal", "panic")


class LogTemplates:
    def __init__(self, service: Any) -> None:
        self.service = service

    async def templates(self, namespace: str, service: str, start: float, end: float) -> list[LogTemplate]:
        from opsgate.logs.contracts import PatternsInput

        def rfc3339(t: float) -> str:
            return datetime.fromtimestamp(t).astimezone().isoformat()

        args = PatternsInput(
            namespace=namespace, service=service, start=rfc3339(start), end=rfc3339(end), limit=50, rank="severity"
        )
        out = []
        for p in (await self.service.patterns(args)).items:
            first, last = _ts(p.first_seen), _ts(p.last_seen)
            if first is None or last is None:
                continue
            worst = max(p.levels, key=lambda lv: _LEVEL_ORDER.index(lv) if lv in _LEVEL_ORDER else -1, default="")
            out.append(LogTemplate(service, p.template, p.count, first, last, worst, p.sample))
        return out


# -- pods and events: the Kubernetes API the rollback capability reads -----------------------------


class ClusterWorkloads:
    """Pods (with the Deployment revision of their ReplicaSet) and Events, read from the cluster."""

    def __init__(self, backend: Any) -> None:
        from opsgate.workloads.backends.kubernetes import KubernetesReader

        self.backend = backend
        # the workloads capability's reader over the same client: raw JSON lists, its error messages
        self.reader = KubernetesReader(backend.api_client, request_timeout_s=float(getattr(backend, "timeout", 10.0)))

    async def pods(self, namespace: str, service: str | None) -> list[PodState]:
        from opsgate.rollback.revisions import revision_of

        revision_by_rs = {
            str(rs["metadata"]["name"]): revision_of(rs) for rs in await self.backend.list_replica_sets(namespace, None)
        }
        out = []
        for pod in await self.reader.list_pods(namespace):
            meta, status = pod.get("metadata") or {}, pod.get("status") or {}
            labels = meta.get("labels") or {}
            app = str(labels.get("app") or labels.get("app.kubernetes.io/name") or "")
            if service is not None and app != service:
                continue
            owner = next(
                (o.get("name") for o in meta.get("ownerReferences") or [] if o.get("kind") == "ReplicaSet"), None
            )
            containers = status.get("containerStatuses") or []
            ready = bool(containers) and all(c.get("ready") for c in containers)
            restarts = sum(int(c.get("restartCount") or 0) for c in containers)
            terminated = next(
                (
                    c["lastState"]["terminated"].get("reason")
                    for c in containers
                    if (c.get("lastState") or {}).get("terminated")
                ),
                None,
            )
            waiting = next(
                (c["state"]["waiting"].get("reason") for c in containers if (c.get("state") or {}).get("waiting")),
                None,
            )
            out.append(
                PodState(
                    name=str(meta.get("name")),
                    service=app,
                    revision=revision_by_rs.get(str(owner)) if owner else None,
                    ready=ready,
                    restarts=restarts,
                    last_termination=terminated,
                    waiting=waiting,
                    node=(pod.get("spec") or {}).get("nodeName"),
                )
            )
        return out

    async def events(self, namespace: str, since: float) -> list[ClusterEvent]:
        out = []
        for e in await self.reader.list_events(namespace):
            last = _ts(
                e.get("lastTimestamp") or e.get("eventTime") or (e.get("metadata") or {}).get("creationTimestamp")
            )
            first = _ts(e.get("firstTimestamp")) or last
            if last is None or last < since:
                continue
            obj = e.get("involvedObject") or e.get("regarding") or {}
            out.append(
                ClusterEvent(
                    type=str(e.get("type") or "Normal"),
                    reason=str(e.get("reason") or ""),
                    kind=str(obj.get("kind") or ""),
                    name=str(obj.get("name") or ""),
                    message=str(e.get("message") or e.get("note") or "")[:300],
                    count=int(e.get("count") or 1),
                    first_seen=first or last,
                    last_seen=last,
                )
            )
        return out


# -- wiring ----------------------------------------------------------------------------------------


def triage_sources(settings: Settings) -> tuple[Sources, list[Any]]:
    """The sources over the capabilities as ``settings`` configure them, and what to close."""
    sources = Sources()
    closers: list[Any] = []
    try:
        from opsgate.rollback.backends.kubernetes import KubernetesBackend
        from opsgate.rollback.server import RollbackSettings

        rb = load_section("rollback", settings.rollback, RollbackSettings)
        if kube_client.configured(rb):
            kube = KubernetesBackend(
                kube_client.connect(
                    api_url=rb.api_url, kubeconfig=rb.kubeconfig, context=rb.context, in_cluster=rb.in_cluster
                ),
                request_timeout_s=rb.request_timeout_s,
            )
            sources.changes = RolloutChanges(kube)
            sources.workloads = ClusterWorkloads(kube)

            async def close_kube() -> None:
                kube.close()

            closers.append(close_kube)
    except (ConfigError, ValueError, OSError):
        sources.changes = None
    try:
        from opsgate.metrics.server import make_backend as make_metrics_backend
        from opsgate.metrics.settings import MetricsSettings

        ms = load_section("metrics", settings.metrics, MetricsSettings)
        metrics_backend = make_metrics_backend(ms)
        sources.metrics = MetricAnomalies(metrics_backend, ms.key_metrics, ms.base_step_s, 2 * 86_400.0)
        closers.append(metrics_backend.aclose)
    except (ConfigError, ValueError, OSError):
        sources.metrics = None
    try:
        from opsgate.logs.server import make_backend as make_logs_backend
        from opsgate.logs.service import LogsService
        from opsgate.logs.settings import LogsSettings

        ls = load_section("logs", settings.logs, LogsSettings)
        logs_backend = make_logs_backend(ls, index_dir=settings.state_dir / "logs-index")
        sources.logs = LogTemplates(LogsService(ls, logs_backend))
        if hasattr(logs_backend, "aclose"):
            closers.append(logs_backend.aclose)
    except (ConfigError, ValueError, OSError):
        sources.logs = None
    return sources, closers


def triage(settings: Settings) -> Capability:
    """The `triage` capability, wired to the others as ``settings`` configure them."""
    sources, closers = triage_sources(settings)
    capability = build_capability(sources)
    capability.closers.extend(closers)
    return capability
