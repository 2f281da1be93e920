"""Pure rollout logic with `kubectl rollout undo` / `rollout status` semantics, on plain API JSON.

- Revisions are the ReplicaSets the Deployment controls (controller ownerReference to its uid),
  numbered by their `deployment.kubernetes.io/revision` annotation.
- The default target is the previous revision (the highest one below the newest).
- A paused Deployment is refused; a target whose template already matches is a no-op.
- The patch is the one kubectl sends: replace `/spec/template` with the ReplicaSet's template minus
  the `pod-template-hash` label and `/metadata/annotations` with the ReplicaSet's annotations (except
  the controller's bookkeeping ones); it also carries the `resourceVersion` that was read, so a
  Deployment changed in between answers 409 instead of being overwritten.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from opsgate.contracts import ToolError

JsonObject = dict[str, Any]

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"
POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
# Deployment annotations kubectl keeps from the Deployment instead of copying from the ReplicaSet.
ANNOTATIONS_TO_SKIP = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION_ANNOTATION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)
TIMED_OUT_REASON = "ProgressDeadlineExceeded"

RolloutState = Literal["complete", "progressing", "failed", "paused"]


class RollbackRefused(ToolError):
    """The rollback cannot be done as asked (paused, no history, unknown revision)."""


@dataclass(frozen=True)
class Revision:
    number: int
    replica_set: str
    template: JsonObject
    annotations: dict[str, str]
    created: str | None
    replicas: int
    ready_replicas: int

    @property
    def change_cause(self) -> str | None:
        return self.annotations.get(CHANGE_CAUSE_ANNOTATION)


def revision_of(obj: JsonObject) -> int | None:
    value = (obj.get("metadata", {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def without_hash(template: JsonObject) -> JsonObject:
    """The pod template with the controller's `pod-template-hash` label removed."""
    clean = copy.deepcopy(template)
    labels = (clean.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    return clean


def owned_revisions(deployment: JsonObject, replica_sets: list[JsonObject]) -> list[Revision]:
    """The Deployment's revisions, oldest first, from the ReplicaSets it controls."""
    uid = deployment["metadata"].get("uid")
    revisions: list[Revision] = []
    for rs in replica_sets:
        meta = rs.get("metadata", {})
        owners = meta.get("ownerReferences") or []
        if not any(o.get("controller") and o.get("uid") == uid for o in owners):
            continue
        number = revision_of(rs)
        if number is None:
            continue
        status = rs.get("status") or {}
        revisions.append(
            Revision(
                number=number,
                replica_set=str(meta.get("name", "")),
                template=without_hash(rs.get("spec", {}).get("template") or {}),
                annotations=dict(meta.get("annotations") or {}),
                created=meta.get("creationTimestamp"),
                replicas=int(status.get("replicas") or 0),
                ready_replicas=int(status.get("readyReplicas") or 0),
            )
        )
    return sorted(revisions, key=lambda r: r.number)


def choose_target(name: str, revisions: list[Revision], to_revision: int | None) -> Revision:
    if to_revision is None:
        if len(revisions) < 2:
            raise RollbackRefused(f"no rollout history found for deployment {name!r}: there is no previous revision")
        return revisions[-2]
    for revision in revisions:
        if revision.number == to_revision:
            return revision
    known = ", ".join(str(r.number) for r in revisions) or "none"
    raise RollbackRefused(f"revision {to_revision} of deployment {name!r} is not in its history (revisions: {known})")


# -- the pod template diff ------------------------------------------------------------------------


@dataclass
class TemplateDiff:
    images_before: dict[str, str] = field(default_factory=dict)
    images_after: dict[str, str] = field(default_factory=dict)
    image_changes: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    env_changes: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    other_changes: list[str] = field(default_factory=list)


def _containers(template: JsonObject) -> dict[str, JsonObject]:
    spec = template.get("spec") or {}
    found: dict[str, JsonObject] = {}
    for key, prefix in (("initContainers", "init:"), ("containers", "")):
        for container in spec.get(key) or []:
            found[prefix + str(container.get("name"))] = container
    return found


def images(template: JsonObject) -> dict[str, str]:
    return {name: str(c.get("image", "")) for name, c in _containers(template).items()}


def _env(container: JsonObject) -> dict[str, str]:
    values: dict[str, str] = {}
    for entry in container.get("env") or []:
        if "value" in entry:
            values[str(entry["name"])] = str(entry.get("value") or "")
        elif entry.get("valueFrom") is not None:
            values[str(entry["name"])] = "valueFrom:" + json.dumps(entry["valueFrom"], sort_keys=True)
        else:
            values[str(entry["name"])] = ""
    return values


def template_diff(before: JsonObject, after: JsonObject) -> TemplateDiff:
    before, after = without_hash(before), without_hash(after)
    diff = TemplateDiff(images_before=images(before), images_after=images(after))
    old, new = _containers(before), _containers(after)
    for name in sorted(set(old) | set(new)):
        old_image, new_image = diff.images_before.get(name), diff.images_after.get(name)
        if old_image != new_image:
            diff.image_changes.append((name, old_image, new_image))
        old_env = _env(old.get(name, {}))
        new_env = _env(new.get(name, {}))
        for var in sorted(set(old_env) | set(new_env)):
            if old_env.get(var) != new_env.get(var):
                diff.env_changes.append((name, var, old_env.get(var), new_env.get(var)))
        if name in old and name in new:
            for key in sorted(set(old[name]) | set(new[name]) - {"image", "env", "name"}):
                if key not in ("image", "env", "name") and old[name].get(key) != new[name].get(key):
                    diff.other_changes.append(f"container {name}: {key}")
        elif name in old or name in new:
            diff.other_changes.append(f"container {name}: {'removed' if name in old else 'added'}")
    old_spec = {k: v for k, v in (before.get("spec") or {}).items() if k not in ("containers", "initContainers")}
    new_spec = {k: v for k, v in (after.get("spec") or {}).items() if k not in ("containers", "initContainers")}
    for key in sorted(set(old_spec) | set(new_spec)):
        if old_spec.get(key) != new_spec.get(key):
            diff.other_changes.append(f"pod spec: {key}")
    if (before.get("metadata") or {}) != (after.get("metadata") or {}):
        diff.other_changes.append("pod template metadata (labels/annotations)")
    return diff


# -- the plan --------------------------------------------------------------------------------------


@dataclass
class RollbackPlan:
    namespace: str
    deployment: str
    from_revision: int | None
    target: Revision
    noop: bool
    diff: TemplateDiff
    patch: list[JsonObject]
    resource_version: str
    uid: str = ""
    template_before: str = ""
    template_after: str = ""

    def facts(self) -> dict[str, Any]:
        """What the policy sees before deciding, and what an approval binds to (the plan the human saw).

        The pod templates (before and after, as digests) cover every image and configuration change;
        the uid catches a Deployment deleted and recreated under the same name. The resourceVersion
        is deliberately not part of it: it moves on every status write (a pod becoming ready), which
        would void approvals during the very incident they are for; the patch still carries it, so a
        Deployment changed between this plan and the write answers 409.
        """
        return {
            "from_revision": self.from_revision,
            "to_revision": self.target.number,
            "deployment_uid": self.uid,
            "template_before": self.template_before,
            "template_after": self.template_after,
            "noop": self.noop,
            "images_before": sorted(self.diff.images_before.values()),
            "images_after": sorted(self.diff.images_after.values()),
            "image_changes": [{"container": c, "before": b, "after": a} for c, b, a in self.diff.image_changes],
            "env_changes": len(self.diff.env_changes),
        }


def plan_rollback(deployment: JsonObject, replica_sets: list[JsonObject], to_revision: int | None) -> RollbackPlan:
    meta = deployment["metadata"]
    name = str(meta["name"])
    spec = deployment.get("spec") or {}
    if spec.get("paused"):
        raise RollbackRefused(
            f"deployment {name!r} is paused; it cannot be rolled back until a human resumes it "
            "(`kubectl rollout resume`)"
        )
    revisions = owned_revisions(deployment, replica_sets)
    target = choose_target(name, revisions, to_revision)
    current_template = without_hash(spec.get("template") or {})
    noop = current_template == target.template
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k in ANNOTATIONS_TO_SKIP}
    annotations.update({k: v for k, v in target.annotations.items() if k not in ANNOTATIONS_TO_SKIP})
    patch: list[JsonObject] = [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": str(meta.get("resourceVersion", ""))},
        {"op": "replace", "path": "/spec/template", "value": target.template},
        {
            "op": "replace" if meta.get("annotations") is not None else "add",
            "path": "/metadata/annotations",
            "value": annotations,
        },
    ]
    return RollbackPlan(
        namespace=str(meta.get("namespace", "")),
        deployment=name,
        from_revision=revision_of(deployment),
        target=target,
        noop=noop,
        diff=template_diff(current_template, target.template),
        patch=patch,
        resource_version=str(meta.get("resourceVersion", "")),
        uid=str(meta.get("uid", "")),
        template_before=_template_digest(current_template),
        template_after=_template_digest(target.template),
    )


def _template_digest(template: JsonObject) -> str:
    body = json.dumps(template, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


# -- rollout status (kubectl rollout status) -------------------------------------------------------


@dataclass(frozen=True)
class Status:
    state: RolloutState
    message: str


def rollout_state(deployment: JsonObject) -> Status:
    meta = deployment["metadata"]
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    name = meta.get("name")
    if int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return Status("progressing", "waiting for the deployment spec update to be observed")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == TIMED_OUT_REASON:
            return Status(
                "failed", f"deployment {name!r} exceeded its progress deadline: {condition.get('message', '')}"
            )
    if spec.get("paused"):
        return Status("paused", f"deployment {name!r} is paused")
    desired = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    updated = int(status.get("updatedReplicas") or 0)
    replicas = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < desired:
        return Status("progressing", f"{updated} out of {desired} new replicas have been updated")
    if replicas > updated:
        return Status("progressing", f"{replicas - updated} old replicas are pending termination")
    if available < updated:
        return Status("progressing", f"{available} of {updated} updated replicas are available")
    return Status("complete", f"deployment {name!r} successfully rolled out")
