"""`KubeCluster`: the state behind the loopback emulation of the Kubernetes API.

It holds the objects, the deployment controller, the fault rules and the pod-log hooks, and offers
the API operations (get, list, create, replace, patch, logs) with the real server's semantics:
defaulting, validation (422), optimistic concurrency on `resourceVersion` (409), `dryRun=All`,
`metadata.generation` bumped on spec changes. It is not a real API server; it emulates the parts
opsgate uses. Every method is thread-safe.
"""

from __future__ import annotations

import builtins
import copy
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from opsgate.sandbox.kube.controller import ControllerConfig, DeploymentController
from opsgate.sandbox.kube.errors import KubeApiError, already_exists, bad_request, conflict, not_found
from opsgate.sandbox.kube.events import to_events_v1
from opsgate.sandbox.kube.faults import FaultRules
from opsgate.sandbox.kube.kubelet import PodBehaviors
from opsgate.sandbox.kube.logs import LogOptions, PodLogs, PodRef, render_logs
from opsgate.sandbox.kube.objects import (
    DEPLOYMENTS,
    EVENTS_V1,
    NAMESPACES,
    PODS,
    JsonObject,
    ResourceType,
    format_time,
    new_uid,
    parse_time,
    utc_now,
)
from opsgate.sandbox.kube.patches import PatchError, apply_patch
from opsgate.sandbox.kube.selectors import field_selector, label_selector
from opsgate.sandbox.kube.store import Change, ObjectStore
from opsgate.sandbox.kube.validation import (
    default_deployment,
    default_workload_set,
    validate_deployment,
    validate_workload_set,
)


def view(resource: ResourceType, obj: JsonObject) -> JsonObject:
    """The stored object as `resource`'s API serves it (events.k8s.io/v1 converts core events)."""
    return to_events_v1(obj) if resource is EVENTS_V1 else obj


def _settled(deployment: JsonObject) -> bool:
    status = deployment.get("status") or {}
    if status.get("observedGeneration") != deployment["metadata"].get("generation"):
        return False
    reasons = {c.get("reason") for c in status.get("conditions") or [] if c.get("type") == "Progressing"}
    return bool(reasons & {"NewReplicaSetAvailable", "ProgressDeadlineExceeded"})


class KubeCluster:
    def __init__(
        self,
        config: ControllerConfig | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        random_seed: int | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._clock = clock or utc_now
        self._frozen_at: datetime | None = None
        self.store = ObjectStore()
        self.faults = FaultRules()
        self.logs = PodLogs()
        self.behaviors = PodBehaviors()
        self.controller = DeploymentController(
            self.store,
            self.now,
            self.faults,
            config or ControllerConfig(),
            random.Random(random_seed),
            behaviors=self.behaviors,
        )
        for namespace in ("default", "kube-system"):
            self.create_namespace({"metadata": {"name": namespace}})

    # --- time -----------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self._frozen_at if self._frozen_at is not None else self._clock()

    @contextmanager
    def clock_at(self, moment: datetime) -> Iterator[None]:
        """Hold the lock and pretend it is `moment` (used to seed a backdated history)."""
        with self._lock:
            previous, self._frozen_at = self._frozen_at, moment
            try:
                yield
            finally:
                self._frozen_at = previous

    # --- controller -----------------------------------------------------------------------------

    def tick(self, count: int = 1) -> None:
        for _ in range(count):
            with self._lock:
                self.controller.tick()

    def settle(self, namespace: str, name: str, max_ticks: int = 500) -> JsonObject:
        """Tick until the Deployment's rollout completes or stops changing; return the Deployment."""
        unchanged = 0
        previous: Any = None
        for _ in range(max_ticks):
            with self._lock:
                self.controller.tick()
                deployment = self.get(DEPLOYMENTS, namespace, name)
            if _settled(deployment):
                return deployment
            unchanged = unchanged + 1 if deployment.get("status") == previous else 0
            if unchanged >= 5:
                return deployment
            previous = deployment.get("status")
        return self.get(DEPLOYMENTS, namespace, name)

    # --- reads ----------------------------------------------------------------------------------

    def get(self, resource: ResourceType, namespace: str, name: str) -> JsonObject:
        with self._lock:
            found = self.store.get(resource, namespace if resource.namespaced else "", name)
            if found is None:
                raise not_found(resource, name)
            return view(resource, copy.deepcopy(found))

    def list(
        self,
        resource: ResourceType,
        namespace: str | None,
        *,
        label_selector_text: str | None = None,
        field_selector_text: str | None = None,
    ) -> JsonObject:
        """A `{Kind}List`; items carry no apiVersion/kind, like the real server's JSON lists."""
        by_labels = label_selector(label_selector_text)
        by_fields = field_selector(field_selector_text)
        with self._lock:
            viewed = (view(resource, copy.deepcopy(obj)) for obj in self.store.iterate(resource, namespace))
            items = [obj for obj in viewed if by_labels(obj) and by_fields(obj)]
            resource_version = self.store.resource_version
        for item in items:
            item.pop("apiVersion", None)
            item.pop("kind", None)
        return {
            "kind": f"{resource.kind}List",
            "apiVersion": resource.api_version,
            "metadata": {"resourceVersion": resource_version},
            "items": items,
        }

    def changes_after(self, resource: ResourceType, revision: int) -> tuple[builtins.list[Change] | None, int]:
        """For watches: the changes to `resource` after `revision` (None: too old, 410) and the newest
        revision. The objects are views (events.k8s.io conversion) and must not be modified."""
        with self._lock:
            changes = self.store.changes_after(revision, resource)
            latest = self.store.revision
        if changes is not None and resource is EVENTS_V1:
            changes = [Change(c.revision, c.type, c.resource, c.namespace, view(resource, c.object)) for c in changes]
        return changes, latest

    def record_event(
        self,
        involved: JsonObject,
        reason: str,
        message: str,
        *,
        event_type: str = "Normal",
        component: str | None = None,
        host: str | None = None,
        count: int | None = None,
        first: datetime | None = None,
        last: datetime | None = None,
    ) -> JsonObject:
        """Record an event about an object (e.g. what a scenario's cluster would have said), aggregated by
        object, reason and message like the real recorder; `count`/`first`/`last` set its history."""
        with self._lock:
            return copy.deepcopy(
                self.controller.recorder.record(
                    involved,
                    reason,
                    message,
                    event_type=event_type,
                    component=component,
                    host=host,
                    count=count,
                    first=first,
                    last=last,
                )
            )

    # --- namespaces -----------------------------------------------------------------------------

    def create_namespace(self, body: JsonObject, *, dry_run: bool = False) -> JsonObject:
        name = str((body.get("metadata") or {}).get("name", ""))
        if not name:
            raise KubeApiError(422, "Invalid", 'Namespace "" is invalid: metadata.name: Required value')
        with self._lock:
            if self.store.get(NAMESPACES, "", name) is not None:
                raise already_exists(NAMESPACES, name)
            namespace: JsonObject = {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    **copy.deepcopy(body.get("metadata") or {}),
                    "uid": new_uid(),
                    "creationTimestamp": format_time(self.now()),
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
            namespace["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
            if dry_run:
                return namespace
            return copy.deepcopy(self.store.put(NAMESPACES, namespace))

    def _require_namespace(self, namespace: str) -> None:
        if self.store.get(NAMESPACES, "", namespace) is None:
            raise not_found(NAMESPACES, namespace)

    def _stamp_new(self, resource: ResourceType, namespace: str, name: str, obj: JsonObject) -> None:
        """Under the lock: refuse a name that is taken, then set what the server owns on a new object."""
        self._require_namespace(namespace)
        if name and self.store.get(resource, namespace, name) is not None:
            raise already_exists(resource, name)
        obj.update(apiVersion=resource.api_version, kind=resource.kind)
        meta = obj["metadata"]
        for server_owned in ("resourceVersion", "generation", "uid", "creationTimestamp"):
            meta.pop(server_owned, None)
        meta.update(namespace=namespace, uid=new_uid(), generation=1, creationTimestamp=format_time(self.now()))
        obj["status"] = {}

    # --- deployments ----------------------------------------------------------------------------

    def create_deployment(self, namespace: str, body: Any, *, dry_run: bool = False) -> JsonObject:
        deployment, name = _incoming(DEPLOYMENTS, namespace, body)
        with self._lock:
            self._stamp_new(DEPLOYMENTS, namespace, name, deployment)
            default_deployment(deployment)
            validate_deployment(deployment, None)
            if dry_run:
                return deployment
            written = copy.deepcopy(self.store.put(DEPLOYMENTS, deployment))
            self.controller.sync(namespace, name, scale=False)
            return written

    def replace_deployment(self, namespace: str, name: str, body: Any, *, dry_run: bool = False) -> JsonObject:
        if not isinstance(body, dict):
            raise bad_request("the request body must be a Deployment object")
        with self._lock:
            current = self.get(DEPLOYMENTS, namespace, name)
            return self._update_deployment(current, copy.deepcopy(body), dry_run=dry_run)

    def patch_deployment(
        self, namespace: str, name: str, patch: Any, content_type: str, *, dry_run: bool = False
    ) -> JsonObject:
        with self._lock:
            current = self.get(DEPLOYMENTS, namespace, name)
            try:
                patched = apply_patch(copy.deepcopy(current), patch, content_type)
            except PatchError as error:
                raise KubeApiError(422, "Invalid", f"the patch could not be applied: {error}") from error
            return self._update_deployment(current, patched, dry_run=dry_run)

    def _update_deployment(self, current: JsonObject, candidate: JsonObject, *, dry_run: bool) -> JsonObject:
        meta = _take_server_owned(DEPLOYMENTS, current, candidate)
        default_deployment(candidate)
        validate_deployment(candidate, current)
        if candidate["spec"] != current["spec"]:
            meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
        if candidate == current or dry_run:
            return candidate
        written = copy.deepcopy(self.store.put(DEPLOYMENTS, candidate))
        self.controller.sync(meta["namespace"], meta["name"], scale=False)
        return written

    # --- statefulsets and daemonsets -------------------------------------------------------------

    def create_workload_set(
        self, resource: ResourceType, namespace: str, body: Any, *, dry_run: bool = False
    ) -> JsonObject:
        """Create a StatefulSet or DaemonSet (`resource`), defaulted and validated like the real server."""
        obj, name = _incoming(resource, namespace, body)
        with self._lock:
            self._stamp_new(resource, namespace, name, obj)
            default_workload_set(resource, obj)
            validate_workload_set(resource, obj, None)
            if dry_run:
                return obj
            self.store.put(resource, obj)
            self.controller.sets.sync(resource, namespace, name, scale=False)
            return self.get(resource, namespace, name)

    def replace_workload_set(
        self, resource: ResourceType, namespace: str, name: str, body: Any, *, dry_run: bool = False
    ) -> JsonObject:
        if not isinstance(body, dict):
            raise bad_request(f"the request body must be a {resource.kind} object")
        with self._lock:
            current = self.get(resource, namespace, name)
            return self._update_workload_set(resource, current, copy.deepcopy(body), dry_run=dry_run)

    def patch_workload_set(
        self, resource: ResourceType, namespace: str, name: str, patch: Any, content_type: str, *, dry_run: bool = False
    ) -> JsonObject:
        with self._lock:
            current = self.get(resource, namespace, name)
            try:
                patched = apply_patch(copy.deepcopy(current), patch, content_type)
            except PatchError as error:
                raise KubeApiError(422, "Invalid", f"the patch could not be applied: {error}") from error
            return self._update_workload_set(resource, current, patched, dry_run=dry_run)

    def _update_workload_set(
        self, resource: ResourceType, current: JsonObject, candidate: JsonObject, *, dry_run: bool
    ) -> JsonObject:
        meta = _take_server_owned(resource, current, candidate)
        default_workload_set(resource, candidate)
        validate_workload_set(resource, candidate, current)
        if candidate["spec"] != current["spec"]:
            meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
        if candidate == current or dry_run:
            return candidate
        self.store.put(resource, candidate)
        self.controller.sets.sync(resource, meta["namespace"], meta["name"], scale=False)
        return self.get(resource, meta["namespace"], meta["name"])

    # --- pod logs -------------------------------------------------------------------------------

    def pod_logs(self, namespace: str, name: str, options: LogOptions) -> str:
        pod = self.get(PODS, namespace, name)
        containers = [str(c["name"]) for c in pod["spec"]["containers"]]
        container = options.container
        if container is None:
            if len(containers) != 1:
                raise bad_request(
                    f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
                )
            container = containers[0]
        elif container not in containers:
            raise bad_request(f"container {container} is not valid for pod {name}")
        for status in pod.get("status", {}).get("containerStatuses") or []:
            waiting = (status.get("state") or {}).get("waiting") or {}
            if status["name"] == container and waiting.get("reason") == "ImagePullBackOff":
                raise bad_request(
                    f'container "{container}" in pod "{name}" is waiting to start: trying and failing to pull image'
                )
        spec_container = next(c for c in pod["spec"]["containers"] if c["name"] == container)
        ref = PodRef(
            namespace=namespace,
            pod=name,
            container=container,
            image=str(spec_container.get("image", "")),
            labels=dict(pod["metadata"].get("labels") or {}),
            started=parse_time(pod["metadata"]["creationTimestamp"]),
        )
        return render_logs(self.logs.lines_for(ref), options, self.now())


def _take_server_owned(resource: ResourceType, current: JsonObject, candidate: JsonObject) -> JsonObject:
    """An update's body checked against the stored object (name, namespace, kind, resourceVersion and uid
    must match when sent), then given the fields the server owns; returns the candidate's metadata."""
    current_meta = current["metadata"]
    name, namespace = current_meta["name"], current_meta["namespace"]
    meta = candidate.get("metadata")
    if not isinstance(meta, dict):
        raise bad_request("metadata must be an object")
    if meta.get("name", name) != name:
        raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
    if meta.get("namespace", namespace) != namespace:
        raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
    if candidate.get("kind", resource.kind) != resource.kind:
        raise bad_request(f"the body is a {candidate.get('kind')}, not a {resource.kind}")
    sent_version = meta.get("resourceVersion")
    if (sent_version and sent_version != current_meta["resourceVersion"]) or (
        meta.get("uid") and meta["uid"] != current_meta["uid"]
    ):
        raise conflict(resource, name)
    candidate.update(
        apiVersion=resource.api_version, kind=resource.kind, status=copy.deepcopy(current.get("status") or {})
    )
    for server_owned in ("name", "namespace", "uid", "creationTimestamp", "generation", "resourceVersion"):
        meta[server_owned] = current_meta[server_owned]
    return meta


def _incoming(resource: ResourceType, namespace: str, body: Any) -> tuple[JsonObject, str]:
    """A create request's body, copied and checked against the request's namespace and kind; and its name."""
    if not isinstance(body, dict):
        raise bad_request(f"the request body must be a {resource.kind} object")
    obj = copy.deepcopy(body)
    meta = obj.setdefault("metadata", {})
    if meta.get("namespace", namespace) != namespace:
        raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
    if obj.get("kind", resource.kind) != resource.kind:
        raise bad_request(f"the body is a {obj.get('kind')}, not a {resource.kind}")
    return obj, str(meta.get("name", ""))
