"""The workloads capability: `workload_status` and `k8s_events` (reads, through the gate).

Backend: the Kubernetes API through the official client (a kubeconfig, in-cluster credentials, or an
API URL such as the sandbox's loopback emulation, which `opsgate serve` wires in when it has no config).
Condition and event messages come from the monitored system: the contracts mark them untrusted (in the
summary and in `untrusted_fields`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from opsgate import kube_client
from opsgate.config import Settings, load_section
from opsgate.contracts import Capability, Contract, Target, ToolError
from opsgate.durations import parse_duration
from opsgate.gate import CallContext
from opsgate.kube_client import label_selector
from opsgate.workloads.backends.kubernetes import KubernetesReader
from opsgate.workloads.contracts import (
    EVENTS_UNTRUSTED,
    STATUS_UNTRUSTED,
    EventsInput,
    EventsOutput,
    StatusInput,
    WorkloadStatus,
)
from opsgate.workloads.events import Scope, group_events, owner_patterns, record_of
from opsgate.workloads.state import (
    build_status,
    controller_revisions,
    deployment_revisions,
    owned_by,
)


class WorkloadsSettings(BaseModel):
    """`[workloads]`: which cluster to read."""

    model_config = ConfigDict(extra="forbid")

    api_url: str | None = Field(default=None, description="API server URL (no credentials; e.g. the loopback API)")
    kubeconfig: Path | None = None
    context: str | None = None
    in_cluster: bool = False
    request_timeout_s: float = Field(default=8.0, gt=0, le=60)


class WorkloadsService:
    def __init__(self, reader: KubernetesReader) -> None:
        self.reader = reader

    async def status(self, args: StatusInput, ctx: CallContext) -> WorkloadStatus:
        workload = await self.reader.get(args.kind, args.namespace, args.name)
        selector = label_selector((workload.get("spec") or {}).get("selector") or {})
        uid = (workload.get("metadata") or {}).get("uid")
        if args.kind == "Deployment":
            replica_sets = await self.reader.list_replica_sets(args.namespace, selector)
            revisions = deployment_revisions(workload, replica_sets)
            owners = {(rs.get("metadata") or {}).get("uid") for rs in replica_sets if owned_by(rs, uid)}
            pods = [
                p
                for p in await self.reader.list_pods(args.namespace, selector)
                if any(owned_by(p, owner) for owner in owners)
            ]
        else:
            revisions = controller_revisions(
                workload, await self.reader.list_controller_revisions(args.namespace, selector)
            )
            pods = [p for p in await self.reader.list_pods(args.namespace, selector) if owned_by(p, uid)]
        return build_status(args.kind, workload, revisions, pods, max_pods=args.pods, backend=self.reader.name)

    async def _scope(self, args: EventsInput) -> tuple[Scope | None, list[str]]:
        if args.name is None:
            return None, []
        kind = args.kind or "Deployment"
        uids: set[str] = set()
        refs = {(kind, args.name)}
        try:
            obj = await self.reader.get(kind, args.namespace, args.name) if kind in _GETTABLE else None
        except ToolError as exc:
            if not str(exc).startswith("not found"):
                raise
            obj = None
        if obj is not None and args.include_owned:
            uid = str((obj.get("metadata") or {}).get("uid") or "")
            uids.add(uid)
            if kind == "Deployment":
                for rs in await self.reader.list_replica_sets(args.namespace):
                    if owned_by(rs, uid):
                        rs_meta = rs.get("metadata") or {}
                        uids.add(str(rs_meta.get("uid")))
                        refs.add(("ReplicaSet", str(rs_meta.get("name"))))
            owners = set(uids)
            if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
                for pod in await self.reader.list_pods(args.namespace):
                    if any(owned_by(pod, owner) for owner in owners):
                        uids.add(str((pod.get("metadata") or {}).get("uid")))
        patterns = owner_patterns(kind, args.name) if args.include_owned else ()
        scope = Scope(frozenset(u for u in uids if u), frozenset(refs), patterns)
        names = [f"{kind}/{args.name}"] + (
            [f"owned {k}s matching {p.pattern}" for k, p in patterns] if patterns else []
        )
        return scope, names

    async def events(self, args: EventsInput, ctx: CallContext) -> EventsOutput:
        now = datetime.now(UTC)
        since = now - timedelta(seconds=parse_duration(args.since))
        scope, scope_names = await self._scope(args)
        field = f"type={args.type}" if args.type else None
        raw = await self.reader.list_events(args.namespace, field)
        reasons = set(args.reasons)
        matched = []
        for event in raw:
            involved = event.get("involvedObject") or event.get("regarding") or {}
            if scope is not None and not scope.contains(involved):
                continue
            record = record_of(event)
            if args.type and record.type != args.type:
                continue
            if reasons and record.reason not in reasons:
                continue
            if record.last is not None and record.last < since:
                continue
            matched.append(record)
        if scope is not None and not matched and not scope.uids:
            raise ToolError(
                f"not found: {args.kind or 'Deployment'} {args.namespace}/{args.name} does not exist and no events "
                "in the window name it; check the kind and name (workload_status, changes_recent)"
            )
        groups = group_events(matched)
        by_type: dict[str, int] = {}
        for record in matched:
            by_type[record.type] = by_type.get(record.type, 0) + record.count
        return EventsOutput(
            items=groups[: args.limit],
            truncated=len(groups) > args.limit,
            limit=args.limit,
            backend=self.reader.name,
            namespace=args.namespace,
            scope=scope_names,
            since=since,
            events_matched=len(matched),
            groups_total=len(groups),
            by_type=by_type,
            untrusted_fields=list(EVENTS_UNTRUSTED),
        )


_GETTABLE = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod"})


def _status_target(args: StatusInput) -> Target:
    return Target(namespace=args.namespace, service=args.name)


def _events_target(args: EventsInput) -> Target:
    return Target(namespace=args.namespace, service=args.name)


def _summarize_status(out: WorkloadStatus) -> str:
    return out.summary


def _summarize_events(out: EventsOutput) -> str:
    where = out.scope[0] if out.scope else f"namespace {out.namespace}"
    if not out.items:
        return f"No events for {where} since {out.since.isoformat(timespec='minutes')}."
    warnings = [g for g in out.items if g.type == "Warning"]
    head = "; ".join(f"{g.reason} x{g.count} on {g.object}" for g in (warnings or out.items)[:3])
    more = " (truncated; more groups available)" if out.truncated else ""
    return (
        f"{out.events_matched} event(s) in {out.groups_total} (object, reason) group(s) for {where} since "
        f"{out.since.isoformat(timespec='minutes')}; newest first{more}. "
        f"{'Warnings' if warnings else 'Latest'}: {head}."
    )


def build(settings: Settings) -> Capability:
    config = load_section("workloads", settings.workloads, WorkloadsSettings)
    api_client, unavailable = kube_client.connect_section("workloads", config)
    reader = KubernetesReader(api_client, request_timeout_s=config.request_timeout_s, unavailable=unavailable)
    service = WorkloadsService(reader)

    async def close() -> None:
        reader.close()

    timeout = config.request_timeout_s * 4 + 5
    contracts: list[Contract[Any, Any]] = [
        Contract(
            name="workload_status",
            capability="workloads",
            title="Workload status",
            purpose=(
                "State of a Deployment, StatefulSet or DaemonSet: replicas, rollout progress, problems per pod "
                "(CrashLoopBackOff, OOMKilled, image pull, not ready), each revision's pods, images, resources and "
                "probes, and the worst pods with restarts, last termination and node."
            ),
            input_model=StatusInput,
            output_model=WorkloadStatus,
            scope="read",
            risk="low",
            handler=service.status,
            target=_status_target,
            summarize=_summarize_status,
            untrusted_output=True,
            untrusted_fields=STATUS_UNTRUSTED,
            timeout_s=timeout,
        ),
        Contract(
            name="k8s_events",
            capability="workloads",
            title="Kubernetes events",
            purpose=(
                "Kubernetes events of a namespace or one object and what it owns, filtered by type, reason and "
                "age, grouped by (object, reason) with counts and first/last seen, newest first."
            ),
            input_model=EventsInput,
            output_model=EventsOutput,
            scope="read",
            risk="low",
            handler=service.events,
            target=_events_target,
            summarize=_summarize_events,
            untrusted_output=True,
            untrusted_fields=EVENTS_UNTRUSTED,
            timeout_s=timeout,
        ),
    ]

    async def probe() -> str:
        """One list request to the cluster through the reader's own path (a 403 still proves it answers:
        `opsgate check` reports a ToolError as answered)."""
        namespace = next(iter(settings.environments), "default")
        found = await reader.list_pods(namespace)
        return f"answered: {len(found)} pod(s) in namespace {namespace}"

    return Capability(name="workloads", contracts=contracts, closers=[close], probes={"kubernetes": probe})
