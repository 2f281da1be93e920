"""Kubelet emulation: what a pod's containers do over time, and the pod status and events that say so.

A `PodBehavior` binds a misbehaviour to the pods that run an image (a revision) or carry some labels,
optionally to a deterministic share of them (a canary's bad pods): a container that never starts
(`ImagePullBackOff`, `ErrImagePull`, `CreateContainerConfigError`), one that exits (`Error` with an
exit code, `OOMKilled` with 137) after running `run_seconds` and is restarted with the kubelet's
back-off (`CrashLoopBackOff` between restarts), and readiness that never comes or flaps.

Everything is a pure function of the pod's start and the clock, so a backdated pod (a seeded world)
shows the history a real one would have: restart counts, the last termination and when it happened,
and the kubelet's events aggregated the way the event recorder does (one event per object, reason and
message, with `count` and first/last timestamps).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from opsgate.sandbox.kube.events import EventRecorder
from opsgate.sandbox.kube.objects import PODS, JsonObject, format_time, parse_time
from opsgate.sandbox.kube.store import ObjectStore

WAITING_REASONS = ("ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "ContainerCreating")
EXIT_REASONS = ("Error", "OOMKilled", "Completed")
Readiness = Literal["ready", "never", "flapping"]

MAX_BACKOFF_S = 300.0
BACKOFF_RESET_S = 600.0  # a container that ran this long restarts with the initial back-off
_MAX_CYCLES = 20_000


@dataclass(frozen=True)
class PodBehavior:
    """What the matching pods' containers do. Match by `image` (any container's), by `labels`, or both."""

    image: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    share: float = 1.0
    """The share of matching pods affected (rounded, at least one when above 0), chosen deterministically by
    pod name among the matching pods of the namespace (a canary's bad pods)."""
    container: str | None = None
    """The affected container; default: the one running `image`, else the first."""
    waiting: str | None = None
    """The container never starts: `ImagePullBackOff`, `ErrImagePull`, `CreateContainerConfigError`."""
    waiting_message: str | None = None
    exits: str | None = None
    """The container exits after `run_seconds` and is restarted: `Error`, `OOMKilled` or `Completed`."""
    exit_code: int | None = None
    """Default: 137 for OOMKilled, 0 for Completed, 1 for Error."""
    run_seconds: float = 0.0
    """How long each run lasts before the container exits (0: it exits at once, a crash loop)."""
    backoff_seconds: float = 10.0
    """The kubelet's first restart back-off (doubled per restart, at most 300 s)."""
    readiness: Readiness = "ready"
    flap_seconds: float = 60.0
    """Readiness flapping: ready for the first half of each period, unready for the second."""
    probe_message: str = "Readiness probe failed: HTTP probe failed with statuscode: 503"

    def __post_init__(self) -> None:
        if self.waiting is not None and self.waiting not in WAITING_REASONS:
            raise ValueError(f"waiting must be one of {WAITING_REASONS}, not {self.waiting!r}")
        if self.exits is not None and self.exits not in EXIT_REASONS:
            raise ValueError(f"exits must be one of {EXIT_REASONS}, not {self.exits!r}")
        if not 0.0 <= self.share <= 1.0:
            raise ValueError("share must be within [0, 1]")
        if self.run_seconds < 0 or self.backoff_seconds <= 0 or self.flap_seconds <= 0:
            raise ValueError("run_seconds must be >= 0, backoff_seconds and flap_seconds > 0")
        if self.image is None and not self.labels:
            raise ValueError("a pod behavior needs an image or labels to match")

    @property
    def code(self) -> int:
        if self.exit_code is not None:
            return self.exit_code
        return {"OOMKilled": 137, "Completed": 0}.get(self.exits or "", 1)

    def matches(self, pod: JsonObject) -> bool:
        """Whether the pod is one this behaviour is about (before `share` picks some of them)."""
        labels = pod.get("metadata", {}).get("labels") or {}
        if any(labels.get(key) != value for key, value in self.labels.items()):
            return False
        return self.image is None or any(c.get("image") == self.image for c in pod["spec"]["containers"])

    def chosen(self, pod: JsonObject, peers: list[JsonObject]) -> bool:
        """Whether `share` picks this pod among `peers` (every pod the behaviour matches)."""
        if self.share >= 1.0:
            return True
        if self.share <= 0.0:
            return False
        name = str(pod["metadata"]["name"])
        ranked = sorted({name, *(str(p["metadata"]["name"]) for p in peers)})
        ranked.sort(key=_unit)
        picked = max(1, round(self.share * len(ranked)))
        return name in ranked[:picked]

    def target_container(self, pod: JsonObject) -> str:
        containers = pod["spec"]["containers"]
        if self.container is not None:
            return self.container
        for container in containers:
            if self.image is not None and container.get("image") == self.image:
                return str(container["name"])
        return str(containers[0]["name"])


def _unit(text: str) -> float:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclass(frozen=True)
class Termination:
    reason: str
    exit_code: int
    started: datetime
    finished: datetime


@dataclass(frozen=True)
class ContainerTimeline:
    """One container's state at `now`, derived from its start and behaviour."""

    restarts: int
    running_since: datetime | None  # None: waiting
    waiting_reason: str | None
    last: Termination | None
    first_exit: datetime | None
    ready: bool
    ready_since: datetime
    unready_probes: int  # failed readiness probes so far (10 s period)
    first_unready: datetime | None
    last_unready: datetime | None


def _backoff(behavior: PodBehavior, index: int, ran: float) -> float:
    if ran >= BACKOFF_RESET_S:
        return behavior.backoff_seconds
    return float(min(behavior.backoff_seconds * 2**index, MAX_BACKOFF_S))


def container_timeline(
    behavior: PodBehavior | None, started: datetime, now: datetime, pod_name: str
) -> ContainerTimeline:
    """Where the container is at `now`: restarts so far, running or waiting, the last termination."""
    if behavior is None:
        return ContainerTimeline(0, started, None, None, None, True, started, 0, None, None)
    if behavior.waiting is not None:
        return ContainerTimeline(0, None, behavior.waiting, None, None, False, started, 0, None, None)
    restarts = 0
    run_start = started
    running_since: datetime | None = started
    waiting: str | None = None
    last: Termination | None = None
    first_exit: datetime | None = None
    if behavior.exits is not None:
        backoff_index = 0
        for _ in range(_MAX_CYCLES):
            exit_at = run_start + timedelta(seconds=behavior.run_seconds)
            if exit_at > now:
                break
            last = Termination(behavior.exits, behavior.code, run_start, exit_at)
            first_exit = first_exit or exit_at
            wait = _backoff(behavior, backoff_index, behavior.run_seconds)
            backoff_index = 0 if behavior.run_seconds >= BACKOFF_RESET_S else backoff_index + 1
            restart_at = exit_at + timedelta(seconds=wait)
            if restart_at > now:
                running_since, waiting = None, "CrashLoopBackOff"
                break
            restarts += 1
            run_start = restart_at
            running_since = restart_at
    # readiness: a container that runs under 5 s per run never passes its probe
    serving = running_since is not None and (behavior.exits is None or behavior.run_seconds >= 5)
    ready, ready_since = serving, running_since or (last.finished if last else started)
    probes, first_unready, last_unready = 0, None, None
    if serving and running_since is not None:
        if behavior.readiness == "never":
            ready, ready_since = False, running_since
            probes = int((now - running_since).total_seconds() // 10) + 1
            first_unready, last_unready = running_since, running_since + timedelta(seconds=10 * (probes - 1))
        elif behavior.readiness == "flapping":
            period = behavior.flap_seconds
            offset = _unit(pod_name) * period
            elapsed = (now - running_since).total_seconds() + offset
            cycle, within = divmod(elapsed, period)
            ready = within < period / 2
            boundary = cycle * period + (0 if ready else period / 2) - offset
            ready_since = running_since + timedelta(seconds=max(boundary, 0.0))
            unready_spells = int(cycle) + (0 if ready else 1)
            probes = unready_spells * max(int(period / 2 // 10), 1)
            if probes:
                first_unready = running_since + timedelta(seconds=max(period / 2 - offset, 0.0))
                last_unready = now if not ready else ready_since - timedelta(seconds=1)
    return ContainerTimeline(
        restarts, running_since, waiting, last, first_exit, ready, ready_since, probes, first_unready, last_unready
    )


def _terminated(t: Termination, container_id: str) -> JsonObject:
    return {
        "terminated": {
            "exitCode": t.exit_code,
            "reason": t.reason,
            "startedAt": format_time(t.started),
            "finishedAt": format_time(t.finished),
            "containerID": container_id,
        }
    }


def waiting_message(behavior: PodBehavior, reason: str, image: str, container: str, pod: JsonObject) -> str:
    if behavior.waiting_message:
        return behavior.waiting_message
    meta = pod["metadata"]
    if reason == "CrashLoopBackOff":
        return f"back-off restarting failed container={container} pod={meta['name']}_{meta['namespace']}({meta['uid']})"
    if reason in ("ImagePullBackOff", "ErrImagePull"):
        return f'Back-off pulling image "{image}"'
    if reason == "CreateContainerConfigError":
        return f'secret "{container}-config" not found'
    return ""


def container_status(
    pod: JsonObject,
    container: JsonObject,
    behavior: PodBehavior | None,
    timeline: ContainerTimeline,
    *,
    ready_gate: bool,
) -> JsonObject:
    """The container's entry in `status.containerStatuses`."""
    meta = pod["metadata"]
    name, image = str(container["name"]), str(container.get("image", ""))
    digest = hashlib.sha256(f"{meta['uid']}/{name}/{timeline.restarts}".encode()).hexdigest()
    container_id = f"containerd://{digest}"
    status: JsonObject = {
        "name": name,
        "image": image,
        "ready": timeline.ready and ready_gate,
        "restartCount": timeline.restarts,
        "started": timeline.running_since is not None,
    }
    if behavior is not None and behavior.waiting in ("ImagePullBackOff", "ErrImagePull"):
        status["imageID"] = ""
    else:
        image_digest = hashlib.sha256(image.encode()).hexdigest()
        name_part, _, tag = image.rpartition(":")
        repository = name_part if name_part and "/" not in tag else image
        status["imageID"] = f"{repository}@sha256:{image_digest}"
    if timeline.running_since is not None:
        status["containerID"] = container_id
        status["state"] = {"running": {"startedAt": format_time(timeline.running_since)}}
    else:
        reason = timeline.waiting_reason or "ContainerCreating"
        waiting: JsonObject = {"reason": reason}
        message = waiting_message(behavior, reason, image, name, pod) if behavior else ""
        if message:
            waiting["message"] = message
        status["state"] = {"waiting": waiting}
    if timeline.last is not None:
        previous = hashlib.sha256(f"{meta['uid']}/{name}/{max(timeline.restarts - 1, 0)}".encode()).hexdigest()
        status["lastState"] = _terminated(timeline.last, f"containerd://{previous}")
        if timeline.running_since is None:
            status["containerID"] = f"containerd://{previous}"
    else:
        status["lastState"] = {}
    return status


@dataclass(frozen=True)
class EventSpec:
    """One aggregated kubelet event for a pod."""

    reason: str
    message: str
    type: str
    count: int
    first: datetime
    last: datetime


def kubelet_events(
    pod: JsonObject, container: JsonObject, behavior: PodBehavior | None, timeline: ContainerTimeline, node: str
) -> list[EventSpec]:
    """The events a kubelet (and the scheduler) would have recorded for this container so far."""
    meta = pod["metadata"]
    started = datetime.fromisoformat(str(meta["creationTimestamp"]).replace("Z", "+00:00"))
    name, image = str(container["name"]), str(container.get("image", ""))
    events = [
        EventSpec(
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}",
            "Normal",
            1,
            started,
            started,
        )
    ]
    if behavior is not None and behavior.waiting in ("ImagePullBackOff", "ErrImagePull"):
        pulls = max(timeline.restarts, 1)
        events += [
            EventSpec("Pulling", f'Pulling image "{image}"', "Normal", pulls, started, started),
            EventSpec(
                "Failed",
                f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and unpack image '
                f'"{image}": not found',
                "Warning",
                pulls,
                started,
                started,
            ),
            EventSpec("Failed", "Error: ErrImagePull", "Warning", pulls, started, started),
            EventSpec("BackOff", f'Back-off pulling image "{image}"', "Normal", pulls, started, started),
            EventSpec("Failed", "Error: ImagePullBackOff", "Warning", pulls, started, started),
        ]
        return events
    if behavior is not None and behavior.waiting == "CreateContainerConfigError":
        message = behavior.waiting_message or f'secret "{name}-config" not found'
        events += [
            EventSpec("Pulled", f'Container image "{image}" already present on machine', "Normal", 1, started, started),
            EventSpec("Failed", f"Error: {message}", "Warning", 1, started, started),
        ]
        return events
    runs = timeline.restarts + 1
    last_start = timeline.running_since or (timeline.last.started if timeline.last else started)
    events += [
        EventSpec(
            "Pulled", f'Container image "{image}" already present on machine', "Normal", runs, started, last_start
        ),
        EventSpec("Created", f"Created container: {name}", "Normal", runs, started, last_start),
        EventSpec("Started", f"Started container {name}", "Normal", runs, started, last_start),
    ]
    if timeline.last is not None and timeline.first_exit is not None:
        exits = timeline.restarts + (1 if timeline.running_since is None else 0)
        events.append(
            EventSpec(
                "BackOff",
                f"Back-off restarting failed container {name} in pod {meta['name']}_{meta['namespace']}({meta['uid']})",
                "Warning",
                max(exits, 1),
                timeline.first_exit,
                timeline.last.finished,
            )
        )
    if timeline.unready_probes and timeline.first_unready and timeline.last_unready and behavior is not None:
        events.append(
            EventSpec(
                "Unhealthy",
                behavior.probe_message,
                "Warning",
                timeline.unready_probes,
                timeline.first_unready,
                max(timeline.last_unready, timeline.first_unready),
            )
        )
    return events


class PodBehaviors:
    """The cluster's pod behaviours; safe to change while the server runs (the next tick applies them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._behaviors: list[PodBehavior] = []

    def add(self, behavior: PodBehavior) -> PodBehavior:
        with self._lock:
            self._behaviors.append(behavior)
        return behavior

    def remove(self, behavior: PodBehavior) -> None:
        with self._lock:
            self._behaviors = [b for b in self._behaviors if b is not behavior]

    def clear(self) -> None:
        with self._lock:
            self._behaviors.clear()

    def for_pod(self, pod: JsonObject, pods: Iterable[JsonObject]) -> PodBehavior | None:
        """The first behaviour that picks the pod (behaviours added earlier win); `pods`: the namespace's."""
        with self._lock:
            behaviors = list(self._behaviors)
        for behavior in behaviors:
            if behavior.matches(pod):
                if behavior.share >= 1.0:
                    return behavior
                if behavior.chosen(pod, [p for p in pods if behavior.matches(p)]):
                    return behavior
        return None


@dataclass
class _Runtime:
    ticks_to_ready: int  # ticks until the pod passes its first readiness check
    ready_at: datetime | None = None
    events: tuple[EventSpec, ...] = ()


class Kubelet:
    """Runs the emulated pods: admits new ones, moves their status along each tick, records their events.

    Callers hold the cluster lock.
    """

    def __init__(
        self,
        store: ObjectStore,
        clock: Callable[[], datetime],
        recorder: EventRecorder,
        behaviors: PodBehaviors,
        fallback: Callable[[JsonObject], PodBehavior | None],
        nodes: tuple[str, ...],
    ) -> None:
        self._store = store
        self._clock = clock
        self._recorder = recorder
        self.behaviors = behaviors
        self._fallback = fallback
        self.nodes = nodes or ("sandbox-node-1",)
        self._runtimes: dict[str, _Runtime] = {}

    def node_for(self, pod_name: str) -> str:
        return self.nodes[int(_unit(pod_name) * len(self.nodes)) % len(self.nodes)]

    def host_ip(self, node: str) -> str:
        index = self.nodes.index(node) if node in self.nodes else 0
        return f"172.18.0.{index + 2}"

    def behavior(self, pod: JsonObject) -> PodBehavior | None:
        namespace = str(pod["metadata"].get("namespace", ""))
        peers = self._store.iterate(PODS, namespace)
        return self.behaviors.for_pod(pod, peers) or self._fallback(pod)

    def admit(self, pod: JsonObject, ready_after_ticks: int) -> JsonObject:
        """Store a new pod with its first status, and record its first events."""
        runtime = _Runtime(max(ready_after_ticks, 0))
        if runtime.ticks_to_ready == 0:
            runtime.ready_at = self._clock()
        self._runtimes[pod["metadata"]["uid"]] = runtime
        pod["status"] = self.status(pod, runtime)
        stored = self._store.put(PODS, pod)
        self._sync_events(pod, runtime)
        return stored

    def forget(self, pod_uid: str) -> None:
        self._runtimes.pop(pod_uid, None)

    def tick(self) -> None:
        for pod in list(self._store.iterate(PODS)):
            runtime = self._runtimes.get(pod["metadata"]["uid"])
            if runtime is None:
                continue
            if runtime.ticks_to_ready > 0:
                runtime.ticks_to_ready -= 1
                if runtime.ticks_to_ready == 0:
                    runtime.ready_at = self._clock()
            status = self.status(pod, runtime)
            if status != pod.get("status"):
                updated = {**pod, "metadata": dict(pod["metadata"]), "status": status}
                self._store.put(PODS, updated)
            self._sync_events(pod, runtime)

    def _timelines(self, pod: JsonObject, runtime: _Runtime) -> tuple[PodBehavior | None, str, ContainerTimeline]:
        behavior = self.behavior(pod)
        started = parse_time(str(pod["metadata"]["creationTimestamp"]))
        target = behavior.target_container(pod) if behavior else ""
        timeline = container_timeline(behavior, started, self._clock(), str(pod["metadata"]["name"]))
        return behavior, target, timeline

    def status(self, pod: JsonObject, runtime: _Runtime) -> JsonObject:
        meta, spec = pod["metadata"], pod["spec"]
        created = str(meta["creationTimestamp"])
        started = parse_time(created)
        behavior, target, timeline = self._timelines(pod, runtime)
        healthy = container_timeline(None, started, self._clock(), str(meta["name"]))
        gate = runtime.ticks_to_ready == 0
        statuses: list[JsonObject] = []
        never_started = False
        ready_since = runtime.ready_at or started
        for container in spec["containers"]:
            mine = behavior is not None and container["name"] == target
            line = timeline if mine else healthy
            statuses.append(container_status(pod, container, behavior if mine else None, line, ready_gate=gate))
            if mine:
                never_started = never_started or (line.running_since is None and line.last is None)
                ready_since = max(ready_since, line.ready_since)
        all_ready = all(status["ready"] for status in statuses)
        unready = [status["name"] for status in statuses if not status["ready"]]

        def condition(kind: str, ok: bool, since: str) -> JsonObject:
            entry: JsonObject = {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": since}
            if not ok:
                entry["reason"] = "ContainersNotReady"
                entry["message"] = f"containers with unready status: [{' '.join(unready)}]"
            return entry

        ready_time = format_time(ready_since)
        node = str(spec.get("nodeName") or self.nodes[0])
        host = self.host_ip(node)
        digest = hashlib.sha256(str(meta["uid"]).encode()).hexdigest()
        pod_ip = f"10.244.{int(digest[:2], 16)}.{int(digest[2:4], 16) % 250 + 2}"
        return {
            "phase": "Pending" if never_started else "Running",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": created},
                {"type": "Initialized", "status": "True", "lastTransitionTime": created},
                condition("Ready", all_ready, ready_time),
                condition("ContainersReady", all_ready, ready_time),
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": created},
            ],
            "hostIP": host,
            "hostIPs": [{"ip": host}],
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": created,
            "containerStatuses": statuses,
            "qosClass": qos_class(spec),
        }

    def _sync_events(self, pod: JsonObject, runtime: _Runtime) -> None:
        behavior, target, timeline = self._timelines(pod, runtime)
        started = parse_time(str(pod["metadata"]["creationTimestamp"]))
        node = str(pod["spec"].get("nodeName") or self.nodes[0])
        specs: list[EventSpec] = []
        for index, container in enumerate(pod["spec"]["containers"]):
            mine = behavior is not None and container["name"] == target
            line = timeline if mine else container_timeline(None, started, self._clock(), "")
            found = kubelet_events(pod, container, behavior if mine else None, line, node)
            specs.extend(found if index == 0 else [e for e in found if e.reason != "Scheduled"])
        wanted = tuple(specs)
        if wanted == runtime.events:
            return
        known = set(runtime.events)
        for spec in wanted:
            if spec in known:
                continue
            component = "default-scheduler" if spec.reason == "Scheduled" else "kubelet"
            self._recorder.record(
                pod,
                spec.reason,
                spec.message,
                event_type=spec.type,
                component=component,
                host=None if component == "default-scheduler" else node,
                count=spec.count,
                first=spec.first,
                last=spec.last,
            )
        runtime.events = wanted


def qos_class(spec: JsonObject) -> str:
    """Guaranteed when every container's requests equal its cpu and memory limits; BestEffort with none."""
    containers = spec.get("containers") or []
    any_set = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        any_set = any_set or bool(requests or limits)
        for resource in ("cpu", "memory"):
            if resource not in limits or requests.get(resource, limits[resource]) != limits[resource]:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
