"""Object helpers for the loopback Kubernetes API emulation: resource types, times, names, hashes.

Nothing here talks to a real cluster; these helpers build the JSON shapes the real API server
serves, so the official `kubernetes` client can deserialize them unchanged.
"""

from __future__ import annotations

import copy
import json
import random
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

JsonObject = dict[str, Any]

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"
POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
NEVER_READY_ANNOTATION = "sandbox.opsgate.dev/never-ready"
"""Pod-template annotation that makes the emulated pods of that revision never become ready."""


@dataclass(frozen=True)
class ResourceType:
    """One REST resource: `deployments` in `apps/v1`, `pods` in core `v1`, ..."""

    plural: str
    kind: str
    group: str
    version: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """The name the real API server uses in messages: `deployments.apps`, `pods`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


DEPLOYMENTS = ResourceType("deployments", "Deployment", "apps", "v1")
REPLICASETS = ResourceType("replicasets", "ReplicaSet", "apps", "v1")
PODS = ResourceType("pods", "Pod", "", "v1")
EVENTS = ResourceType("events", "Event", "", "v1")
EVENTS_V1 = ResourceType("events", "Event", "events.k8s.io", "v1")
"""The same events as `EVENTS`, in the `events.k8s.io/v1` shape (one store bucket, two views)."""
STATEFULSETS = ResourceType("statefulsets", "StatefulSet", "apps", "v1")
DAEMONSETS = ResourceType("daemonsets", "DaemonSet", "apps", "v1")
CONTROLLERREVISIONS = ResourceType("controllerrevisions", "ControllerRevision", "apps", "v1")
NAMESPACES = ResourceType("namespaces", "Namespace", "", "v1", namespaced=False)
RESOURCE_TYPES = (DEPLOYMENTS, REPLICASETS, PODS, EVENTS, STATEFULSETS, DAEMONSETS, CONTROLLERREVISIONS, NAMESPACES)


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 with second precision, as in `metadata.creationTimestamp`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_time_nano(moment: datetime) -> str:
    """Go's RFC3339Nano (trailing zeros of the fraction trimmed), as kubelet prefixes log lines."""
    moment = moment.astimezone(UTC)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{moment.microsecond:06d}000".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (`Z` or offset, optional fraction up to nanoseconds)."""
    value = text.strip().replace("z", "Z")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    if fraction := re.search(r"\.(\d+)", value):
        value = value[: fraction.start()] + "." + fraction.group(1)[:6].ljust(6, "0") + value[fraction.end() :]
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return moment.astimezone(UTC)


def new_uid() -> str:
    return str(uuid.uuid4())


_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""k8s.io/apimachinery/pkg/util/rand: no vowels, no confusable digits."""


def random_suffix(length: int = 5, rng: random.Random | None = None) -> str:
    chooser = rng or random
    return "".join(chooser.choice(_SAFE_ALPHABET) for _ in range(length))


def safe_encode(text: str) -> str:
    """rand.SafeEncodeString: map every byte onto the safe alphabet."""
    return "".join(_SAFE_ALPHABET[byte % len(_SAFE_ALPHABET)] for byte in text.encode())


def _fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def template_without_hash(template: JsonObject) -> JsonObject:
    stripped = copy.deepcopy(template)
    labels = stripped.get("metadata", {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    return stripped


def pod_template_hash(template: JsonObject, collision_count: int | None = None) -> str:
    """ComputeHash in spirit: FNV-32a over the template (sans hash label), safe-encoded decimal."""
    canonical = json.dumps(template_without_hash(template), sort_keys=True, separators=(",", ":"))
    if collision_count:
        canonical += str(collision_count)
    return safe_encode(str(_fnv32a(canonical.encode())))


def templates_equal_ignoring_hash(left: JsonObject, right: JsonObject) -> bool:
    return template_without_hash(left) == template_without_hash(right)


def object_ref(obj: JsonObject) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def annotations_of(obj: JsonObject) -> dict[str, str]:
    """The object's annotations dict, created in place when missing."""
    meta: JsonObject = obj.setdefault("metadata", {})
    annotations: dict[str, str] = meta.setdefault("annotations", {})
    return annotations


def revision_of(obj: JsonObject) -> int:
    text = obj.get("metadata", {}).get("annotations", {}).get(REVISION_ANNOTATION, "0")
    try:
        return int(text)
    except ValueError:
        return 0


def owner_reference(owner: JsonObject, kind: str, api_version: str) -> JsonObject:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_owned_by(obj: JsonObject, owner: JsonObject) -> bool:
    owner_uid = owner["metadata"]["uid"]
    refs = obj.get("metadata", {}).get("ownerReferences", [])
    return any(ref.get("uid") == owner_uid and ref.get("controller") for ref in refs)


def pod_ready(pod: JsonObject) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_from_template(
    owner: JsonObject,
    resource: ResourceType,
    name: str,
    node: str,
    created: datetime,
    labels: dict[str, str] | None = None,
) -> JsonObject:
    """A new pod of `owner` (a ReplicaSet, StatefulSet or DaemonSet) from its pod template, with the fields
    the API server defaults, before the kubelet admits it."""
    meta, template = owner["metadata"], owner["spec"]["template"]
    spec = copy.deepcopy(template["spec"])
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec["nodeName"] = node
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    metadata: JsonObject = {
        "name": name,
        "generateName": f"{meta['name']}-",
        "namespace": meta["namespace"],
        "uid": new_uid(),
        "creationTimestamp": format_time(created),
        "labels": {**copy.deepcopy(template["metadata"].get("labels") or {}), **(labels or {})},
        "ownerReferences": [owner_reference(owner, resource.kind, resource.api_version)],
    }
    if template["metadata"].get("annotations"):
        metadata["annotations"] = copy.deepcopy(template["metadata"]["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
