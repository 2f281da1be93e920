"""Errors of the loopback Kubernetes API emulation, rendered as the real `metav1.Status` body."""

from __future__ import annotations

from typing import Any

from opsgate.sandbox.kube.objects import JsonObject, ResourceType


class KubeApiError(Exception):
    """An API error with the HTTP code, the `Status.reason` and the message the real server uses."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JsonObject | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def to_status(self) -> JsonObject:
        status: JsonObject = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            status["details"] = self.details
        return status


def _details(resource: ResourceType, name: str, **extra: Any) -> JsonObject:
    details: JsonObject = {"name": name, "kind": resource.plural}
    if resource.group:
        details["group"] = resource.group
    details.update(extra)
    return details


def not_found(resource: ResourceType, name: str) -> KubeApiError:
    return KubeApiError(404, "NotFound", f'{resource.qualified} "{name}" not found', _details(resource, name))


def already_exists(resource: ResourceType, name: str) -> KubeApiError:
    return KubeApiError(409, "AlreadyExists", f'{resource.qualified} "{name}" already exists', _details(resource, name))


def conflict(resource: ResourceType, name: str) -> KubeApiError:
    return KubeApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource.qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        _details(resource, name),
    )


def forbidden(resource: ResourceType, name: str, verb: str, namespace: str, user: str) -> KubeApiError:
    subject = f'{resource.qualified} "{name}"' if name else resource.qualified
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    return KubeApiError(
        403,
        "Forbidden",
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource.plural}" '
        f'in API group "{resource.group}"{where}',
        _details(resource, name),
    )


def invalid(resource: ResourceType, name: str, causes: list[JsonObject]) -> KubeApiError:
    """422 with one cause per field: `{"reason": "FieldValueRequired", "message": ..., "field": ...}`."""
    summary = ", ".join(f"{cause['field']}: {cause['message']}" for cause in causes)
    plural_free = resource.kind if not resource.group else f"{resource.kind}.{resource.group}"
    return KubeApiError(
        422,
        "Invalid",
        f'{plural_free} "{name}" is invalid: {summary}',
        {"name": name, "group": resource.group, "kind": resource.kind, "causes": causes}
        if resource.group
        else {"name": name, "kind": resource.kind, "causes": causes},
    )


def bad_request(message: str) -> KubeApiError:
    return KubeApiError(400, "BadRequest", message)


def unsupported_media_type(content_type: str) -> KubeApiError:
    return KubeApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format: "
        f"accepted media types include: application/json-patch+json, "
        f"application/merge-patch+json, application/strategic-merge-patch+json "
        f"(got {content_type!r})",
    )


def path_not_found() -> KubeApiError:
    return KubeApiError(404, "NotFound", "the server could not find the requested resource", {})


def method_not_allowed(method: str) -> KubeApiError:
    return KubeApiError(
        405, "MethodNotAllowed", f"the server does not allow this method ({method}) on the requested resource", {}
    )
