"""Fault injection for the loopback Kubernetes API emulation.

Request faults make a matching request fail (403 RBAC forbidden, 409 conflict, any other code) or
answer late (past a client's timeout). Bad images make the pods of every revision that uses them
never become ready, so that revision's rollout stalls and ends with `ProgressDeadlineExceeded`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from opsgate.sandbox.kube.errors import KubeApiError, conflict, forbidden
from opsgate.sandbox.kube.objects import RESOURCE_TYPES, ResourceType

DEFAULT_USER = "system:serviceaccount:opsgate:opsgate"
BAD_IMAGE_REASONS = ("CrashLoopBackOff", "ImagePullBackOff")


@dataclass
class Fault:
    """One injected fault. `None` fields match anything.

    `verb` is the Kubernetes verb (`get`, `list`, `create`, `update`, `patch`); `resource` is the
    plural with an optional subresource (`deployments`, `deployments/status`, `pods/log`).
    `status` (403, 409, or any other HTTP code) makes the request fail; `delay_seconds` delays the
    answer (and with no `status` the request then succeeds). `times` limits how often it fires.
    """

    verb: str | None = None
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    status: int | None = None
    delay_seconds: float = 0.0
    times: int | None = None
    message: str | None = None
    fired: int = field(default=0, init=False)

    def matches(self, verb: str, resource: str, namespace: str, name: str) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        return all(
            expected is None or expected == actual
            for expected, actual in (
                (self.verb, verb),
                (self.resource, resource),
                (self.namespace, namespace),
                (self.name, name),
            )
        )

    def error(self, verb: str, resource: str, namespace: str, name: str) -> KubeApiError | None:
        if self.status is None:
            return None
        resource_type = _resource_type(resource)
        if self.status == 403:
            error = forbidden(resource_type, name, verb, namespace, DEFAULT_USER)
        elif self.status == 409:
            error = conflict(resource_type, name)
        else:
            error = KubeApiError(
                self.status,
                "InternalError" if self.status >= 500 else "BadRequest",
                self.message or f"injected fault: HTTP {self.status}",
            )
        if self.message:
            error.message = self.message
        return error


def _resource_type(resource: str) -> ResourceType:
    plural = resource.split("/", 1)[0]
    for resource_type in RESOURCE_TYPES:
        if resource_type.plural == plural:
            return resource_type
    return ResourceType(plural, plural, "", "v1")


class FaultRules:
    """The server's fault configuration; safe to change while the server runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._bad_images: dict[str, str] = {}

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def forbid(
        self,
        verb: str | None = None,
        resource: str | None = None,
        *,
        namespace: str | None = None,
        name: str | None = None,
        times: int | None = None,
    ) -> Fault:
        """RBAC denial: the matching requests get 403 `Forbidden`."""
        return self.add(Fault(verb, resource, namespace, name, status=403, times=times))

    def conflict(
        self,
        verb: str | None = None,
        resource: str | None = None,
        *,
        namespace: str | None = None,
        name: str | None = None,
        times: int | None = 1,
    ) -> Fault:
        """The matching requests get 409 `Conflict` (by default once, like a lost optimistic update)."""
        return self.add(Fault(verb, resource, namespace, name, status=409, times=times))

    def delay(
        self,
        seconds: float,
        verb: str | None = None,
        resource: str | None = None,
        *,
        namespace: str | None = None,
        name: str | None = None,
        times: int | None = None,
    ) -> Fault:
        """The matching requests are answered only after `seconds` (to trip client timeouts)."""
        return self.add(Fault(verb, resource, namespace, name, delay_seconds=seconds, times=times))

    def remove(self, fault: Fault) -> None:
        with self._lock:
            self._faults = [existing for existing in self._faults if existing is not fault]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._bad_images.clear()

    def take(self, verb: str, resource: str, namespace: str, name: str) -> list[Fault]:
        """The faults that fire for this request (each counted once)."""
        with self._lock:
            fired = [fault for fault in self._faults if fault.matches(verb, resource, namespace, name)]
            for fault in fired:
                fault.fired += 1
            return fired

    def mark_image_bad(self, image: str, reason: str = "CrashLoopBackOff") -> None:
        """Pods running `image` never become ready (`CrashLoopBackOff` or `ImagePullBackOff`)."""
        if reason not in BAD_IMAGE_REASONS:
            raise ValueError(f"bad image reason must be one of {BAD_IMAGE_REASONS}, not {reason!r}")
        with self._lock:
            self._bad_images[image] = reason

    def mark_image_good(self, image: str) -> None:
        with self._lock:
            self._bad_images.pop(image, None)

    def bad_image_reason(self, image: str) -> str | None:
        with self._lock:
            return self._bad_images.get(image)
