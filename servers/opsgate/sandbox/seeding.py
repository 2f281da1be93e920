"""Write a scenario into the loopback cluster as a real one would hold it.

Each Deployment gets its revision history, each revision rolled out at its (backdated) moment through
the emulated deployment controller, so ReplicaSets, revisions, change causes and pods are the
controller's own. Revisions whose pods cannot start (crash loop, image pull) are marked bad before they
roll out, so their rollout stalls as a real one does. Then the pod behaviours are written the way
kubelet reports them: container statuses (restart counts, the last termination's reason and exit code,
the waiting reason, readiness) and the Events a cluster records (BackOff, Unhealthy, Failed, Pulling),
with counts and first/last timestamps.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from opsgate.sandbox.kube.errors import KubeApiError
from opsgate.sandbox.kube.objects import POD_TEMPLATE_HASH_LABEL, REVISION_ANNOTATION, format_time, new_uid
from opsgate.sandbox.kube_api import CHANGE_CAUSE_ANNOTATION, DEPLOYMENTS, EVENTS, PODS, REPLICASETS, KubeCluster
from opsgate.sandbox.scenario import PodBehaviour, Revision, Scenario, Service, parse_offset

JsonObject = dict[str, Any]
NODE = "sandbox-node-1"


def _container(service: Service, revision: Revision) -> JsonObject:
    deployment = service.deployment
    resources = revision.resources or deployment.resources
    probe = revision.readiness_probe or deployment.readiness_probe
    container: JsonObject = {
        "name": deployment.container or service.name,
        "image": revision.image,
        "ports": [{"containerPort": probe.port, "name": "http"}],
        "resources": {"requests": dict(resources.requests), "limits": dict(resources.limits)},
        "readinessProbe": {
            "httpGet": {"path": probe.path, "port": probe.port},
            "periodSeconds": probe.period_s,
            "failureThreshold": probe.failure_threshold,
        },
    }
    if revision.env:
        container["env"] = [{"name": k, "value": v} for k, v in sorted(revision.env.items())]
    return container


def deployment_manifest(service: Service, revision: Revision) -> JsonObject:
    labels = {"app": service.name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": service.name,
            "namespace": service.namespace,
            "labels": dict(labels),
            "annotations": {CHANGE_CAUSE_ANNOTATION: revision.change_cause or f"deploy {revision.image}"},
        },
        "spec": {
            "replicas": service.deployment.replicas,
            "progressDeadlineSeconds": 600,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": [_container(service, revision)]}},
        },
    }


def _blocking(scenario: Scenario, service: Service, revision: int) -> str | None:
    """The kubelet reason that keeps this revision's pods from starting, if a behaviour says so."""
    for behaviour in scenario.pod_behaviours:
        target = behaviour.target
        if target.service == service.name and target.revision == revision and target.pods is None:
            if behaviour.kind == "crash_loop":
                return "CrashLoopBackOff"
            if behaviour.kind == "image_pull_backoff":
                return "ImagePullBackOff"
    return None


def seed_scenario(
    cluster: KubeCluster, scenario: Scenario, at: Callable[[float], datetime]
) -> dict[str, dict[str, int]]:
    """Create the scenario's namespaces and Deployments; `at` maps scenario seconds to a datetime.

    Returns, per service, the pod-template-hash of each scenario revision.
    """
    for namespace in scenario.namespaces:
        try:
            cluster.create_namespace({"metadata": {"name": namespace}})
        except KubeApiError as error:
            if error.code != 409:
                raise
    hashes: dict[str, dict[str, int]] = {}
    steps = sorted(
        ((parse_offset(r.at), s.name, r.revision) for s in scenario.services for r in s.deployment.revisions),
        key=lambda item: (item[0], item[1], item[2]),
    )
    for offset, name, number in steps:
        service = scenario.service(name)
        assert service is not None
        revision = service.deployment.revision(number)
        assert revision is not None
        reason = _blocking(scenario, service, number)
        if reason is not None:
            cluster.faults.mark_image_bad(revision.image, reason)
        manifest = deployment_manifest(service, revision)
        with cluster.clock_at(at(offset)):
            try:
                current = cluster.get(DEPLOYMENTS, service.namespace, service.name)
            except KubeApiError:
                cluster.create_deployment(service.namespace, manifest)
            else:
                body = copy.deepcopy(current)
                body["metadata"]["annotations"] = {
                    **(body["metadata"].get("annotations") or {}),
                    **manifest["metadata"]["annotations"],
                }
                body["spec"]["template"] = manifest["spec"]["template"]
                cluster.replace_deployment(service.namespace, service.name, body)
            cluster.settle(service.namespace, service.name)
        _number_revision(cluster, service, number)
        for rs in cluster.list(REPLICASETS, service.namespace, label_selector_text=f"app={name}")["items"]:
            if (rs["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION) == str(number):
                hashes.setdefault(name, {})[rs["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL]] = number
    return hashes


def _number_revision(cluster: KubeCluster, service: Service, number: int) -> None:
    """Give the newest rollout the scenario's revision number (a history that starts at revision 5 is a
    Deployment whose earlier ReplicaSets were trimmed), on the Deployment and its ReplicaSet alike."""
    with cluster.clock_at(cluster.now()):
        deployment = cluster.store.get(DEPLOYMENTS, service.namespace, service.name)
        assert deployment is not None
        annotations = deployment["metadata"].setdefault("annotations", {})
        newest = annotations.get(REVISION_ANNOTATION)
        if newest == str(number):
            return
        for rs in list(cluster.store.iterate(REPLICASETS, service.namespace)):
            rs_annotations = rs["metadata"].get("annotations") or {}
            owned = (rs["metadata"].get("labels") or {}).get("app") == service.name
            if owned and rs_annotations.get(REVISION_ANNOTATION) == newest:
                updated = copy.deepcopy(rs)
                updated["metadata"]["annotations"][REVISION_ANNOTATION] = str(number)
                cluster.store.put(REPLICASETS, updated)
        updated_deployment = copy.deepcopy(deployment)
        updated_deployment["metadata"]["annotations"][REVISION_ANNOTATION] = str(number)
        cluster.store.put(DEPLOYMENTS, updated_deployment)


def revision_of_pod(pod: JsonObject, hashes: dict[str, int]) -> int | None:
    return hashes.get(str((pod["metadata"].get("labels") or {}).get(POD_TEMPLATE_HASH_LABEL, "")))


# -- pod behaviours: container statuses and events --------------------------------------------------


def _event(
    cluster: KubeCluster,
    involved: JsonObject,
    reason: str,
    message: str,
    *,
    kind: str,
    first: datetime,
    last: datetime,
    count: int,
    component: str = "kubelet",
) -> None:
    meta = involved["metadata"]
    stamp = int(last.timestamp() * 1_000_000_000)
    name = f"{meta['name']}.{stamp:x}"
    while cluster.store.get(EVENTS, meta["namespace"], name) is not None:
        stamp += 1
        name = f"{meta['name']}.{stamp:x}"
    event: JsonObject = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "uid": new_uid(),
            "creationTimestamp": format_time(first),
        },
        "involvedObject": {
            "apiVersion": involved.get("apiVersion", "v1"),
            "kind": involved.get("kind", "Pod"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "fieldPath": f"spec.containers{{{involved['spec']['containers'][0]['name']}}}",
        },
        "reason": reason,
        "message": message,
        "source": {"component": component, "host": NODE},
        "firstTimestamp": format_time(first),
        "lastTimestamp": format_time(last),
        "count": count,
        "type": kind,
        "reportingComponent": component,
        "reportingInstance": NODE,
    }
    cluster.store.put(EVENTS, event)


def _ready_condition(pod: JsonObject, ready: bool, since: str) -> None:
    container = pod["spec"]["containers"][0]["name"]
    for condition in pod["status"].get("conditions") or []:
        if condition.get("type") in ("Ready", "ContainersReady"):
            condition["status"] = "True" if ready else "False"
            condition["lastTransitionTime"] = since
            if ready:
                condition.pop("reason", None)
                condition.pop("message", None)
            else:
                condition["reason"] = "ContainersNotReady"
                condition["message"] = f"containers with unready status: [{container}]"


def apply_behaviour(
    cluster: KubeCluster,
    scenario: Scenario,
    behaviour: PodBehaviour,
    pods: list[JsonObject],
    at: Callable[[float], datetime],
    started: Callable[[JsonObject], float],
) -> None:
    """Write one behaviour into the pods' statuses and the namespace's events (holding the cluster lock)."""
    now = at(0.0)
    for pod in pods:
        meta = pod["metadata"]
        status = pod["status"]
        container = status["containerStatuses"][0]
        name, image = container["name"], container["image"]
        begin = max(started(pod), 0.0 if behaviour.start is None else parse_offset(behaviour.start))
        begin = min(begin + parse_offset(behaviour.lag), 0.0)
        first = at(begin)
        restarts = behaviour.restarts
        if behaviour.kind in ("oom_killed", "error_exit"):
            oom = behaviour.kind == "oom_killed"
            code = behaviour.exit_code if behaviour.exit_code is not None else (137 if oom else 1)
            last_end = now - timedelta(seconds=90)
            container.update(
                restartCount=restarts,
                ready=True,
                started=True,
                state={"running": {"startedAt": format_time(last_end + timedelta(seconds=10))}},
                lastState={
                    "terminated": {
                        "exitCode": code,
                        "reason": "OOMKilled" if oom else "Error",
                        "startedAt": format_time(first),
                        "finishedAt": format_time(last_end),
                        "containerID": container.get("containerID", ""),
                    }
                },
            )
            _event(
                cluster,
                pod,
                "BackOff",
                f"Back-off restarting failed container {name} in pod {meta['name']}_{meta['namespace']}({meta['uid']})",
                kind="Warning",
                first=first,
                last=last_end,
                count=max(restarts - 1, 1),
            )
            _event(
                cluster,
                pod,
                "Started",
                f"Started container {name}",
                kind="Normal",
                first=first,
                last=last_end,
                count=restarts + 1,
            )
        elif behaviour.kind == "crash_loop":
            code = behaviour.exit_code if behaviour.exit_code is not None else 1
            container.update(
                restartCount=restarts,
                ready=False,
                started=False,
                state={
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off 5m0s restarting failed container={name} "
                        f"pod={meta['name']}_{meta['namespace']}({meta['uid']})",
                    }
                },
                lastState={
                    "terminated": {
                        "exitCode": code,
                        "reason": "Error",
                        "startedAt": format_time(now - timedelta(seconds=75)),
                        "finishedAt": format_time(now - timedelta(seconds=72)),
                    }
                },
            )
            _ready_condition(pod, False, format_time(first))
            _event(
                cluster,
                pod,
                "Pulled",
                f'Container image "{image}" already present on machine',
                kind="Normal",
                first=first,
                last=now - timedelta(seconds=76),
                count=restarts + 1,
            )
            _event(
                cluster,
                pod,
                "BackOff",
                f"Back-off restarting failed container {name} in pod {meta['name']}_{meta['namespace']}({meta['uid']})",
                kind="Warning",
                first=first + timedelta(seconds=20),
                last=now - timedelta(seconds=5),
                count=max(restarts * 3, 1),
            )
        elif behaviour.kind == "image_pull_backoff":
            detail = behaviour.message or (
                f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": '
                f'failed to resolve reference "{image}": {image}: not found'
            )
            container.update(
                ready=False,
                started=False,
                imageID="",
                state={"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}},
            )
            container.pop("containerID", None)
            container.pop("lastState", None)
            status["phase"] = "Pending"
            _ready_condition(pod, False, format_time(first))
            span: dict[str, Any] = {"first": first, "last": now - timedelta(seconds=30)}
            _event(cluster, pod, "Pulling", f'Pulling image "{image}"', kind="Normal", count=6, **span)
            _event(cluster, pod, "Failed", f'Failed to pull image "{image}": {detail}', kind="Warning", count=6, **span)
            _event(cluster, pod, "Failed", "Error: ErrImagePull", kind="Warning", count=6, **span)
            _event(cluster, pod, "BackOff", f'Back-off pulling image "{image}"', kind="Normal", count=40, **span)
            _event(cluster, pod, "Failed", "Error: ImagePullBackOff", kind="Warning", count=40, **span)
        elif behaviour.kind == "readiness_flapping":
            detail = behaviour.message or "HTTP probe failed with statuscode: 503"
            container.update(ready=False)
            _ready_condition(pod, False, format_time(now - timedelta(seconds=20)))
            _event(
                cluster,
                pod,
                "Unhealthy",
                f"Readiness probe failed: {detail}",
                kind="Warning",
                first=first,
                last=now - timedelta(seconds=20),
                count=max(restarts, 12),
            )
        cluster.controller.forget(meta["uid"])
        cluster.store.put(PODS, pod)


def apply_behaviours(
    cluster: KubeCluster,
    scenario: Scenario,
    hashes: dict[str, dict[str, int]],
    at: Callable[[float], datetime],
    started: Callable[[JsonObject], float],
) -> None:
    for behaviour in scenario.pod_behaviours:
        target = behaviour.target
        service = scenario.service(str(target.service), target.namespace)
        assert service is not None
        with cluster.clock_at(at(0.0)):
            pods = [
                copy.deepcopy(p)
                for p in cluster.store.iterate(PODS, service.namespace)
                if (p["metadata"].get("labels") or {}).get("app") == service.name
            ]
            if target.revision is not None:
                pods = [p for p in pods if revision_of_pod(p, hashes.get(service.name, {})) == target.revision]
            pods.sort(key=lambda p: str(p["metadata"]["name"]))
            if target.pods is not None:
                pods = [p for i, p in enumerate(pods) if i in target.pods]
            apply_behaviour(cluster, scenario, behaviour, pods, at, started)
        cluster.tick()
