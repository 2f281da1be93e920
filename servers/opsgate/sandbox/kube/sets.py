"""StatefulSet and DaemonSet controller emulation: ControllerRevisions, pods, rolling updates, status.

A minimal version of the real controllers, enough for tools that read workload state:
- a ControllerRevision per distinct pod template, named `{owner}-{hash}` with a `revision` number (a
  template seen before re-uses its revision object and moves it to the newest number);
- StatefulSet pods named `{name}-0..N-1`, labelled `controller-revision-hash: {name}-{hash}`,
  `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`; created in ordinal order
  (OrderedReady: the next only once the previous are ready; Parallel: at once); a rolling update
  replaces the highest-ordinal old pod once every pod is ready, down to `partition`;
- DaemonSet pods, one per emulated node, labelled `controller-revision-hash: {hash}` and
  `pod-template-generation`; a rolling update replaces old pods while fewer than `maxUnavailable`
  pods are unavailable;
- the status fields `kubectl` and `workload_status` read.

Callers hold the cluster lock; every `tick()` is one step, like the deployment controller's.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from datetime import datetime

from opsgate.sandbox.kube.events import EventRecorder
from opsgate.sandbox.kube.kubelet import Kubelet
from opsgate.sandbox.kube.objects import (
    CONTROLLERREVISIONS,
    DAEMONSETS,
    PODS,
    STATEFULSETS,
    JsonObject,
    ResourceType,
    format_time,
    is_owned_by,
    new_uid,
    owner_reference,
    pod_from_template,
    pod_ready,
    pod_template_hash,
    random_suffix,
)
from opsgate.sandbox.kube.store import ObjectStore

CONTROLLER_REVISION_HASH_LABEL = "controller-revision-hash"
CONTROLLER_HASH_LABEL = "controller.kubernetes.io/hash"
STATEFULSET_POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
POD_TEMPLATE_GENERATION_LABEL = "pod-template-generation"


def _ordinal(pod: JsonObject, name: str) -> int:
    suffix = str(pod["metadata"]["name"]).removeprefix(f"{name}-")
    return int(suffix) if suffix.isdigit() else -1


def _max_unavailable(ds: JsonObject, desired: int) -> int:
    rolling = ((ds["spec"].get("updateStrategy") or {}).get("rollingUpdate")) or {}
    value = rolling.get("maxUnavailable", 1)
    if isinstance(value, str) and value.endswith("%"):
        return max(math.ceil(desired * float(value[:-1]) / 100), 1)
    return max(int(str(value)), 1)


class SetController:
    def __init__(
        self,
        store: ObjectStore,
        clock: Callable[[], datetime],
        recorder: EventRecorder,
        kubelet: Kubelet,
        nodes: tuple[str, ...],
        ready_after_ticks: Callable[[], int],
        rng: random.Random,
    ) -> None:
        self._store = store
        self._clock = clock
        self._recorder = recorder
        self._kubelet = kubelet
        self._nodes = nodes
        self._ready_after_ticks = ready_after_ticks
        self._rng = rng

    def tick(self) -> None:
        for resource in (STATEFULSETS, DAEMONSETS):
            for obj in list(self._store.iterate(resource)):
                meta = obj["metadata"]
                self.sync(resource, meta["namespace"], meta["name"], scale=True)

    def sync(self, resource: ResourceType, namespace: str, name: str, *, scale: bool) -> None:
        stored = self._store.get(resource, namespace, name)
        if stored is None:
            return
        workload = copy.deepcopy(stored)
        revision = self._revision_for(resource, workload)
        template_hash = str(revision["metadata"]["labels"][CONTROLLER_HASH_LABEL])
        if resource is STATEFULSETS:
            if scale:
                self._step_stateful_set(workload, template_hash)
            self._stateful_set_status(workload, template_hash)
        else:
            if scale:
                self._step_daemon_set(workload, template_hash)
            self._daemon_set_status(workload, template_hash)
        self._trim_history(workload)
        if workload != stored:
            self._store.put(resource, workload)

    # --- revisions ------------------------------------------------------------------------------

    def _revisions(self, owner: JsonObject) -> list[JsonObject]:
        namespace = owner["metadata"]["namespace"]
        return [
            copy.deepcopy(cr) for cr in self._store.iterate(CONTROLLERREVISIONS, namespace) if is_owned_by(cr, owner)
        ]

    def _revision_for(self, resource: ResourceType, owner: JsonObject) -> JsonObject:
        """The ControllerRevision of the owner's current template, created or moved to the newest number."""
        meta, template = owner["metadata"], owner["spec"]["template"]
        revisions = self._revisions(owner)
        newest = max((int(cr.get("revision", 0)) for cr in revisions), default=0)
        template_hash = pod_template_hash(template)
        name = f"{meta['name']}-{template_hash}"
        found = next((cr for cr in revisions if cr["metadata"]["name"] == name), None)
        if found is not None:
            if int(found.get("revision", 0)) < newest:
                found["revision"] = newest + 1
                self._store.put(CONTROLLERREVISIONS, found)
            return found
        labels = dict(template.get("metadata", {}).get("labels") or {})
        labels[CONTROLLER_HASH_LABEL] = template_hash
        if resource is DAEMONSETS:
            labels[CONTROLLER_REVISION_HASH_LABEL] = template_hash
        revision: JsonObject = {
            "apiVersion": CONTROLLERREVISIONS.api_version,
            "kind": CONTROLLERREVISIONS.kind,
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "uid": new_uid(),
                "creationTimestamp": format_time(self._clock()),
                "labels": labels,
                "ownerReferences": [owner_reference(owner, resource.kind, resource.api_version)],
            },
            "data": {"spec": {"template": {**copy.deepcopy(template), "$patch": "replace"}}},
            "revision": newest + 1,
        }
        return self._store.put(CONTROLLERREVISIONS, revision)

    def _trim_history(self, owner: JsonObject) -> None:
        limit = int(owner["spec"].get("revisionHistoryLimit", 10))
        revisions = sorted(self._revisions(owner), key=lambda cr: int(cr.get("revision", 0)))
        live = {
            str(pod["metadata"].get("labels", {}).get(CONTROLLER_REVISION_HASH_LABEL, ""))
            for pod in self._owned_pods(owner)
        }
        newest = revisions[-1]["metadata"]["name"] if revisions else ""
        idle = [
            cr
            for cr in revisions
            if cr["metadata"]["name"] != newest
            and cr["metadata"]["name"] not in live
            and cr["metadata"]["labels"].get(CONTROLLER_HASH_LABEL) not in live
        ]
        for cr in idle[: max(len(idle) - limit, 0)]:
            self._store.delete(CONTROLLERREVISIONS, cr["metadata"]["namespace"], cr["metadata"]["name"])

    # --- pods -----------------------------------------------------------------------------------

    def _owned_pods(self, owner: JsonObject) -> list[JsonObject]:
        namespace = owner["metadata"]["namespace"]
        return [pod for pod in self._store.iterate(PODS, namespace) if is_owned_by(pod, owner)]

    def _delete_pod(self, owner: JsonObject, pod: JsonObject) -> None:
        meta = pod["metadata"]
        self._store.delete(PODS, meta["namespace"], meta["name"])
        self._kubelet.forget(meta["uid"])
        self._recorder.record(
            owner,
            "SuccessfulDelete",
            f"delete Pod {meta['name']} in {owner['kind']} {owner['metadata']['name']} successful",
        )

    def _new_pod(
        self, resource: ResourceType, owner: JsonObject, name: str, labels: dict[str, str], node: str | None
    ) -> JsonObject:
        pod = pod_from_template(owner, resource, name, node or self._kubelet.node_for(name), self._clock(), labels)
        if resource is STATEFULSETS:
            pod["spec"]["hostname"] = name
            if owner["spec"].get("serviceName"):
                pod["spec"]["subdomain"] = owner["spec"]["serviceName"]
        created = self._kubelet.admit(pod, self._ready_after_ticks())
        self._recorder.record(
            owner, "SuccessfulCreate", f"create Pod {name} in {resource.kind} {owner['metadata']['name']} successful"
        )
        return created

    # --- statefulsets ---------------------------------------------------------------------------

    def _step_stateful_set(self, sts: JsonObject, template_hash: str) -> None:
        name = sts["metadata"]["name"]
        update_revision = f"{name}-{template_hash}"
        desired = int(sts["spec"].get("replicas", 1))
        parallel = sts["spec"].get("podManagementPolicy") == "Parallel"
        pods = {_ordinal(pod, name): pod for pod in self._owned_pods(sts)}
        for ordinal, pod in sorted(pods.items(), reverse=True):
            if ordinal >= desired or ordinal < 0:
                self._delete_pod(sts, pod)
                del pods[ordinal]
                if not parallel:
                    return
        for ordinal in range(desired):
            if ordinal in pods:
                if not parallel and not pod_ready(pods[ordinal]):
                    return
                continue
            labels = {
                CONTROLLER_REVISION_HASH_LABEL: update_revision,
                STATEFULSET_POD_NAME_LABEL: f"{name}-{ordinal}",
                POD_INDEX_LABEL: str(ordinal),
            }
            self._new_pod(STATEFULSETS, sts, f"{name}-{ordinal}", labels, None)
            if not parallel:
                return
        strategy = sts["spec"].get("updateStrategy") or {}
        if strategy.get("type") == "OnDelete" or not all(pod_ready(pod) for pod in pods.values()):
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition", 0))
        for ordinal in sorted(pods, reverse=True):
            pod = pods[ordinal]
            if (
                ordinal >= partition
                and pod["metadata"]["labels"].get(CONTROLLER_REVISION_HASH_LABEL) != update_revision
            ):
                self._delete_pod(sts, pod)  # recreated at the update revision on the next step
                return

    def _stateful_set_status(self, sts: JsonObject, template_hash: str) -> None:
        name = sts["metadata"]["name"]
        update_revision = f"{name}-{template_hash}"
        previous = sts.get("status") or {}
        pods = self._owned_pods(sts)
        revisions = [str(pod["metadata"]["labels"].get(CONTROLLER_REVISION_HASH_LABEL, "")) for pod in pods]
        desired = int(sts["spec"].get("replicas", 1))
        ready = sum(1 for pod in pods if pod_ready(pod))
        updated = revisions.count(update_revision)
        current_revision = str(previous.get("currentRevision") or update_revision)
        if updated == desired == len(pods) and ready == desired:
            current_revision = update_revision
        status: JsonObject = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(pods),
            "readyReplicas": ready,
            "currentReplicas": revisions.count(current_revision),
            "updatedReplicas": updated,
            "currentRevision": current_revision,
            "updateRevision": update_revision,
            "collisionCount": 0,
            "availableReplicas": ready,
        }
        sts["status"] = status

    # --- daemonsets -----------------------------------------------------------------------------

    def _step_daemon_set(self, ds: JsonObject, template_hash: str) -> None:
        name = ds["metadata"]["name"]
        generation = str(ds["metadata"].get("generation", 1))
        pods = self._owned_pods(ds)
        by_node: dict[str, JsonObject] = {}
        for pod in pods:
            node = str(pod["spec"].get("nodeName", ""))
            if node in by_node or node not in self._nodes:
                self._delete_pod(ds, pod)
            else:
                by_node[node] = pod
        for node in self._nodes:
            if node in by_node:
                continue
            pod_name = f"{name}-{random_suffix(5, self._rng)}"
            while self._store.get(PODS, ds["metadata"]["namespace"], pod_name) is not None:
                pod_name = f"{name}-{random_suffix(5, self._rng)}"
            labels = {CONTROLLER_REVISION_HASH_LABEL: template_hash, POD_TEMPLATE_GENERATION_LABEL: generation}
            by_node[node] = self._new_pod(DAEMONSETS, ds, pod_name, labels, node)
        if (ds["spec"].get("updateStrategy") or {}).get("type") == "OnDelete":
            return
        budget = _max_unavailable(ds, len(self._nodes)) - sum(1 for pod in by_node.values() if not pod_ready(pod))
        old = [
            pod
            for pod in by_node.values()
            if pod["metadata"]["labels"].get(CONTROLLER_REVISION_HASH_LABEL) != template_hash
        ]
        for pod in sorted(old, key=pod_ready)[: max(budget, 0)]:
            self._delete_pod(ds, pod)  # recreated at the new revision on the next step

    def _daemon_set_status(self, ds: JsonObject, template_hash: str) -> None:
        pods = self._owned_pods(ds)
        ready = sum(1 for pod in pods if pod_ready(pod))
        updated = sum(
            1 for pod in pods if pod["metadata"]["labels"].get(CONTROLLER_REVISION_HASH_LABEL) == template_hash
        )
        desired = len(self._nodes)
        ds["status"] = {
            "currentNumberScheduled": len(pods),
            "desiredNumberScheduled": desired,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "observedGeneration": ds["metadata"].get("generation", 1),
            "updatedNumberScheduled": updated,
            "numberAvailable": ready,
            "numberUnavailable": max(desired - ready, 0),
        }
