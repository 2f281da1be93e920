"""In-memory object store with a cluster-wide `resourceVersion` counter (the emulation's etcd).

Not thread-safe on its own: `KubeCluster` serializes every access with one lock.
"""

from __future__ import annotations

from collections.abc import Iterator

from opsgate.sandbox.kube.objects import JsonObject, ResourceType


class ObjectStore:
    def __init__(self) -> None:
        self._objects: dict[str, dict[tuple[str, str], JsonObject]] = {}
        self._revision = 1000

    @property
    def resource_version(self) -> str:
        return str(self._revision)

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
        self._objects.setdefault(resource.plural, {})[(namespace, str(meta["name"]))] = obj
        return obj

    def delete(self, resource: ResourceType, namespace: str, name: str) -> JsonObject | None:
        removed = self._objects.get(resource.plural, {}).pop((namespace, name), None)
        if removed is not None:
            self._revision += 1
        return removed
