"""Ranking suspects from evidence: pure functions, no I/O.

Each suspect's score is a noisy-or of its supporting evidence (each piece in [0, 1]), scaled down by
its strongest contradiction, so a score is a number an agent can compare across suspects and quote:

- a rollout (or config change) of service S at time t: anomalies of S beginning after t (their size,
  discounted by the lag), the pods of the new revision failing more than the others, error templates
  of S first seen after t, a rollout that does not complete. Against it: anomalies of S that began
  before t, symptoms that began earlier on services that did not change, and pods of the other
  revisions failing as much;
- a dependency (or its certificate): error templates first seen during the incident that name one
  target outside the namespace's services, in one or more services, weighed by how many services name
  it and whether those services are anomalous. Against it: the naming service's own change explains
  its errors better;
- load: request rates up across services with no change aligned;
- platform: Warning events about nodes (pressure, not ready, evictions) across services.

Nothing here follows text from the monitored system: templates are matched and counted, never
interpreted as instructions, and the sentences (which end up in the tool's summary) never quote them;
only names matching a strict pattern (a hyphenated identifier or a host label) are lifted from them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from opsgate.triage.sources import Change, ClusterEvent, LogTemplate, MetricAnomaly, PodState

SuspectKind = Literal["Deployment", "Dependency", "Certificate", "Load", "Node"]

EARLY_S = 120.0  # an anomaly may start this long before a change and still follow it (clock skew, scrape)
ONSET_GAP_S = 60.0  # onsets closer than this are simultaneous (one scrape interval)
LATE_S = 600.0  # symptoms this long after a change are "late": a coincidence needs explaining
TOGETHER_S = 180.0  # onsets this close began together
SPREAD_S = 3 * 3600.0  # symptoms elsewhere this long before ours may have spread to us
LAG_FULL_S = 1800.0  # anomalies within half an hour of a change count fully ...
LAG_DECAY_S = 7200.0  # ... then count less, e-folding every two hours
MAX_LAG_S = 6 * 3600.0  # and not at all past six hours
ERROR_LEVELS = frozenset({"error", "fatal", "critical", "panic", "warn", "warning"})
BAD_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "InvalidImageName",
        "RunContainerError",
    }
)
BAD_TERMINATION = frozenset({"OOMKilled", "Error", "ContainerCannotRun", "DeadlineExceeded"})
NODE_REASONS = frozenset(
    {
        "NodeNotReady",
        "NodeHasDiskPressure",
        "NodeHasMemoryPressure",
        "NodeHasPIDPressure",
        "EvictionThresholdMet",
        "Evicted",
        "NetworkNotReady",
        "Rebooted",
        "SystemOOM",
    }
)
CONFIDENT = 0.3  # below this top score: no confident suspect
STRONG = 0.6  # a rollback is proposed only at or above this score ...
MARGIN = 0.15  # ... and this far ahead of the runner-up
TLS_WORDS = re.compile(r"\bx509\b|\bcertificate\b|\btls\b|\bssl\b", re.IGNORECASE)
_URL_HOST = re.compile(r"[a-z][a-z0-9+.-]*://(?:[^@/\s\"']*@)?([A-Za-z0-9.-]+)")
_NAME = re.compile(r"(?<![\w.=/-])([a-z][a-z0-9]*(?:-[a-z0-9]+)+)(?![\w=-])")
_HOST_NOISE = frozenset({"api", "www", "com", "net", "org", "io", "example", "local", "svc", "cluster", "internal"})


@dataclass(frozen=True)
class Evidence:
    """Everything triage read, for one namespace and window."""

    namespace: str
    now: float
    start: float  # the incident window
    end: float
    changes: Sequence[Change] = ()
    anomalies: Sequence[MetricAnomaly] = ()
    templates: Sequence[LogTemplate] = ()
    pods: Sequence[PodState] = ()
    events: Sequence[ClusterEvent] = ()
    services: Sequence[str] = ()  # the namespace's services (Deployments), when known
    alert_service: str | None = None
    missing: Sequence[str] = ()


@dataclass
class PodSplit:
    revision: int | None
    new_total: int = 0
    new_bad: int = 0
    other_total: int = 0
    other_bad: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def new_share(self) -> float:
        return self.new_bad / self.new_total if self.new_total else 0.0

    @property
    def other_share(self) -> float:
        return self.other_bad / self.other_total if self.other_total else 0.0


@dataclass
class Suspect:
    kind: SuspectKind
    name: str
    namespace: str | None = None
    revision: int | None = None
    support: list[tuple[float, str]] = field(default_factory=list)
    contra: list[tuple[float, str]] = field(default_factory=list)
    change: Change | None = None
    anomalies: list[tuple[MetricAnomaly, float]] = field(default_factory=list)  # (anomaly, lag seconds)
    new_templates: list[LogTemplate] = field(default_factory=list)
    pods: PodSplit | None = None
    previous_healthy: bool | None = None

    @property
    def score(self) -> float:
        against = max((w for w, _ in self.contra), default=0.0)
        return round(_noisy_or(w for w, _ in self.support) * (1.0 - against), 3)


def _noisy_or(weights: Iterable[float]) -> float:
    miss = 1.0
    for w in weights:
        miss *= 1.0 - min(max(w, 0.0), 1.0)
    return 1.0 - miss


def size(a: MetricAnomaly) -> float:
    """How large an anomaly is, in [0, 1]: its robust z on a log scale (z = 12 or more counts fully)."""
    return min(1.0, math.log1p(abs(a.z)) / math.log1p(12.0))


def lag_weight(lag: float) -> float:
    if lag <= LAG_FULL_S:
        return 1.0
    if lag > MAX_LAG_S:
        return 0.0
    return max(0.3, math.exp(-(lag - LAG_FULL_S) / LAG_DECAY_S))


def is_bad(pod: PodState) -> str | None:
    """Why a pod is failing, or None."""
    if pod.waiting in BAD_WAITING:
        return pod.waiting
    if pod.restarts > 0 and pod.last_termination in BAD_TERMINATION:
        return pod.last_termination
    if not pod.ready:
        return "NotReady"
    return None


def pod_split(pods: Sequence[PodState], service: str, revision: int | None) -> PodSplit:
    split = PodSplit(revision)
    for pod in pods:
        if pod.service != service:
            continue
        why = is_bad(pod)
        if revision is not None and pod.revision == revision:
            split.new_total += 1
            if why:
                split.new_bad += 1
                split.reasons[why] = split.reasons.get(why, 0) + 1
        else:
            split.other_total += 1
            split.other_bad += 1 if why else 0
    return split


def named_targets(template: str, known: set[str]) -> tuple[set[str], bool]:
    """Targets an error template names outside the known services, and whether it is a TLS failure."""
    names: set[str] = set()
    for host in _URL_HOST.findall(template):
        labels = [x for x in host.lower().split(".") if x and x not in _HOST_NOISE]
        if labels:
            names.add(max(labels, key=len))
    names.update(_NAME.findall(template))
    outside = {n for n in names if n not in known}
    return outside, bool(TLS_WORDS.search(template))


def _ago(seconds: float) -> str:
    minutes = round(seconds / 60)
    if abs(minutes) < 120:
        return f"{minutes} min"
    return f"{seconds / 3600:.1f} h"


def _describe_anomaly(a: MetricAnomaly) -> str:
    if a.change_pct is not None and a.baseline > 0 and abs(a.change_pct) >= 1:
        factor = a.observed / a.baseline
        how = f"{factor:.1f}x its baseline" if factor >= 1.5 or factor <= 0.67 else f"{a.change_pct:+.0f}%"
    else:
        how = f"z {a.z:+.1f}"
    return f"{a.metric} {a.direction} ({how})"


# -- the suspects ---------------------------------------------------------------------------------


def rollout_suspects(ev: Evidence) -> list[Suspect]:
    """One suspect per changed service: its latest change in the lookback."""
    latest: dict[str, Change] = {}
    for c in ev.changes:
        if c.at > ev.now or c.kind not in ("rollout", "config", "scale"):
            continue
        if c.service not in latest or c.at > latest[c.service].at:
            latest[c.service] = c
    changed = set(latest)
    first_onset: dict[str, float] = {}  # per service, the onset of its current (ongoing) symptoms
    for a in ev.anomalies:
        if a.service is not None and a.ongoing:
            first_onset[a.service] = min(a.start, first_onset.get(a.service, a.start))
    out = []
    for service, c in latest.items():
        s = Suspect("Deployment", service, c.namespace, c.revision if c.kind != "scale" else None, change=c)
        what = {"rollout": f"rollout to revision {c.revision}", "config": f"config change (revision {c.revision})"}.get(
            c.kind, f"scale {c.replicas_before} -> {c.replicas_after}"
        )
        own = [a for a in ev.anomalies if a.service == service]
        after = [(a, a.start - c.at) for a in own if c.at - EARLY_S <= a.start <= c.at + MAX_LAG_S]
        # Symptoms already there before the change (and still there) cannot be its doing; a blip that
        # came and went long before it says nothing either way.
        before = [a for a in own if a.start < c.at - EARLY_S and a.ongoing]
        s.anomalies = sorted(after, key=lambda p: -size(p[0]) * lag_weight(p[1]))
        if s.anomalies:
            a, lag = s.anomalies[0]
            weight = size(a) * lag_weight(lag)
            more = f" and {len(after) - 1} more metric(s)" if len(after) > 1 else ""
            s.support.append((weight, f"{_describe_anomaly(a)} on {service} began {_ago(lag)} after the {what}{more}"))
        if before:
            b = max(before, key=size)
            s.contra.append((0.6 * size(b), f"{_describe_anomaly(b)} on {service} began before the change"))
        split = pod_split(ev.pods, service, c.revision)
        s.pods = split if split.new_total or split.other_total else None
        if split.new_total:
            gap = split.new_share - split.other_share
            if gap > 0:
                reasons = ", ".join(f"{n} {r}" for r, n in sorted(split.reasons.items(), key=lambda x: -x[1]))
                s.support.append(
                    (
                        0.9 * gap,
                        f"{split.new_bad}/{split.new_total} pods of revision {c.revision} failing ({reasons}) vs "
                        f"{split.other_bad}/{split.other_total} of the others",
                    )
                )
            elif split.other_bad and split.other_share >= split.new_share:
                s.contra.append((0.3, "pods of the other revisions fail as much as the new ones"))
        new_errors = [
            t
            for t in ev.templates
            if t.service == service and t.level in ERROR_LEVELS and t.first_seen >= c.at - EARLY_S
        ]
        s.new_templates = sorted(new_errors, key=lambda t: -t.count)
        if new_errors:
            s.support.append(
                (
                    min(0.7, 0.4 * len(new_errors)),
                    f"{len(new_errors)} error log template(s) on {service} first seen after it",
                )
            )
        if c.rollout_state in ("stalled", "progressing") and ev.now - c.at > 300:
            s.support.append((0.5, f"the rollout is still {c.rollout_state} more than 5 min after it started"))
        # Symptoms that began earlier on another service point away from it: its own symptoms are more
        # likely to have spread from there (or, with none of its own, the others' are not its doing).
        mine = first_onset.get(service)
        reference = mine if mine is not None else ev.now
        earlier = [
            (other, t)
            for other, t in first_onset.items()
            if other != service and reference - SPREAD_S <= t < reference - ONSET_GAP_S
        ]
        if earlier and (mine is not None or not split.new_bad):
            other, t = min(earlier, key=lambda p: p[1])
            how = ", which did not change," if other not in changed else ""
            if mine is not None:
                text = f"{other}{how} was anomalous {_ago(reference - t)} earlier"
            else:
                side = "after" if t >= c.at else "before"
                text = f"{other}{how} became anomalous ({_ago(abs(t - c.at))} {side} it)"
                text += f" while {service} shows no ongoing symptom"
            s.contra.append((0.5, text))
        # Symptoms that began long after the change, together with those of a service that did not
        # change, point to a cause they share rather than to this change.
        if mine is not None and mine - c.at >= LATE_S:
            together = sorted(
                other
                for other, t in first_onset.items()
                if other != service and other not in changed and abs(t - mine) <= TOGETHER_S
            )
            if together:
                s.contra.append(
                    (
                        0.5,
                        f"its symptoms began {_ago(mine - c.at)} after it, together with those of {together[0]}, "
                        "which did not change",
                    )
                )
        s.previous_healthy = c.previous_revision is not None and not before and split.other_share < 0.5
        out.append(s)
    return out


def dependency_suspects(ev: Evidence, rollouts: Sequence[Suspect]) -> list[Suspect]:
    known = set(ev.services) | {c.service for c in ev.changes} | {a.service for a in ev.anomalies if a.service}
    known |= {p.service for p in ev.pods} | {p.name for p in ev.pods}
    onset = min((a.start for a in ev.anomalies), default=ev.start)
    since = min(onset, ev.start) - 600.0
    naming: dict[str, set[str]] = {}
    tls: dict[str, bool] = {}
    new: dict[str, bool] = {}  # some naming template appeared with the incident (not a chronic error)
    sample: dict[str, LogTemplate] = {}
    for t in ev.templates:
        if t.level not in ERROR_LEVELS or t.last_seen < since:
            continue
        targets, is_tls = named_targets(f"{t.template}\n{t.sample}", known)
        for name in targets:
            naming.setdefault(name, set()).add(t.service)
            tls[name] = tls.get(name, False) or is_tls
            new[name] = new.get(name, False) or t.first_seen >= since
            if name not in sample or t.count > sample[name].count:
                sample[name] = t
    anomalous = {a.service for a in ev.anomalies if a.service}
    strong_rollouts = {s.name: s for s in rollouts if s.score >= STRONG}
    out = []
    for name, services in naming.items():
        kind: SuspectKind = "Certificate" if tls[name] else "Dependency"
        s = Suspect(kind, name)
        sick = sorted(services & anomalous)
        weight = _noisy_or([0.45] * len(services)) * (0.6 + 0.4 * bool(sick))
        what = "TLS/certificate failures" if tls[name] else "Errors"
        where = ", ".join(sorted(services))
        s.support.append((weight, f"{what} in {where} name {name}"))
        if sick:
            s.support.append((0.3, f"the services naming it are anomalous ({', '.join(sick)})"))
        if new[name]:
            s.support.append((0.3, "those errors began with the incident"))
        else:
            s.contra.append((0.3, "those errors were there before the incident"))
        s.new_templates = [sample[name]]
        explained = [strong_rollouts[x] for x in services if x in strong_rollouts]
        if explained and len(explained) == len(services):
            s.contra.append((0.5, f"the service naming it changed just before ({explained[0].name})"))
        out.append(s)
    return out


def load_suspect(ev: Evidence, rollouts: Sequence[Suspect]) -> Suspect | None:
    rising = [a for a in ev.anomalies if a.direction == "up" and a.service and "request" in a.metric]
    if not rising:
        return None
    by_service = {a.service: a for a in sorted(rising, key=size) if a.service}
    services = sorted(by_service)
    front = ev.alert_service if ev.alert_service in by_service else max(services, key=lambda x: size(by_service[x]))
    assert front is not None
    s = Suspect("Load", front, ev.namespace)
    a = by_service[front]
    s.anomalies = [(a, 0.0)]
    s.support.append(
        (
            0.35 + 0.2 * min(len(services) - 1, 3),
            f"request rate up on {len(services)} service(s): {', '.join(services)}",
        )
    )
    aligned = [r for r in rollouts if r.score >= 0.4]
    if aligned:
        s.contra.append((0.6, f"a change lines up with the symptoms ({aligned[0].name})"))
    else:
        s.support.append((0.3, "no change lines up with the rise"))
    return s


def node_suspects(ev: Evidence) -> list[Suspect]:
    by_node: dict[str, list[ClusterEvent]] = {}
    for e in ev.events:
        if e.type == "Warning" and e.reason in NODE_REASONS:
            by_node.setdefault(e.name if e.kind == "Node" else "unknown-node", []).append(e)
    out = []
    for node, events in by_node.items():
        s = Suspect("Node", node)
        reasons = sorted({e.reason for e in events})
        s.support.append((min(0.8, 0.3 * len(events)), f"Warning events on {node}: {', '.join(reasons)}"))
        out.append(s)
    return out


# -- the verdict -----------------------------------------------------------------------------------


@dataclass
class NextStep:
    action: Literal["rollback", "escalate", "scale", "investigate"]
    sentence: str
    tool: str | None = None
    arguments: dict[str, object] = field(default_factory=dict)


@dataclass
class Verdict:
    suspects: list[Suspect]
    confident: bool
    confidence: Literal["high", "medium", "low"]
    next_step: NextStep


def sentence(s: Suspect) -> str:
    """One quotable sentence explaining the suspect's score."""
    subject = {
        "Deployment": f"{s.name} revision {s.revision}" if s.revision is not None else f"{s.name}",
        "Dependency": f"dependency {s.name}",
        "Certificate": f"the certificate of {s.name}",
        "Load": f"load on {s.name}",
        "Node": f"node {s.name}",
    }[s.kind]
    best = [text for _, text in sorted(s.support, key=lambda p: -p[0])[:2]]
    against = [text for _, text in sorted(s.contra, key=lambda p: -p[0])[:1]]
    out = f"{subject} scores {s.score:.2f}"
    out += ": " + "; ".join(best) if best else ": no evidence points to it"
    if against:
        out += f"; but {against[0]}"
    return out + "."


def decide(ev: Evidence) -> Verdict:
    rollouts = rollout_suspects(ev)
    suspects: list[Suspect] = [*rollouts, *dependency_suspects(ev, rollouts), *node_suspects(ev)]
    load = load_suspect(ev, rollouts)
    if load is not None:
        suspects.append(load)
    suspects.sort(key=lambda s: (-s.score, s.kind, s.name))
    top = suspects[0] if suspects else None
    runner_up = suspects[1].score if len(suspects) > 1 else 0.0
    confident = top is not None and top.score >= CONFIDENT
    if top is not None and top.score >= STRONG and top.score - runner_up >= MARGIN:
        confidence: Literal["high", "medium", "low"] = "high"
    elif confident:
        confidence = "medium"
    else:
        confidence = "low"
    return Verdict(suspects, confident, confidence, next_step(top, confidence, ev))


def next_step(top: Suspect | None, confidence: str, ev: Evidence) -> NextStep:
    if top is None or confidence == "low":
        return NextStep(
            "investigate",
            "No confident suspect: read the anomalous services' logs (logs_patterns) and workload state, "
            "and escalate to the service owners; do not roll anything back on this evidence.",
        )
    c = top.change
    if (
        top.kind == "Deployment"
        and c is not None
        and c.kind in ("rollout", "config")
        and c.previous_revision is not None
        and top.previous_healthy
        and confidence == "high"
    ):
        return NextStep(
            "rollback",
            f"Propose rolling {c.service} back from revision {c.revision} to {c.previous_revision}, which ran "
            "without these symptoms: call rollback_deployment with dry_run=true, show the plan, and apply it only "
            "as policy allows (a real rollback may need a human approval).",
            "rollback_deployment",
            {"namespace": c.namespace, "deployment": c.service, "to_revision": c.previous_revision, "dry_run": True},
        )
    if top.kind in ("Dependency", "Certificate"):
        what = "its certificate" if top.kind == "Certificate" else "it"
        return NextStep(
            "escalate",
            f"Escalate to the owner of {top.name} ({what} is failing for its callers); no rollback of this "
            "namespace's Deployments would fix it.",
        )
    if top.kind == "Load":
        return NextStep(
            "scale",
            f"Load, not a change: consider scaling {top.name} (and what it calls) and escalate to its owner; "
            "a rollback would not help.",
        )
    if top.kind == "Node":
        return NextStep("escalate", f"Escalate to the platform team: node {top.name} reports trouble.")
    return NextStep(
        "investigate",
        f"{top.name} is the leading suspect but the evidence is not strong enough (or its previous revision was "
        "not healthy) to propose a rollback: inspect its rollout and logs, and escalate.",
    )
