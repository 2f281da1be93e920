"""Gathering the evidence through the sources, and shaping the verdict into the tool's output."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import anyio

from opsgate.durations import parse_duration
from opsgate.triage.analysis import Evidence, Suspect, Verdict, decide, sentence
from opsgate.triage.contracts import (
    AnomalyEvidence,
    ChangeEvidence,
    NextStepItem,
    SuspectItem,
    TriageInput,
    TriageOutput,
)
from opsgate.triage.sources import Change, ClusterEvent, LogTemplate, MetricAnomaly, PodState, Sources

T = TypeVar("T")
Clock = Callable[[], float]
ANSWER_BUDGET = 7600  # bytes of summary + JSON: the answer stays under 8 KB
MAX_LOG_SERVICES = 8  # services whose log templates are read, most suspicious first


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _clip(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TriageService:
    def __init__(self, sources: Sources, clock: Clock = time.time) -> None:
        self.sources = sources
        self.clock = clock

    async def _read(self, what: str, missing: list[str], call: Callable[[], Awaitable[list[T]]]) -> list[T]:
        try:
            return await call()
        except Exception as exc:  # a source that fails is reported, not fatal: triage works on the rest
            missing.append(f"{what}: {type(exc).__name__}: {_clip(str(exc), 160)}")
            return []

    async def _read_all(
        self, reads: list[tuple[str, Callable[[], Awaitable[list[Any]]]]], missing: list[str]
    ) -> list[list[Any]]:
        """The reads at once (they are independent; one slow source no longer adds to the others' time),
        answers and failures in the order given."""
        found: list[list[Any]] = [[] for _ in reads]
        failed: list[list[str]] = [[] for _ in reads]

        async def one(i: int) -> None:
            what, call = reads[i]
            found[i] = await self._read(what, failed[i], call)

        async with anyio.create_task_group() as group:
            for i in range(len(reads)):
                group.start_soon(one, i)
        missing.extend(m for f in failed for m in f)
        return found

    async def gather(self, args: TriageInput) -> Evidence:
        now = self.clock()
        start = now - parse_duration(args.since)
        since = start - parse_duration(args.lookback)
        missing = [f"{name}: not configured" for name in self.sources.missing()]
        src = self.sources
        focus = list(args.services) or None
        reads: dict[str, Callable[[], Awaitable[list[Any]]]] = {}
        if src.changes is not None:
            reads["changes"] = partial(src.changes.changes, args.namespace, since, now)
        if src.metrics is not None:
            reads["metrics"] = partial(src.metrics.anomalies, args.namespace, focus, since, now)
        if src.workloads is not None:
            reads["pods"] = partial(src.workloads.pods, args.namespace, None)
            reads["events"] = partial(src.workloads.events, args.namespace, since)
        got = dict(zip(reads, await self._read_all(list(reads.items()), missing), strict=True))
        changes: list[Change] = got.get("changes", [])
        anomalies: list[MetricAnomaly] = got.get("metrics", [])
        pods: list[PodState] = got.get("pods", [])
        events: list[ClusterEvent] = got.get("events", [])
        changes = changes + scale_changes(args.namespace, events, changes)
        if focus:
            changes = [c for c in changes if c.service in focus]
        templates: list[LogTemplate] = []
        if src.logs is not None:
            logs = src.logs
            services = self._log_services(args, changes, anomalies, pods)
            for found in await self._read_all(
                [(f"logs of {s}", partial(logs.templates, args.namespace, s, since, now)) for s in services], missing
            ):
                templates += found
        known = sorted({c.service for c in changes} | {p.service for p in pods} | set(args.services))
        return Evidence(
            namespace=args.namespace,
            now=now,
            start=start,
            end=now,
            changes=changes,
            anomalies=anomalies,
            templates=templates,
            pods=pods,
            events=events,
            services=known,
            alert_service=args.service,
            missing=missing,
        )

    @staticmethod
    def _log_services(
        args: TriageInput, changes: list[Change], anomalies: list[MetricAnomaly], pods: list[PodState]
    ) -> list[str]:
        ranked: dict[str, float] = {}
        for a in anomalies:
            if a.service:
                ranked[a.service] = ranked.get(a.service, 0.0) + 2.0
        for c in changes:
            ranked[c.service] = ranked.get(c.service, 0.0) + 1.0
        for p in pods:
            weight = 0.5 if not p.ready or p.restarts or p.waiting else 0.1
            ranked[p.service] = ranked.get(p.service, 0.0) + weight
        for name in (args.service, *args.services):
            if name:
                ranked[name] = ranked.get(name, 0.0) + 3.0
        return sorted(ranked, key=lambda s: (-ranked[s], s))[:MAX_LOG_SERVICES]

    async def triage(self, args: TriageInput) -> TriageOutput:
        ev = await self.gather(args)
        verdict = decide(ev)
        return shape(args, ev, verdict)


ROLLING_S = 900.0  # a rolling update's replica sets scale up and down for up to this long
_SCALED = re.compile(r"[Ss]caled (up|down) replica set (\S+) (?:from (\d+) )?to (\d+)")
_RESCALED = re.compile(r"New size: (\d+)")


def scale_changes(namespace: str, events: list[ClusterEvent], changes: list[Change]) -> list[Change]:
    """Scale events that are not part of a rollout: a Deployment scaled (by hand or by its autoscaler)
    outside the time its own rollouts take."""
    out: list[Change] = []
    for e in events:
        if e.reason == "SuccessfulRescale" and (m := _RESCALED.search(e.message)):
            service, after, before = e.name, int(m.group(1)), None
        elif e.reason == "ScalingReplicaSet" and e.kind == "Deployment" and (m := _SCALED.search(e.message)):
            service, after = e.name, int(m.group(4))
            before = int(m.group(3)) if m.group(3) else None
        else:
            continue
        at = e.last_seen
        if any(c.service == service and c.at - 120 <= at <= c.at + ROLLING_S for c in changes):
            continue  # the replica sets of a rollout scaling up and down
        out.append(
            Change(
                kind="scale", namespace=namespace, service=service, at=at, replicas_before=before, replicas_after=after
            )
        )
    return out


def _change(c: Change) -> ChangeEvidence:
    images = [
        f"{name}: {c.images_before.get(name, '-')} -> {c.images_after.get(name, '-')}"
        for name in sorted(set(c.images_before) | set(c.images_after))
        if c.images_before.get(name) != c.images_after.get(name)
    ]
    return ChangeEvidence(
        kind=c.kind,
        at=iso(c.at),
        revision=c.revision,
        previous_revision=c.previous_revision,
        image_diff=images[:3],
        config_diff=[_clip(d, 100) for d in c.config_diff[:4]],
        change_cause=_clip(c.change_cause, 100) if c.change_cause else None,
        rollout_state=c.rollout_state,
    )


def _item(rank: int, s: Suspect) -> SuspectItem:
    c = s.change
    anomalies = [
        AnomalyEvidence(
            metric=a.metric,
            service=a.service,
            onset=iso(a.start),
            lag_s=round(lag) if c is not None else None,
            direction=a.direction,
            z=round(a.z, 1),
            change_pct=round(a.change_pct, 1) if a.change_pct is not None else None,
        )
        for a, lag in s.anomalies[:3]
    ]
    templates = [
        f"{t.service} [{t.level}] x{t.count} since {iso(t.first_seen)}: {_clip(t.template)}"
        for t in s.new_templates[:2]
    ]
    pods = None
    if s.pods is not None and s.pods.new_total:
        pods = {
            "changed_total": s.pods.new_total,
            "changed_failing": s.pods.new_bad,
            "others_total": s.pods.other_total,
            "others_failing": s.pods.other_bad,
            **dict(list(s.pods.reasons.items())[:4]),
        }
    return SuspectItem(
        rank=rank,
        kind=s.kind,
        name=s.name,
        namespace=s.namespace,
        revision=s.revision,
        score=s.score,
        explanation=_clip(sentence(s), 400),
        supporting=[_clip(text, 200) for _, text in sorted(s.support, key=lambda p: -p[0])[:3]],
        contradicting=[_clip(text, 200) for _, text in sorted(s.contra, key=lambda p: -p[0])[:2]],
        change=_change(c) if c is not None else None,
        anomalies=anomalies,
        new_templates=templates,
        pods=pods,
    )


def shape(args: TriageInput, ev: Evidence, verdict: Verdict) -> TriageOutput:
    suspects = verdict.suspects
    items = [_item(i + 1, s) for i, s in enumerate(suspects[: args.limit])]
    if not suspects:
        summary = "No suspect: nothing changed and nothing anomalous was found in the window."
    elif not verdict.confident:
        summary = f"No confident suspect; the best candidate is weak: {items[0].explanation}"
    else:
        summary = items[0].explanation
    step: dict[str, Any] = {
        "action": verdict.next_step.action,
        "sentence": verdict.next_step.sentence,
        "tool": verdict.next_step.tool,
        "arguments": verdict.next_step.arguments,
    }
    out = TriageOutput(
        items=items,
        truncated=len(suspects) > args.limit,
        limit=args.limit,
        backend="composite",
        namespace=args.namespace,
        start=iso(ev.start),
        end=iso(ev.end),
        confident=verdict.confident,
        confidence=verdict.confidence,
        summary=summary,
        next_step=NextStepItem.model_validate(step),
        evidence_missing=list(ev.missing),
        read={
            "changes": len(ev.changes),
            "anomalies": len(ev.anomalies),
            "templates": len(ev.templates),
            "pods": len(ev.pods),
            "events": len(ev.events),
        },
    )
    return fit(out)


def _size(out: TriageOutput) -> int:
    return len(out.model_dump_json(exclude_none=True).encode()) + len(out.summary.encode()) + 600


def fit(out: TriageOutput, budget: int = ANSWER_BUDGET) -> TriageOutput:
    """The answer within ``budget`` bytes (summary + JSON): lower-ranked suspects lose their detailed
    evidence first (their sentence stays), then the lowest-ranked suspects go (``truncated``)."""
    items = list(out.items)
    for i in range(len(items) - 1, 0, -1):
        if _size(out.model_copy(update={"items": items})) <= budget:
            break
        items[i] = items[i].model_copy(
            update={
                "change": None,
                "anomalies": [],
                "new_templates": [],
                "pods": None,
                "supporting": [],
                "contradicting": [],
            }
        )
    while len(items) > 1 and _size(out.model_copy(update={"items": items})) > budget:
        items.pop()
    return out.model_copy(update={"items": items, "truncated": out.truncated or len(items) < len(out.items)})
