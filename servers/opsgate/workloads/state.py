"""Pure logic: a workload's state from API JSON (workload, its ReplicaSets or ControllerRevisions, pods).

It reads what `kubectl rollout status`, `kubectl get pods` and `kubectl describe` show and condenses it:
replicas, the rollout's progress, revisions with their images, resources and probes, and the pods
ranked worst first (a container waiting in CrashLoopBackOff or ImagePullBackOff, then pods not ready,
then recent terminations such as OOMKilled, then restarts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opsgate.kube_client import parse_time
from opsgate.workloads.contracts import (
    STATUS_UNTRUSTED,
    Condition,
    ContainerSpec,
    ContainerState,
    PodState,
    Replicas,
    RevisionState,
    Rollout,
    Termination,
    WorkloadKind,
    WorkloadStatus,
)

JsonObject = dict[str, Any]

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"
POD_TEMPLATE_HASH = "pod-template-hash"
CONTROLLER_REVISION_HASH = "controller-revision-hash"
MESSAGE_LIMIT = 300
BLOCKING_WAITS = frozenset(
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


def clip(text: Any, limit: int = MESSAGE_LIMIT) -> str | None:
    if not isinstance(text, str) or not text:
        return None
    flat: str = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def owned_by(obj: JsonObject, owner_uid: str | None) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return owner_uid is not None and any(r.get("uid") == owner_uid and r.get("controller") for r in refs)


# --- containers and pods --------------------------------------------------------------------------


def _probe(kind: str, probe: JsonObject) -> str:
    if "httpGet" in probe:
        http = probe["httpGet"]
        scheme = "https " if str(http.get("scheme", "HTTP")).upper() == "HTTPS" else ""
        check = f"GET {scheme}:{http.get('port')}{http.get('path') or '/'}"
    elif "tcpSocket" in probe:
        check = f"tcp :{probe['tcpSocket'].get('port')}"
    elif "grpc" in probe:
        check = f"grpc :{probe['grpc'].get('port')}"
    elif "exec" in probe:
        command = " ".join(str(c) for c in (probe["exec"].get("command") or [])[:4])
        check = f"exec {clip(command, 80) or ''}".strip()
    else:
        check = "unknown check"
    period, timeout = int(probe.get("periodSeconds") or 10), int(probe.get("timeoutSeconds") or 1)
    text = f"{kind} {check} every {period}s, timeout {timeout}s, {int(probe.get('failureThreshold') or 3)} failures"
    delay = int(probe.get("initialDelaySeconds") or 0)
    return text + (f", delay {delay}s" if delay else "")


def container_specs(template: JsonObject) -> list[ContainerSpec]:
    specs = []
    for container in ((template.get("spec") or {}).get("containers")) or []:
        resources = container.get("resources") or {}
        probes = [
            _probe(kind, container[field])
            for kind, field in (
                ("readiness", "readinessProbe"),
                ("liveness", "livenessProbe"),
                ("startup", "startupProbe"),
            )
            if isinstance(container.get(field), dict)
        ]
        specs.append(
            ContainerSpec(
                name=str(container.get("name", "")),
                image=str(container.get("image", "")),
                requests={str(k): str(v) for k, v in (resources.get("requests") or {}).items()},
                limits={str(k): str(v) for k, v in (resources.get("limits") or {}).items()},
                probes=probes,
            )
        )
    return specs


def _termination(state: JsonObject | None) -> Termination | None:
    terminated = (state or {}).get("terminated")
    if not isinstance(terminated, dict):
        return None
    return Termination(
        reason=terminated.get("reason"),
        exit_code=terminated.get("exitCode"),
        finished=parse_time(terminated.get("finishedAt")),
    )


def pod_status_text(pod: JsonObject) -> str:
    """The STATUS column of `kubectl get pods`."""
    status = pod.get("status") or {}
    reason = str(status.get("reason") or status.get("phase") or "Unknown")
    for container in reversed(status.get("containerStatuses") or []):
        state = container.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = str(state["waiting"]["reason"])
        elif (state.get("terminated") or {}).get("reason"):
            reason = str(state["terminated"]["reason"])
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    return reason


@dataclass
class PodFacts:
    state: PodState
    problems: list[str]
    score: float


def _ready_condition(pod: JsonObject) -> tuple[bool, datetime | None]:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True", parse_time(condition.get("lastTransitionTime"))
    return False, None


def pod_facts(
    pod: JsonObject, hash_label: str, revision_of_hash: dict[str, str | None], now: datetime, hash_prefix: str = ""
) -> PodFacts:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    ready, ready_changed = _ready_condition(pod)
    problems: list[str] = []
    containers: list[ContainerState] = []
    restarts = 0
    last: Termination | None = None
    score = 0.0
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        count = int(cs.get("restartCount") or 0)
        restarts += count
        waiting = state.get("waiting") if isinstance(state.get("waiting"), dict) else None
        previous = _termination(cs.get("lastState"))
        current_end = _termination(state)
        ended = current_end or previous
        if ended is not None and (last is None or (ended.finished or now) > (last.finished or now)):
            last = ended
        reason = waiting.get("reason") if waiting else None
        if reason:
            problems.append(str(reason))
            score += 100 if reason in BLOCKING_WAITS else 40
        if count and previous is not None and previous.reason:
            problems.append(str(previous.reason))
        score += min(count, 50)
        if previous is not None and previous.reason == "OOMKilled":
            score += 30
        message = (waiting or {}).get("message") or (state.get("terminated") or {}).get("message")
        if reason or count or not cs.get("ready"):
            containers.append(
                ContainerState(
                    name=str(cs.get("name", "")),
                    ready=bool(cs.get("ready")),
                    restarts=count,
                    waiting_reason=reason,
                    message=clip(message),
                )
            )
    phase = str(status.get("phase") or "Unknown")
    if not ready and not any(p in BLOCKING_WAITS for p in problems):
        problems.append("NotReady" if phase == "Running" else phase)
        score += 50
    if phase in ("Failed", "Unknown"):
        score += 60
    created = parse_time(meta.get("creationTimestamp"))
    labels = meta.get("labels") or {}
    template_hash = labels.get(hash_label)
    if template_hash and hash_prefix:  # a StatefulSet pod's label is the ControllerRevision's whole name
        template_hash = str(template_hash).removeprefix(hash_prefix)
    return PodFacts(
        PodState(
            name=str(meta.get("name", "")),
            revision=revision_of_hash.get(template_hash or "") if template_hash else None,
            hash=template_hash,
            status=pod_status_text(pod),
            ready=ready,
            ready_changed=ready_changed,
            restarts=restarts,
            last_termination=last,
            node=spec.get("nodeName"),
            age_s=int((now - created).total_seconds()) if created else None,
            containers=containers,
        ),
        sorted(set(problems)),
        score,
    )


# --- revisions -----------------------------------------------------------------------------------


@dataclass
class RevisionSource:
    """A revision as the workload's controller records it (a ReplicaSet or a ControllerRevision)."""

    revision: str | None
    number: int
    hash: str
    created: datetime | None
    change_cause: str | None
    template: JsonObject


def deployment_revisions(deployment: JsonObject, replica_sets: list[JsonObject]) -> list[RevisionSource]:
    uid = (deployment.get("metadata") or {}).get("uid")
    found = []
    for rs in replica_sets:
        if not owned_by(rs, uid):
            continue
        meta = rs.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        number = str(annotations.get(REVISION_ANNOTATION, ""))
        found.append(
            RevisionSource(
                revision=number or None,
                number=int(number) if number.isdigit() else 0,
                hash=str((meta.get("labels") or {}).get(POD_TEMPLATE_HASH, "")),
                created=parse_time(meta.get("creationTimestamp")),
                change_cause=clip(annotations.get(CHANGE_CAUSE_ANNOTATION)),
                template=(rs.get("spec") or {}).get("template") or {},
            )
        )
    return found


def controller_revisions(workload: JsonObject, revisions: list[JsonObject]) -> list[RevisionSource]:
    """StatefulSet / DaemonSet revisions; the hash is the ControllerRevision's name without the prefix."""
    meta = workload.get("metadata") or {}
    uid, name = meta.get("uid"), str(meta.get("name", ""))
    found = []
    for cr in revisions:
        if not owned_by(cr, uid):
            continue
        cr_meta = cr.get("metadata") or {}
        cr_name = str(cr_meta.get("name", ""))
        template_hash = str((cr_meta.get("labels") or {}).get(CONTROLLER_REVISION_HASH, "")) or cr_name.removeprefix(
            f"{name}-"
        )
        data = cr.get("data") or {}
        template = ((data.get("spec") or {}).get("template")) or {}
        found.append(
            RevisionSource(
                revision=str(cr.get("revision")) if cr.get("revision") is not None else None,
                number=int(cr.get("revision") or 0),
                hash=template_hash,
                created=parse_time(cr_meta.get("creationTimestamp")),
                change_cause=clip((cr_meta.get("annotations") or {}).get(CHANGE_CAUSE_ANNOTATION)),
                template=template,
            )
        )
    return found


# --- rollout -------------------------------------------------------------------------------------


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def deployment_rollout(deployment: JsonObject) -> tuple[Rollout, Replicas]:
    meta, spec, status = deployment.get("metadata") or {}, deployment.get("spec") or {}, deployment.get("status") or {}
    desired = _int(spec.get("replicas", 1))
    updated, replicas = _int(status.get("updatedReplicas")), _int(status.get("replicas"))
    available, ready = _int(status.get("availableReplicas")), _int(status.get("readyReplicas"))
    revision = (meta.get("annotations") or {}).get(REVISION_ANNOTATION)
    counts = Replicas(
        desired=desired,
        current=replicas,
        updated=updated,
        ready=ready,
        available=available,
        unavailable=_int(status.get("unavailableReplicas")),
    )
    name = meta.get("name", "")
    progressing: JsonObject = next((c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), {})
    if spec.get("paused"):
        return Rollout(state="paused", message=f'deployment "{name}" is paused', revision=revision), counts
    if _int(meta.get("generation")) > _int(status.get("observedGeneration")):
        message = "waiting for the deployment spec update to be observed"
        return Rollout(state="progressing", message=message, revision=revision), counts
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        message = f'deployment "{name}" exceeded its progress deadline'
        return Rollout(state="failed", message=message, revision=revision), counts
    if updated < desired:
        message = f"{updated} out of {desired} new replicas have been updated"
    elif replicas > updated:
        message = f"{replicas - updated} old replicas are pending termination"
    elif available < updated:
        message = f"{available} of {updated} updated replicas are available"
    else:
        return Rollout(
            state="complete", message=f'deployment "{name}" successfully rolled out', revision=revision
        ), counts
    return Rollout(state="progressing", message=message, revision=revision), counts


def stateful_set_rollout(sts: JsonObject) -> tuple[Rollout, Replicas]:
    meta, spec, status = sts.get("metadata") or {}, sts.get("spec") or {}, sts.get("status") or {}
    desired = _int(spec.get("replicas", 1))
    ready, updated = _int(status.get("readyReplicas")), _int(status.get("updatedReplicas"))
    update_revision = status.get("updateRevision")
    counts = Replicas(
        desired=desired,
        current=_int(status.get("replicas")),
        updated=updated,
        ready=ready,
        available=_int(status.get("availableReplicas")),
        unavailable=max(desired - _int(status.get("availableReplicas")), 0),
    )
    revision = str(update_revision).removeprefix(f"{meta.get('name', '')}-") if update_revision else None
    if _int(meta.get("generation")) > _int(status.get("observedGeneration")):
        return Rollout(
            state="progressing", message="waiting for statefulset spec update to be observed", revision=revision
        ), counts
    if ready < desired:
        message = f"Waiting for {desired - ready} pods to be ready"
    elif update_revision and status.get("currentRevision") != update_revision:
        message = f"waiting for statefulset rolling update to complete {updated} pods at revision {update_revision}"
    else:
        message = f"partitioned roll out complete: {updated} new pods have been updated"
        if not (spec.get("updateStrategy") or {}).get("rollingUpdate", {}).get("partition"):
            message = f"statefulset rolling update complete {ready} pods at revision {update_revision}"
        return Rollout(state="complete", message=message, revision=revision), counts
    return Rollout(state="progressing", message=message, revision=revision), counts


def daemon_set_rollout(ds: JsonObject, revisions: list[RevisionSource]) -> tuple[Rollout, Replicas]:
    meta, status = ds.get("metadata") or {}, ds.get("status") or {}
    desired, updated = _int(status.get("desiredNumberScheduled")), _int(status.get("updatedNumberScheduled"))
    available = _int(status.get("numberAvailable"))
    counts = Replicas(
        desired=desired,
        current=_int(status.get("currentNumberScheduled")),
        updated=updated,
        ready=_int(status.get("numberReady")),
        available=available,
        unavailable=_int(status.get("numberUnavailable")),
    )
    newest = max(revisions, key=lambda r: r.number, default=None)
    revision = newest.hash if newest else None
    name = meta.get("name", "")
    if _int(meta.get("generation")) > _int(status.get("observedGeneration")):
        return Rollout(
            state="progressing", message="waiting for daemon set spec update to be observed", revision=revision
        ), counts
    if updated < desired:
        message = f"{updated} out of {desired} new pods have been updated"
    elif available < desired:
        message = f"{available} of {desired} updated pods are available"
    else:
        return Rollout(
            state="complete", message=f'daemon set "{name}" successfully rolled out', revision=revision
        ), counts
    return Rollout(state="progressing", message=message, revision=revision), counts


# --- the whole picture ---------------------------------------------------------------------------


def conditions_of(workload: JsonObject) -> list[Condition]:
    return [
        Condition(
            type=str(c.get("type", "")),
            status=str(c.get("status", "")),
            reason=c.get("reason"),
            message=clip(c.get("message")),
            last_transition=parse_time(c.get("lastTransitionTime")),
        )
        for c in (workload.get("status") or {}).get("conditions") or []
    ]


def _image_text(revision: RevisionState) -> str:
    return ",".join(c.image.rsplit("/", 1)[-1] for c in revision.containers) or "?"


def build_status(
    kind: WorkloadKind,
    workload: JsonObject,
    revisions: list[RevisionSource],
    pods: list[JsonObject],
    *,
    max_pods: int,
    backend: str,
    now: datetime | None = None,
) -> WorkloadStatus:
    now = now or datetime.now(UTC)
    meta = workload.get("metadata") or {}
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    if kind == "Deployment":
        rollout, replicas = deployment_rollout(workload)
        hash_label = POD_TEMPLATE_HASH
    elif kind == "StatefulSet":
        rollout, replicas = stateful_set_rollout(workload)
        hash_label = CONTROLLER_REVISION_HASH
    else:
        rollout, replicas = daemon_set_rollout(workload, revisions)
        hash_label = CONTROLLER_REVISION_HASH
    current_hash = _current_hash(kind, workload, revisions)
    by_hash = {r.hash: r for r in revisions}
    revision_of_hash = {r.hash: r.revision for r in revisions}
    facts = sorted(
        (pod_facts(p, hash_label, revision_of_hash, now, f"{name}-" if kind == "StatefulSet" else "") for p in pods),
        key=lambda f: (-f.score, f.state.name),
    )
    problems: dict[str, int] = {}
    for f in facts:
        for problem in f.problems:
            problems[problem] = problems.get(problem, 0) + 1
    revision_states = _revision_states(facts, by_hash, current_hash)
    health = _health(rollout, replicas, problems)
    summary = _summary(kind, namespace, name, health, rollout, replicas, facts, revision_states)
    shown = [f.state for f in facts[:max_pods]]
    return WorkloadStatus(
        namespace=namespace,
        name=name,
        kind=kind,
        health=health,
        summary=summary,
        replicas=replicas,
        rollout=rollout,
        problems=dict(sorted(problems.items(), key=lambda kv: (-kv[1], kv[0]))),
        revisions=revision_states,
        pods=shown,
        pods_total=len(facts),
        pods_omitted=len(facts) - len(shown),
        conditions=conditions_of(workload),
        backend=backend,
        untrusted_fields=list(STATUS_UNTRUSTED),
    )


def _current_hash(kind: WorkloadKind, workload: JsonObject, revisions: list[RevisionSource]) -> str | None:
    if kind == "StatefulSet":
        update = (workload.get("status") or {}).get("updateRevision")
        name = str((workload.get("metadata") or {}).get("name", ""))
        return str(update).removeprefix(f"{name}-") if update else None
    newest = max(revisions, key=lambda r: r.number, default=None)
    return newest.hash if newest else None


def _revision_states(
    facts: list[PodFacts], by_hash: dict[str, RevisionSource], current_hash: str | None
) -> list[RevisionState]:
    grouped: dict[str, list[PodFacts]] = {}
    for f in facts:
        grouped.setdefault(f.state.hash or "", []).append(f)
    hashes = set(grouped) | ({current_hash} if current_hash else set())
    states = []
    for template_hash in hashes:
        members = grouped.get(template_hash, [])
        source = by_hash.get(template_hash)
        problems: dict[str, int] = {}
        for f in members:
            for problem in f.problems:
                problems[problem] = problems.get(problem, 0) + 1
        states.append(
            RevisionState(
                revision=source.revision if source else None,
                hash=template_hash,
                current=template_hash == current_hash,
                created=source.created if source else None,
                change_cause=source.change_cause if source else None,
                pods=len(members),
                ready=sum(1 for f in members if f.state.ready),
                restarts=sum(f.state.restarts for f in members),
                problems=problems,
                containers=container_specs(source.template) if source else [],
            )
        )
    return sorted(states, key=lambda s: (-(by_hash[s.hash].number if s.hash in by_hash else -1), s.hash))


def _health(rollout: Rollout, replicas: Replicas, problems: dict[str, int]) -> Any:
    if rollout.state == "paused":
        return "paused"
    if rollout.state == "failed" or (replicas.desired > 0 and replicas.ready == 0):
        return "failing"
    if rollout.state == "progressing":
        return "progressing"
    if replicas.ready < replicas.desired or problems:
        return "degraded"
    return "healthy"


def _summary(
    kind: str,
    namespace: str,
    name: str,
    health: str,
    rollout: Rollout,
    replicas: Replicas,
    facts: list[PodFacts],
    revisions: list[RevisionState],
) -> str:
    parts = [
        f"{kind} {namespace}/{name} is {health}: {replicas.ready}/{replicas.desired} ready, "
        f"{replicas.updated} updated, {replicas.available} available; rollout {rollout.state} ({rollout.message})."
    ]
    bad = [f for f in facts if f.problems]
    if bad:
        by_problem: dict[str, list[str]] = {}
        for f in bad:
            for problem in f.problems:
                by_problem.setdefault(problem, []).append(f.state.name)
        worst = sorted(by_problem.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:4]
        parts.append(
            "Problems: "
            + "; ".join(
                f"{problem} x{len(pods)} ({', '.join(pods[:3])}{', ...' if len(pods) > 3 else ''})"
                for problem, pods in worst
            )
            + "."
        )
    if len(revisions) > 1 or (revisions and revisions[0].pods != replicas.current):
        parts.append(
            "Revisions: "
            + "; ".join(
                f"{r.revision or r.hash}{' (current)' if r.current else ''} {_image_text(r)}: {r.ready}/{r.pods} ready"
                + (f", {', '.join(f'{k} x{v}' for k, v in sorted(r.problems.items()))}" if r.problems else "")
                for r in revisions[:4]
            )
            + "."
        )
    return " ".join(parts)
