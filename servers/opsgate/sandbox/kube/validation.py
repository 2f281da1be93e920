"""Defaulting and validation of Deployments, the subset the real API server applies that we rely on.

Defaulting matters for rollbacks: the real server stores defaulted pod templates, so a template copied
back from a ReplicaSet compares equal to the one the Deployment was created with.
"""

from __future__ import annotations

import re
from typing import Any

from opsgate.sandbox.kube.errors import KubeApiError, invalid
from opsgate.sandbox.kube.objects import DEPLOYMENTS, STATEFULSETS, JsonObject, ResourceType
from opsgate.sandbox.kube.selectors import match_labels_selector

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def default_pod_spec(spec: JsonObject) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for container in spec.get("containers") or []:
        if not isinstance(container, dict):
            continue
        image = str(container.get("image", ""))
        tag = image.rsplit("/", 1)[-1].partition(":")[2] if "@" not in image else "digest"
        container.setdefault("imagePullPolicy", "Always" if tag in ("", "latest") else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")


def drop_nulls(value: Any) -> Any:
    """Remove null fields recursively, as decoding into the API's Go types does (kubectl sends a pod
    template's `metadata.creationTimestamp: null`; the stored object has no such field)."""
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for item in value.values():
            drop_nulls(item)
    elif isinstance(value, list):
        for item in value:
            drop_nulls(item)
    return value


def default_deployment(deployment: JsonObject) -> None:
    drop_nulls(deployment)
    spec: JsonObject = deployment.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy: JsonObject = spec.setdefault("strategy", {"type": "RollingUpdate"})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling: JsonObject = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    template: JsonObject = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    pod_spec = template.setdefault("spec", {})
    if isinstance(pod_spec, dict):
        default_pod_spec(pod_spec)


def _cause(field: str, message: str, reason: str = "FieldValueInvalid") -> JsonObject:
    return {"reason": reason, "message": message, "field": field}


def _required(field: str) -> JsonObject:
    return _cause(field, "Required value", "FieldValueRequired")


def _non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _pod_template_causes(spec: JsonObject, previous: JsonObject | None) -> list[JsonObject]:
    """A workload's selector (present, matching its template's labels, immutable) and its containers."""
    causes: list[JsonObject] = []
    selector = spec.get("selector")
    template = spec.get("template") or {}
    template_labels = (template.get("metadata") or {}).get("labels") or {}
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(_required("spec.selector"))
    elif not match_labels_selector(selector)({"metadata": {"labels": template_labels}}):
        causes.append(
            _cause(
                "spec.template.metadata.labels",
                f"Invalid value: {template_labels!r}: `selector` does not match template `labels`",
            )
        )
    elif previous is not None and selector != previous.get("spec", {}).get("selector"):
        causes.append(_cause("spec.selector", f"Invalid value: {selector!r}: field is immutable"))
    causes.extend(_container_causes((template.get("spec") or {}).get("containers")))
    return causes


def _container_causes(containers: Any) -> list[JsonObject]:
    base = "spec.template.spec.containers"
    if not isinstance(containers, list) or not containers:
        return [_required(base)]
    causes: list[JsonObject] = []
    for index, container in enumerate(containers):
        field = f"{base}[{index}]"
        if not isinstance(container, dict):
            causes.append(_cause(field, "must be an object"))
            continue
        name = container.get("name")
        if not name:
            causes.append(_required(f"{field}.name"))
        elif not isinstance(name, str) or not _DNS_LABEL.match(name):
            causes.append(_cause(f"{field}.name", f'Invalid value: "{name}": must be a DNS-1123 label'))
        if not container.get("image"):
            causes.append(_required(f"{field}.image"))
    return causes


def validate_deployment(deployment: JsonObject, previous: JsonObject | None) -> None:
    """Raise a 422 `Invalid` naming every offending field, like the real server does."""
    meta = deployment.get("metadata") or {}
    name = str(meta.get("name", ""))
    spec = deployment.get("spec") or {}
    causes: list[JsonObject] = []
    if not name:
        causes.append(_required("metadata.name"))
    elif not _DNS_SUBDOMAIN.match(name) or len(name) > 253:
        causes.append(_cause("metadata.name", f'Invalid value: "{name}": must be a DNS-1123 subdomain'))
    if not _non_negative_int(spec.get("replicas")):
        causes.append(
            _cause("spec.replicas", f"Invalid value: {spec.get('replicas')!r}: must be greater than or equal to 0")
        )
    for field in ("revisionHistoryLimit", "progressDeadlineSeconds"):
        if not _non_negative_int(spec.get(field)):
            causes.append(
                _cause(f"spec.{field}", f"Invalid value: {spec.get(field)!r}: must be greater than or equal to 0")
            )
    if not isinstance(spec.get("paused", False), bool):
        causes.append(_cause("spec.paused", "must be a boolean"))
    causes.extend(_pod_template_causes(spec, previous))
    strategy_type = (spec.get("strategy") or {}).get("type")
    if strategy_type not in ("RollingUpdate", "Recreate"):
        causes.append(
            _cause(
                "spec.strategy.type",
                f'Unsupported value: "{strategy_type}": supported values: "Recreate", "RollingUpdate"',
                "FieldValueNotSupported",
            )
        )
    if causes:
        raise invalid(DEPLOYMENTS, name, causes)


def bad_body(message: str) -> KubeApiError:
    return KubeApiError(400, "BadRequest", message)


def default_workload_set(resource: ResourceType, obj: JsonObject) -> None:
    """The API server's defaults for a StatefulSet or DaemonSet spec."""
    drop_nulls(obj)
    spec: JsonObject = obj.setdefault("spec", {})
    strategy: JsonObject = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
    strategy.setdefault("type", "RollingUpdate")
    if resource is STATEFULSETS:
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        if strategy["type"] == "RollingUpdate":
            strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
        spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    elif strategy["type"] == "RollingUpdate":
        rolling: JsonObject = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    template: JsonObject = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    pod_spec = template.setdefault("spec", {})
    if isinstance(pod_spec, dict):
        default_pod_spec(pod_spec)


def validate_workload_set(resource: ResourceType, obj: JsonObject, previous: JsonObject | None) -> None:
    """A StatefulSet's or DaemonSet's name, replicas, selector (matching, immutable), containers, strategy."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    spec = obj.get("spec") or {}
    causes: list[JsonObject] = []
    if not name:
        causes.append(_required("metadata.name"))
    elif not _DNS_LABEL.match(name) or len(name) > 63:
        causes.append(_cause("metadata.name", f'Invalid value: "{name}": must be a DNS-1123 label'))
    if resource is STATEFULSETS and not _non_negative_int(spec.get("replicas")):
        causes.append(
            _cause("spec.replicas", f"Invalid value: {spec.get('replicas')!r}: must be greater than or equal to 0")
        )
    if not _non_negative_int(spec.get("revisionHistoryLimit")):
        causes.append(_cause("spec.revisionHistoryLimit", "must be greater than or equal to 0"))
    causes.extend(_pod_template_causes(spec, previous))
    strategy_type = (spec.get("updateStrategy") or {}).get("type")
    if strategy_type not in ("RollingUpdate", "OnDelete"):
        causes.append(
            _cause(
                "spec.updateStrategy.type",
                f'Unsupported value: "{strategy_type}": supported values: "OnDelete", "RollingUpdate"',
                "FieldValueNotSupported",
            )
        )
    if causes:
        raise invalid(resource, name, causes)
