"""In-memory object store with a cluster-wide `resourceVersion` counter (the emulation's etcd).

Every write is also appended to a bounded change log, which serves watches (`?watch=true`): the
changes after a resourceVersion, as ADDED / MODIFIED / DELETED. Stored objects are never mutated in
place after `put`, so the log can hold them by reference.

Not thread-safe on its own: `KubeCluster` serializes every access with one lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from opsgate.sandbox.kube.objects import JsonObject, ResourceType

CHANGE_LOG_SIZE = 20_000


@dataclass(frozen=True)
class Change:
    revision: int
    type: str  # ADDED, MODIFIED, DELETED
    resource: str  # plural
    namespace: str
    object: JsonObject


class ObjectStore:
    def __init__(self) -> None:
        self._objects: dict[str, dict[tuple[str, str], JsonObject]] = {}
        self._revision = 1000
        self._changes: list[Change] = []  # one per revision, contiguous

    @property
    def resource_version(self) -> str:
        return str(self._revision)

    @property
    def revision(self) -> int:
        return self._revision

    def get(self, resource: ResourceType, namespace: str, name: str) -> JsonObject | None:
        return self._objects.get(resource.plural, {}).get((namespace, name))

    def iterate(self, resource: ResourceType, namespace: str | None = None) -> Iterator[JsonObject]:
        """Objects of one resource, in (namespace, name) order; `namespace=None` means all."""
        bucket = self._objects.get(resource.plural, {})
        for key in sorted(bucket):
            if namespace is None or key[0] == namespace:
                yield bucket[key]

    def put(self, resource: ResourceType, obj: JsonObject) -> JsonObject:
        """Store `obj` (taking ownership) under a new resourceVersion."""
        self._revision += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self._revision)
        namespace = str(meta.get("namespace", "")) if resource.namespaced else ""
        bucket = self._objects.setdefault(resource.plural, {})
        key = (namespace, str(meta["name"]))
        kind = "MODIFIED" if key in bucket else "ADDED"
        bucket[key] = obj
        self._log(Change(self._revision, kind, resource.plural, namespace, obj))
        return obj

    def delete(self, resource: ResourceType, namespace: str, name: str) -> JsonObject | None:
        removed = self._objects.get(resource.plural, {}).pop((namespace, name), None)
        if removed is not None:
            self._revision += 1
            gone = {**removed, "metadata": {**removed["metadata"], "resourceVersion": str(self._revision)}}
            self._log(Change(self._revision, "DELETED", resource.plural, namespace, gone))
        return removed

    def _log(self, change: Change) -> None:
        self._changes.append(change)
        if len(self._changes) > 2 * CHANGE_LOG_SIZE:
            del self._changes[:CHANGE_LOG_SIZE]

    def changes_after(self, revision: int, resource: ResourceType) -> list[Change] | None:
        """The changes to `resource` after `revision`, oldest first; None when the log no longer reaches
        back that far (the watch must answer 410 Gone)."""
        if not self._changes:
            return []
        first = self._changes[0].revision
        if revision < first - 1:
            return None
        return [c for c in self._changes[max(revision - first + 1, 0) :] if c.resource == resource.plural]
