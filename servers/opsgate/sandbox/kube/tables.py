"""Server-side printing (`meta.k8s.io/v1` Table), as `kubectl get` asks for it.

kubectl sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...` and prints the columns the
server returns; without a Table it falls back to NAME/AGE. The columns and cell texts follow the real
API server's printers (pkg/printers/internalversion) for the kinds the emulation serves.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from opsgate.sandbox.kube.objects import JsonObject, parse_time

Cells = list[Any]

_NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although some resources may "
    "allow a client to request the generation of an appropriate name automatically."
)


def wants_table(accept: str) -> bool:
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = (s % 3600) // 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24
        rest = days % 365
        return f"{days // 365}y{rest}d" if rest else f"{days // 365}y"
    return f"{hours // 24 // 365}y"


def _since(value: Any, now: datetime) -> str:
    if not value:
        return "<unknown>"
    try:
        return human_duration((now - parse_time(str(value))).total_seconds())
    except ValueError:
        return "<unknown>"


def _column(name: str, kind: str = "string", *, priority: int = 0, fmt: str = "", description: str = "") -> JsonObject:
    return {"name": name, "type": kind, "format": fmt, "description": description or name, "priority": priority}


def _containers_images(template_spec: JsonObject) -> tuple[str, str]:
    containers = template_spec.get("containers") or []
    return ",".join(str(c.get("name", "")) for c in containers), ",".join(str(c.get("image", "")) for c in containers)


def _selector_text(selector: JsonObject | None) -> str:
    if not selector:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        values = ",".join(expr.get("values") or [])
        parts.append(f"{expr['key']} {str(expr['operator']).lower()} ({values})")
    return ",".join(parts) or "<none>"


# --- pods ----------------------------------------------------------------------------------------


def pod_status_reason(pod: JsonObject) -> str:
    """The STATUS column: the phase, overridden by a waiting or terminated container's reason."""
    status = pod.get("status") or {}
    reason = str(status.get("reason") or status.get("phase") or "Unknown")
    has_running = False
    for container in reversed(status.get("containerStatuses") or []):
        state = container.get("state") or {}
        waiting, terminated = state.get("waiting"), state.get("terminated")
        if waiting and waiting.get("reason"):
            reason = str(waiting["reason"])
        elif terminated and terminated.get("reason"):
            reason = str(terminated["reason"])
        elif terminated:
            signal = terminated.get("signal")
            reason = f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode', 0)}"
        elif container.get("ready") and state.get("running"):
            has_running = True
    if reason == "Completed" and has_running:
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        reason = "Running" if ready else "NotReady"
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def _pod_cells(pod: JsonObject, now: datetime) -> Cells:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in statuses)
    last_restart: datetime | None = None
    for container in statuses:
        finished = ((container.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        if finished:
            moment = parse_time(str(finished))
            last_restart = moment if last_restart is None or moment > last_restart else last_restart
    restart_text = str(restarts)
    if restarts and last_restart is not None:
        restart_text = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"
    meta, spec = pod["metadata"], pod.get("spec") or {}
    return [
        meta["name"],
        f"{ready}/{total}",
        pod_status_reason(pod),
        restart_text,
        _since(meta.get("creationTimestamp"), now),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        "<none>",
        "<none>",
    ]


_POD_COLUMNS = [
    _column("Name", fmt="name", description=_NAME_DESCRIPTION),
    _column("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    _column("Status", description="The aggregate status of the containers in this pod."),
    _column(
        "Restarts",
        description="The number of times the containers in this pod have been restarted "
        "and when the last container in this pod has restarted.",
    ),
    _column("Age", description="CreationTimestamp"),
    _column("IP", priority=1, description="IP address allocated to the pod."),
    _column("Node", priority=1, description="Name of the node the pod is assigned to."),
    _column("Nominated Node", priority=1, description="Name of the node where the pod is nominated to run."),
    _column("Readiness Gates", priority=1, description="Pod readiness gates."),
]

# --- workloads ------------------------------------------------------------------------------------


def _deployment_cells(obj: JsonObject, now: datetime) -> Cells:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    containers, images = _containers_images(((spec.get("template") or {}).get("spec")) or {})
    return [
        obj["metadata"]["name"],
        f"{int(status.get('readyReplicas') or 0)}/{int(spec.get('replicas') or 0)}",
        int(status.get("updatedReplicas") or 0),
        int(status.get("availableReplicas") or 0),
        _since(obj["metadata"].get("creationTimestamp"), now),
        containers,
        images,
        _selector_text(spec.get("selector")),
    ]


_DEPLOYMENT_COLUMNS = [
    _column("Name", fmt="name", description=_NAME_DESCRIPTION),
    _column("Ready", description="Number of the pod with ready state"),
    _column(
        "Up-to-date",
        "integer",
        description="Total number of non-terminated pods targeted by this deployment that "
        "have the desired template spec.",
    ),
    _column(
        "Available",
        "integer",
        description="Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    _column("Age", description="CreationTimestamp"),
    _column("Containers", priority=1, description="Names of each container in the template."),
    _column("Images", priority=1, description="Images referenced by each container in the template."),
    _column("Selector", priority=1, description="Label selector for pods."),
]


def _replica_set_cells(obj: JsonObject, now: datetime) -> Cells:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    containers, images = _containers_images(((spec.get("template") or {}).get("spec")) or {})
    return [
        obj["metadata"]["name"],
        int(spec.get("replicas") or 0),
        int(status.get("replicas") or 0),
        int(status.get("readyReplicas") or 0),
        _since(obj["metadata"].get("creationTimestamp"), now),
        containers,
        images,
        _selector_text(spec.get("selector")),
    ]


_REPLICA_SET_COLUMNS = [
    _column("Name", fmt="name", description=_NAME_DESCRIPTION),
    _column("Desired", "integer", description="Replicas is the number of desired replicas."),
    _column("Current", "integer", description="Replicas is the most recently observed number of replicas."),
    _column("Ready", "integer", description="The number of ready replicas for this replica set."),
    _column("Age", description="CreationTimestamp"),
    _column("Containers", priority=1, description="Names of each container in the template."),
    _column("Images", priority=1, description="Images referenced by each container in the template."),
    _column("Selector", priority=1, description="Label selector for pods."),
]


def _stateful_set_cells(obj: JsonObject, now: datetime) -> Cells:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    containers, images = _containers_images(((spec.get("template") or {}).get("spec")) or {})
    return [
        obj["metadata"]["name"],
        f"{int(status.get('readyReplicas') or 0)}/{int(spec.get('replicas') or 0)}",
        _since(obj["metadata"].get("creationTimestamp"), now),
        containers,
        images,
    ]


_STATEFUL_SET_COLUMNS = [
    _column("Name", fmt="name", description=_NAME_DESCRIPTION),
    _column("Ready", description="Number of the pod with ready state"),
    _column("Age", description="CreationTimestamp"),
    _column("Containers", priority=1, description="Names of each container in the template."),
    _column("Images", priority=1, description="Images referenced by each container in the template."),
]


def _daemon_set_cells(obj: JsonObject, now: datetime) -> Cells:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    template_spec = ((spec.get("template") or {}).get("spec")) or {}
    containers, images = _containers_images(template_spec)
    node_selector = ",".join(f"{k}={v}" for k, v in sorted((template_spec.get("nodeSelector") or {}).items()))
    return [
        obj["metadata"]["name"],
        int(status.get("desiredNumberScheduled") or 0),
        int(status.get("currentNumberScheduled") or 0),
        int(status.get("numberReady") or 0),
        int(status.get("updatedNumberScheduled") or 0),
        int(status.get("numberAvailable") or 0),
        node_selector or "<none>",
        _since(obj["metadata"].get("creationTimestamp"), now),
        containers,
        images,
        _selector_text(spec.get("selector")),
    ]


_DAEMON_SET_COLUMNS = [
    _column("Name", fmt="name", description=_NAME_DESCRIPTION),
    _column("Desired", "integer", description="The total number of nodes that should be running the daemon pod."),
    _column("Current", "integer", description="The number of nodes that are running at least 1 daemon pod."),
    _column(
        "Ready",
        "integer",
        description="The number of nodes that should be running the daemon pod and have "
        "one or more of the daemon pod running and ready.",
    ),
    _column("Up-to-date", "integer", description="The total number of nodes that are running updated daemon pod"),
    _column(
        "Available",
        "integer",
        description="The number of nodes that should be running the daemon pod and have "
        "one or more of the daemon pod running and available.",
    ),
    _column("Node Selector", description="NodeSelector is a selector which must be true for the pod to fit on a node."),
    _column("Age", description="CreationTimestamp"),
    _column("Containers", priority=1, description="Names of each container in the template."),
    _column("Images", priority=1, description="Images referenced by each container in the template."),
    _column("Selector", priority=1, description="A label query over pods that are managed by the daemon set."),
]


def _controller_revision_cells(obj: JsonObject, now: datetime) -> Cells:
    owner = next((o for o in obj["metadata"].get("ownerReferences") or [] if o.get("controller")), None)
    controller = f"{str(owner['kind']).lower()}.apps/{owner['name']}" if owner else "<none>"
    return [
        obj["metadata"]["name"],
        controller,
        int(obj.get("revision") or 0),
        _since(obj["metadata"].get("creationTimestamp"), now),
    ]


_CONTROLLER_REVISION_COLUMNS = [
    _column("Name", fmt="name", description=_NAME_DESCRIPTION),
    _column("Controller", description="Controller of the object"),
    _column("Revision", "integer", description="Revision indicates the revision of the state represented by Data."),
    _column("Age", description="CreationTimestamp"),
]

# --- events and namespaces ------------------------------------------------------------------------


def _event_cells(event: JsonObject, now: datetime) -> Cells:
    if "regarding" in event:  # events.k8s.io/v1
        involved, message = event.get("regarding") or {}, event.get("note", "")
        count = int((event.get("series") or {}).get("count") or event.get("deprecatedCount") or 1)
        first = event.get("deprecatedFirstTimestamp") or event.get("eventTime")
        last = (event.get("series") or {}).get("lastObservedTime") or event.get("deprecatedLastTimestamp") or first
        source = event.get("reportingController", "")
    else:
        involved, message = event.get("involvedObject") or {}, event.get("message", "")
        count = int(event.get("count") or 1)
        first = event.get("firstTimestamp") or event.get("eventTime")
        last = event.get("lastTimestamp") or first
        src = event.get("source") or {}
        source = ", ".join(part for part in (src.get("component"), src.get("host")) if part)
    last_seen = _since(last, now)
    if count > 1:
        last_seen = f"{last_seen} (x{count} over {_since(first, now)})"
    return [
        last_seen,
        event.get("type", ""),
        event.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        involved.get("fieldPath", ""),
        source,
        message.strip(),
        _since(first, now),
        count,
        event["metadata"]["name"],
    ]


_EVENT_COLUMNS = [
    _column("Last Seen", description="Time when this Event was last observed."),
    _column("Type", description="Type of this event (Normal, Warning), new types could be added in the future."),
    _column(
        "Reason",
        description="This should be a short, machine understandable string that gives the "
        "reason for this event being generated.",
    ),
    _column("Object", description="The object this Event is about."),
    _column("Subobject", priority=1, description="The specific part of the object this Event is about."),
    _column("Source", priority=1, description="The component reporting this event."),
    _column("Message", description="A human-readable description of the status of this operation."),
    _column("First Seen", priority=1, description="The time at which the event was first recorded."),
    _column("Count", "integer", priority=1, description="The number of times this event has occurred."),
    _column("Name", priority=1, fmt="name", description=_NAME_DESCRIPTION),
]


def _namespace_cells(obj: JsonObject, now: datetime) -> Cells:
    return [
        obj["metadata"]["name"],
        (obj.get("status") or {}).get("phase", ""),
        _since(obj["metadata"].get("creationTimestamp"), now),
    ]


_NAMESPACE_COLUMNS = [
    _column("Name", fmt="name", description=_NAME_DESCRIPTION),
    _column("Status", description="The status of the namespace"),
    _column("Age", description="CreationTimestamp"),
]


def _default_cells(obj: JsonObject, now: datetime) -> Cells:
    return [obj["metadata"]["name"], obj["metadata"].get("creationTimestamp", "")]


_DEFAULT_COLUMNS = [
    _column("Name", fmt="name", description=_NAME_DESCRIPTION),
    _column("Created At", "date", description="CreationTimestamp"),
]

PRINTERS: dict[str, tuple[list[JsonObject], Callable[[JsonObject, datetime], Cells]]] = {
    "Pod": (_POD_COLUMNS, _pod_cells),
    "Deployment": (_DEPLOYMENT_COLUMNS, _deployment_cells),
    "ReplicaSet": (_REPLICA_SET_COLUMNS, _replica_set_cells),
    "StatefulSet": (_STATEFUL_SET_COLUMNS, _stateful_set_cells),
    "DaemonSet": (_DAEMON_SET_COLUMNS, _daemon_set_cells),
    "ControllerRevision": (_CONTROLLER_REVISION_COLUMNS, _controller_revision_cells),
    "Event": (_EVENT_COLUMNS, _event_cells),
    "Namespace": (_NAMESPACE_COLUMNS, _namespace_cells),
}


def _partial(obj: JsonObject) -> JsonObject:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def table(
    kind: str,
    objects: list[JsonObject],
    now: datetime,
    *,
    resource_version: str | None = None,
    include_object: str = "PartialObjectMetadata",
    columns: bool = True,
) -> JsonObject:
    """A `meta.k8s.io/v1` Table of `objects` (all of one kind)."""
    definitions, cells = PRINTERS.get(kind, (_DEFAULT_COLUMNS, _default_cells))
    rows = []
    for obj in objects:
        row: JsonObject = {"cells": cells(obj, now)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = _partial(obj)
        rows.append(row)
    result: JsonObject = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "rows": rows}
    if resource_version is not None:
        result["metadata"]["resourceVersion"] = resource_version
    if columns:
        result["columnDefinitions"] = definitions
    return result
