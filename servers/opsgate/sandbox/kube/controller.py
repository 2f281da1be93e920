"""Deployment controller emulation: Deployments -> ReplicaSets -> Pods, rollout status, events.

It follows the real deployment controller's rules where tools can see them: a ReplicaSet per pod
template named `{deployment}-{pod-template-hash}`, revisions in `deployment.kubernetes.io/revision`
(a rollback to an old template re-uses its ReplicaSet and bumps it to the newest revision, keeping
`revision-history`), annotations such as `kubernetes.io/change-cause` copied to the new ReplicaSet,
rolling updates bounded by maxSurge/maxUnavailable, old ReplicaSets scaled to 0, history trimmed to
`revisionHistoryLimit`, and the Progressing/Available conditions including ProgressDeadlineExceeded.

Time is compressed: every `tick()` is one step of the rollout, and a new pod becomes ready after
`ready_after_ticks` ticks unless its image is marked bad (or its template carries the
`sandbox.opsgate.dev/never-ready` annotation). Callers hold the cluster lock.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from opsgate.sandbox.kube.events import EventRecorder
from opsgate.sandbox.kube.faults import FaultRules
from opsgate.sandbox.kube.kubelet import Kubelet, PodBehavior, PodBehaviors
from opsgate.sandbox.kube.objects import (
    DEPLOYMENTS,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    NEVER_READY_ANNOTATION,
    POD_TEMPLATE_HASH_LABEL,
    PODS,
    REPLICASETS,
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    JsonObject,
    ResourceType,
    annotations_of,
    format_time,
    is_owned_by,
    new_uid,
    owner_reference,
    parse_time,
    pod_from_template,
    pod_ready,
    pod_template_hash,
    random_suffix,
    revision_of,
    templates_equal_ignoring_hash,
)
from opsgate.sandbox.kube.sets import SetController
from opsgate.sandbox.kube.store import ObjectStore

_NOT_COPIED_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION_ANNOTATION,
        REVISION_HISTORY_ANNOTATION,
        DESIRED_REPLICAS_ANNOTATION,
        MAX_REPLICAS_ANNOTATION,
        "deprecated.deployment.rollback.to",
    }
)


@dataclass
class ControllerConfig:
    ready_after_ticks: int = 1
    """Ticks a new pod of a good revision takes to become ready."""
    progress_deadline_seconds: float | None = None
    """Overrides every Deployment's `spec.progressDeadlineSeconds` (compressed time); None keeps it."""
    node_name: str = "sandbox-node-1"
    extra_nodes: tuple[str, ...] = ()
    """More nodes pods are spread over (by pod name); DaemonSets run one pod on each."""
    max_events: int = 2000

    @property
    def nodes(self) -> tuple[str, ...]:
        return (self.node_name, *self.extra_nodes)


@dataclass
class _Rollout:
    """Working copies of one Deployment and its ReplicaSets during a sync."""

    deployment: JsonObject
    replica_sets: list[JsonObject]
    new: JsonObject | None = None

    @property
    def old(self) -> list[JsonObject]:
        return [rs for rs in self.replica_sets if rs is not self.new]


def _surge_and_unavailable(deployment: JsonObject) -> tuple[int, int]:
    spec = deployment["spec"]
    replicas = int(spec["replicas"])
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, replicas
    rolling = strategy.get("rollingUpdate") or {}

    def resolve(value: object, round_up: bool) -> int:
        if isinstance(value, str) and value.endswith("%"):
            exact = replicas * float(value[:-1]) / 100
            return math.ceil(exact) if round_up else math.floor(exact)
        return int(str(value))

    surge = resolve(rolling.get("maxSurge", "25%"), round_up=True)
    unavailable = resolve(rolling.get("maxUnavailable", "25%"), round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


def _replicas(obj: JsonObject) -> int:
    return int(obj.get("spec", {}).get("replicas") or 0)


class DeploymentController:
    def __init__(
        self,
        store: ObjectStore,
        clock: Callable[[], datetime],
        faults: FaultRules,
        config: ControllerConfig,
        rng: random.Random | None = None,
        behaviors: PodBehaviors | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._faults = faults
        self.config = config
        self._rng = rng or random.Random()
        self._progress_marks: dict[str, datetime] = {}
        self.recorder = EventRecorder(store, clock, config.max_events)
        self.kubelet = Kubelet(
            store, clock, self.recorder, behaviors or PodBehaviors(), self._fault_behavior, config.nodes
        )
        self.sets = SetController(
            store, clock, self.recorder, self.kubelet, config.nodes, lambda: self.config.ready_after_ticks, self._rng
        )

    # --- entry points ---------------------------------------------------------------------------

    def tick(self) -> None:
        """One rollout step for every Deployment."""
        self.kubelet.tick()
        for deployment in list(self._store.iterate(DEPLOYMENTS)):
            meta = deployment["metadata"]
            self.sync(meta["namespace"], meta["name"], scale=True)
        self.sets.tick()

    def sync(self, namespace: str, name: str, *, scale: bool) -> None:
        """Reconcile one Deployment; `scale=False` (after an API write) only creates/annotates
        ReplicaSets and refreshes status, the next tick moves the rollout."""
        stored = self._store.get(DEPLOYMENTS, namespace, name)
        if stored is None:
            return
        rollout = _Rollout(copy.deepcopy(stored), self._owned_replica_sets(stored))
        paused = bool(rollout.deployment["spec"].get("paused"))
        template = rollout.deployment["spec"]["template"]
        rollout.new = next(
            (rs for rs in rollout.replica_sets if templates_equal_ignoring_hash(rs["spec"]["template"], template)),
            None,
        )
        note: tuple[str, str] | None = None
        if not paused:
            if rollout.new is None:
                rollout.new = self._new_replica_set(rollout)
                rollout.replica_sets.append(rollout.new)
                note = ("NewReplicaSetCreated", f'Created new replica set "{rollout.new["metadata"]["name"]}"')
            elif self._is_rollback_target(rollout):
                note = ("FoundNewReplicaSet", f'Found new replica set "{rollout.new["metadata"]["name"]}"')
            self._annotate_new_replica_set(rollout)
        if rollout.new is not None:
            annotations_of(rollout.deployment)[REVISION_ANNOTATION] = str(revision_of(rollout.new))
        if scale and not paused and rollout.new is not None:
            self._rolling_step(rollout)
        for replica_set in rollout.replica_sets:
            self._sync_pods(replica_set)
            self._save(REPLICASETS, replica_set)
        self._trim_history(rollout)
        self._update_status(rollout, note)
        self._save(DEPLOYMENTS, rollout.deployment)

    def forget(self, pod_uid: str) -> None:
        self.kubelet.forget(pod_uid)

    # --- replica sets ---------------------------------------------------------------------------

    def _owned_replica_sets(self, deployment: JsonObject) -> list[JsonObject]:
        namespace = deployment["metadata"]["namespace"]
        owned = [copy.deepcopy(rs) for rs in self._store.iterate(REPLICASETS, namespace) if is_owned_by(rs, deployment)]
        return sorted(owned, key=lambda rs: (rs["metadata"]["creationTimestamp"], rs["metadata"]["name"]))

    def _is_rollback_target(self, rollout: _Rollout) -> bool:
        assert rollout.new is not None
        return any(revision_of(rs) > revision_of(rollout.new) for rs in rollout.old)

    def _new_replica_set(self, rollout: _Rollout) -> JsonObject:
        deployment = rollout.deployment
        meta, spec = deployment["metadata"], deployment["spec"]
        status: JsonObject = deployment.setdefault("status", {})
        collisions = status.get("collisionCount")
        while True:
            template_hash = pod_template_hash(spec["template"], collisions)
            name = f"{meta['name']}-{template_hash}"
            if self._store.get(REPLICASETS, meta["namespace"], name) is None:
                break
            collisions = (collisions or 0) + 1
            status["collisionCount"] = collisions
        template = copy.deepcopy(spec["template"])
        template["metadata"].setdefault("labels", {})[POD_TEMPLATE_HASH_LABEL] = template_hash
        selector = copy.deepcopy(spec["selector"])
        selector.setdefault("matchLabels", {})[POD_TEMPLATE_HASH_LABEL] = template_hash
        replica_set_spec: JsonObject = {"replicas": 0, "selector": selector, "template": template}
        if spec.get("minReadySeconds"):
            replica_set_spec["minReadySeconds"] = spec["minReadySeconds"]
        return {
            "apiVersion": REPLICASETS.api_version,
            "kind": REPLICASETS.kind,
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "uid": new_uid(),
                "generation": 1,
                "creationTimestamp": format_time(self._clock()),
                "labels": copy.deepcopy(template["metadata"]["labels"]),
                "annotations": {},
                "ownerReferences": [owner_reference(deployment, DEPLOYMENTS.kind, DEPLOYMENTS.api_version)],
            },
            "spec": replica_set_spec,
            "status": {"replicas": 0},
        }

    def _annotate_new_replica_set(self, rollout: _Rollout) -> None:
        """SetNewReplicaSetAnnotations: copy the Deployment's annotations, move to the newest revision."""
        new = rollout.new
        assert new is not None
        annotations = annotations_of(new)
        for key, value in (rollout.deployment["metadata"].get("annotations") or {}).items():
            if key not in _NOT_COPIED_ANNOTATIONS:
                annotations[key] = value
        newest = max((revision_of(rs) for rs in rollout.old), default=0) + 1
        current = revision_of(new)
        if current < newest:
            if current > 0:
                history = [part for part in annotations.get(REVISION_HISTORY_ANNOTATION, "").split(",") if part]
                annotations[REVISION_HISTORY_ANNOTATION] = ",".join([*history, str(current)])
            annotations[REVISION_ANNOTATION] = str(newest)
        surge, _ = _surge_and_unavailable(rollout.deployment)
        replicas = _replicas(rollout.deployment)
        annotations[DESIRED_REPLICAS_ANNOTATION] = str(replicas)
        annotations[MAX_REPLICAS_ANNOTATION] = str(replicas + surge)

    def _scale(self, rollout: _Rollout, replica_set: JsonObject, replicas: int) -> None:
        before = _replicas(replica_set)
        if replicas == before:
            return
        replica_set["spec"]["replicas"] = replicas
        replica_set["metadata"]["generation"] = int(replica_set["metadata"].get("generation", 1)) + 1
        direction = "up" if replicas > before else "down"
        self._record_event(
            rollout.deployment,
            "ScalingReplicaSet",
            f"Scaled {direction} replica set {replica_set['metadata']['name']} from {before} to {replicas}",
        )

    def _ready(self, replica_set: JsonObject) -> int:
        return sum(1 for pod in self._owned_pods(replica_set) if pod_ready(pod))

    def _rolling_step(self, rollout: _Rollout) -> None:
        new = rollout.new
        assert new is not None
        desired = _replicas(rollout.deployment)
        surge, max_unavailable = _surge_and_unavailable(rollout.deployment)
        strategy = (rollout.deployment["spec"].get("strategy") or {}).get("type")
        old_total = sum(_replicas(rs) for rs in rollout.old)
        new_replicas = _replicas(new)
        if strategy == "Recreate":
            for replica_set in rollout.old:
                self._scale(rollout, replica_set, 0)
            if not any(self._owned_pods(rs) for rs in rollout.old):
                self._scale(rollout, new, desired)
            return
        if new_replicas > desired:
            self._scale(rollout, new, desired)
        elif new_replicas < desired:
            room = desired + surge - old_total - new_replicas
            self._scale(rollout, new, min(desired, new_replicas + max(0, room)))
        min_available = desired - max_unavailable
        new_unavailable = _replicas(new) - self._ready(new)
        total = old_total + _replicas(new)
        budget = total - min_available - new_unavailable
        for replica_set in rollout.old:  # unhealthy old pods go first, within the budget
            unhealthy = _replicas(replica_set) - self._ready(replica_set)
            take = min(max(unhealthy, 0), max(budget, 0))
            if take:
                self._scale(rollout, replica_set, _replicas(replica_set) - take)
                budget -= take
        available = sum(self._ready(rs) for rs in rollout.replica_sets)
        scale_down = available - min_available
        for replica_set in rollout.old:
            take = min(_replicas(replica_set), max(scale_down, 0))
            if take:
                self._scale(rollout, replica_set, _replicas(replica_set) - take)
                scale_down -= take

    def _trim_history(self, rollout: _Rollout) -> None:
        limit = int(rollout.deployment["spec"].get("revisionHistoryLimit", 10))
        idle = [rs for rs in rollout.old if _replicas(rs) == 0 and not self._owned_pods(rs)]
        idle.sort(key=revision_of)
        for replica_set in idle[: max(len(idle) - limit, 0)]:
            meta = replica_set["metadata"]
            self._store.delete(REPLICASETS, meta["namespace"], meta["name"])
            rollout.replica_sets.remove(replica_set)

    # --- pods -----------------------------------------------------------------------------------

    def _owned_pods(self, replica_set: JsonObject) -> list[JsonObject]:
        namespace = replica_set["metadata"]["namespace"]
        return [pod for pod in self._store.iterate(PODS, namespace) if is_owned_by(pod, replica_set)]

    def _sync_pods(self, replica_set: JsonObject) -> None:
        pods = self._owned_pods(replica_set)
        missing = _replicas(replica_set) - len(pods)
        for _ in range(max(missing, 0)):
            pod = self._new_pod(replica_set)
            self._record_event(replica_set, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
        if missing < 0:
            # unready first, then the youngest, as the ReplicaSet controller prefers
            youngest_first = sorted(pods, key=lambda pod: str(pod["metadata"]["creationTimestamp"]), reverse=True)
            victims = sorted(youngest_first, key=pod_ready)[:-missing]
            for pod in victims:
                meta = pod["metadata"]
                self._store.delete(PODS, meta["namespace"], meta["name"])
                self.forget(meta["uid"])
                self._record_event(replica_set, "SuccessfulDelete", f"Deleted pod: {meta['name']}")
        pods = self._owned_pods(replica_set)
        ready = sum(1 for pod in pods if pod_ready(pod))
        status: JsonObject = {"replicas": len(pods)}
        if pods:
            status["fullyLabeledReplicas"] = len(pods)
        if ready:
            status["readyReplicas"] = ready
            status["availableReplicas"] = ready
        status["observedGeneration"] = replica_set["metadata"].get("generation", 1)
        replica_set["status"] = status

    def _fault_behavior(self, pod: JsonObject) -> PodBehavior | None:
        """Images marked bad (`faults.mark_image_bad`) and never-ready templates, as pod behaviours."""
        never_ready = (pod["metadata"].get("annotations") or {}).get(NEVER_READY_ANNOTATION)
        for container in pod["spec"].get("containers", []):
            image = str(container.get("image", ""))
            reason = self._faults.bad_image_reason(image)
            if reason is None and str(never_ready).lower() == "true":
                reason = "CrashLoopBackOff"
            if reason == "ImagePullBackOff":
                return PodBehavior(image=image, container=container["name"], waiting=reason)
            if reason is not None:
                return PodBehavior(image=image, container=container["name"], exits="Error", run_seconds=0)
        return None

    def _new_pod(self, replica_set: JsonObject) -> JsonObject:
        rs_meta = replica_set["metadata"]
        namespace = rs_meta["namespace"]
        name = f"{rs_meta['name']}-{random_suffix(5, self._rng)}"
        while self._store.get(PODS, namespace, name) is not None:
            name = f"{rs_meta['name']}-{random_suffix(5, self._rng)}"
        pod = pod_from_template(replica_set, REPLICASETS, name, self.kubelet.node_for(name), self._clock())
        return self.kubelet.admit(pod, self.config.ready_after_ticks)

    # --- status ---------------------------------------------------------------------------------

    def _deadline(self, deployment: JsonObject) -> float:
        if self.config.progress_deadline_seconds is not None:
            return self.config.progress_deadline_seconds
        return float(deployment["spec"].get("progressDeadlineSeconds", 600))

    def _update_status(self, rollout: _Rollout, note: tuple[str, str] | None) -> None:
        deployment, new = rollout.deployment, rollout.new
        previous: JsonObject = deployment.get("status") or {}
        desired = _replicas(deployment)
        _, max_unavailable = _surge_and_unavailable(deployment)
        sets = rollout.replica_sets
        counts = {
            "replicas": sum(int(rs["status"].get("replicas", 0)) for rs in sets),
            "updatedReplicas": int(new["status"].get("replicas", 0)) if new else 0,
            "readyReplicas": sum(int(rs["status"].get("readyReplicas", 0)) for rs in sets),
            "availableReplicas": sum(int(rs["status"].get("availableReplicas", 0)) for rs in sets),
        }
        counts["unavailableReplicas"] = max(sum(_replicas(rs) for rs in sets) - counts["availableReplicas"], 0)
        status: JsonObject = {"observedGeneration": deployment["metadata"].get("generation", 1)}
        status.update({key: value for key, value in counts.items() if value})  # zero fields are omitted
        if previous.get("collisionCount") is not None:
            status["collisionCount"] = previous["collisionCount"]
        conditions = [copy.deepcopy(c) for c in previous.get("conditions") or []]
        available = counts["availableReplicas"] >= desired - max_unavailable
        self._set_condition(
            conditions,
            "Available",
            "True" if available else "False",
            "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
            "Deployment has minimum availability." if available else "Deployment does not have minimum availability.",
        )
        self._set_progressing(rollout, conditions, previous, counts, note)
        status["conditions"] = conditions
        deployment["status"] = status

    def _set_progressing(
        self,
        rollout: _Rollout,
        conditions: list[JsonObject],
        previous: JsonObject,
        counts: dict[str, int],
        note: tuple[str, str] | None,
    ) -> None:
        deployment, new = rollout.deployment, rollout.new
        uid = deployment["metadata"]["uid"]
        now = self._clock()
        current = next((c for c in conditions if c["type"] == "Progressing"), None)
        current_reason = current.get("reason") if current else None
        rs_name = new["metadata"]["name"] if new else ""
        desired = _replicas(deployment)
        complete = (
            counts["updatedReplicas"] == desired
            and counts["replicas"] == desired
            and counts["availableReplicas"] == desired
            and new is not None
        )
        old_replicas = int(previous.get("replicas", 0)) - int(previous.get("updatedReplicas", 0))
        progressed = (
            counts["updatedReplicas"] > int(previous.get("updatedReplicas", 0))
            or counts["replicas"] - counts["updatedReplicas"] < old_replicas
            or counts["readyReplicas"] > int(previous.get("readyReplicas", 0))
            or counts["availableReplicas"] > int(previous.get("availableReplicas", 0))
        )
        if deployment["spec"].get("paused"):
            if current_reason != "DeploymentPaused":
                self._set_condition(
                    conditions, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", force=True
                )
                self._progress_marks[uid] = now
            return
        if current_reason == "DeploymentPaused":
            self._set_condition(
                conditions, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed", force=True
            )
            self._progress_marks[uid] = now
            return
        if note is not None:
            self._set_condition(conditions, "Progressing", "True", note[0], note[1], force=True)
            self._progress_marks[uid] = now
        elif complete:
            self._set_condition(
                conditions,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
            )
        elif progressed:
            self._set_condition(
                conditions,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" is progressing.',
                force=True,
            )
            self._progress_marks[uid] = now
        elif current_reason != "ProgressDeadlineExceeded" and current is not None:
            mark = self._progress_marks.get(uid) or parse_time(current["lastUpdateTime"])
            if now - mark > timedelta(seconds=self._deadline(deployment)):
                self._set_condition(
                    conditions,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    f'ReplicaSet "{rs_name}" has timed out progressing.',
                )

    def _set_condition(
        self, conditions: list[JsonObject], kind: str, status: str, reason: str, message: str, *, force: bool = False
    ) -> None:
        """Keep an identical condition untouched; `force` refreshes lastUpdateTime (progress was made)."""
        now = format_time(self._clock())
        current = next((c for c in conditions if c["type"] == kind), None)
        if current is not None and current["status"] == status and current.get("reason") == reason:
            if not force and current.get("message") == message:
                return
            current.update(message=message, lastUpdateTime=now)
            return
        entry = {
            "type": kind,
            "status": status,
            "lastUpdateTime": now,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }
        if current is not None:
            if current["status"] == status:
                entry["lastTransitionTime"] = current["lastTransitionTime"]
            conditions[conditions.index(current)] = entry
        else:
            conditions.append(entry)

    # --- events and persistence -----------------------------------------------------------------

    def _record_event(self, involved: JsonObject, reason: str, message: str, *, event_type: str = "Normal") -> None:
        self.recorder.record(involved, reason, message, event_type=event_type)

    def _save(self, resource: ResourceType, obj: JsonObject) -> None:
        """Persist only real changes, so an idle cluster keeps its resourceVersions."""
        meta = obj["metadata"]
        stored = self._store.get(resource, meta["namespace"], meta["name"])
        if stored is not None and stored == obj:
            return
        self._store.put(resource, copy.deepcopy(obj))
