"""Pure logic: Kubernetes events filtered to a scope and a window, grouped by (object, reason).

Both event shapes a cluster stores are read: classic events (`count`, `firstTimestamp`,
`lastTimestamp`) and new-style ones seen through core/v1 (`eventTime`, `series.count`,
`series.lastObservedTime`). Messages are text from the monitored system; they are clipped and
returned as data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opsgate.kube_client import parse_time
from opsgate.workloads.contracts import EventGroup
from opsgate.workloads.state import clip

JsonObject = dict[str, Any]

_HASH = r"[a-z0-9]{5,10}"
_SUFFIX = r"[a-z0-9]{5}"


@dataclass(frozen=True)
class Scope:
    """The objects whose events count: by uid, and by name pattern for owned objects that are gone."""

    uids: frozenset[str]
    refs: frozenset[tuple[str, str]]  # (kind, name)
    patterns: tuple[tuple[str, re.Pattern[str]], ...]  # (kind, name regex)

    def contains(self, involved: JsonObject) -> bool:
        uid = str(involved.get("uid") or "")
        if uid and uid in self.uids:
            return True
        kind, name = str(involved.get("kind", "")), str(involved.get("name", ""))
        if (kind, name) in self.refs:
            return True
        return any(kind == k and pattern.fullmatch(name) for k, pattern in self.patterns)


def owner_patterns(kind: str, name: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Names the controllers give the objects a workload owns (so events of deleted pods still count)."""
    n = re.escape(name)
    if kind == "Deployment":
        return (
            ("ReplicaSet", re.compile(rf"{n}-{_HASH}")),
            ("Pod", re.compile(rf"{n}-{_HASH}-{_SUFFIX}")),
        )
    if kind == "StatefulSet":
        return (("Pod", re.compile(rf"{n}-[0-9]+")), ("ControllerRevision", re.compile(rf"{n}-{_HASH}")))
    if kind == "DaemonSet":
        return (("Pod", re.compile(rf"{n}-{_SUFFIX}")), ("ControllerRevision", re.compile(rf"{n}-{_HASH}")))
    if kind == "ReplicaSet":
        return (("Pod", re.compile(rf"{n}-{_SUFFIX}")),)
    return ()


@dataclass(frozen=True)
class EventRecord:
    object: str
    kind: str
    name: str
    reason: str
    type: str
    count: int
    first: datetime | None
    last: datetime | None
    message: str
    source: str | None


def record_of(event: JsonObject) -> EventRecord:
    involved = event.get("involvedObject") or event.get("regarding") or {}
    series = event.get("series") or {}
    first = parse_time(event.get("firstTimestamp")) or parse_time(event.get("eventTime"))
    last = (
        parse_time(event.get("lastTimestamp"))
        or parse_time(series.get("lastObservedTime"))
        or parse_time(event.get("eventTime"))
        or first
    )
    first = first or parse_time((event.get("metadata") or {}).get("creationTimestamp")) or last
    count = int(event.get("count") or series.get("count") or 1)
    source = event.get("source") or {}
    reporter = event.get("reportingComponent") or source.get("component") or event.get("reportingController")
    host = source.get("host")
    kind, name = str(involved.get("kind", "")), str(involved.get("name", ""))
    return EventRecord(
        object=f"{kind}/{name}",
        kind=kind,
        name=name,
        reason=str(event.get("reason") or ""),
        type=str(event.get("type") or "Normal"),
        count=max(count, 1),
        first=first,
        last=last,
        message=str(event.get("message") or event.get("note") or ""),
        source=", ".join(str(p) for p in (reporter, host) if p) or None,
    )


def group_events(records: list[EventRecord]) -> list[EventGroup]:
    """One group per (object, reason), newest first by last seen."""
    groups: dict[tuple[str, str], list[EventRecord]] = {}
    for record in records:
        groups.setdefault((record.object, record.reason), []).append(record)
    out = []
    for (obj, reason), members in groups.items():
        latest = max(members, key=lambda r: (r.last.timestamp() if r.last else 0.0, r.count))
        firsts = [r.first for r in members if r.first]
        lasts = [r.last for r in members if r.last]
        out.append(
            EventGroup(
                object=obj,
                reason=reason,
                type="Warning" if any(r.type == "Warning" for r in members) else latest.type,
                count=sum(r.count for r in members),
                first_seen=min(firsts) if firsts else None,
                last_seen=max(lasts) if lasts else None,
                message=clip(latest.message) or "",
                distinct_messages=len({r.message for r in members}),
                source=latest.source,
            )
        )
    out.sort(key=lambda g: (g.last_seen.timestamp() if g.last_seen else 0.0, g.count, g.object), reverse=True)
    return out
