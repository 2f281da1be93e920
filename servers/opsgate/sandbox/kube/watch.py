"""Watches (`GET ...?watch=true`): a stream of `{"type": ..., "object": ...}` lines, one per change.

Like the real API server: without a `resourceVersion` (or with "0") the stream starts with an ADDED
event for every object that matches; with one, it carries the changes after it, or a single ERROR
event with a 410 `Expired` Status when the change log no longer reaches back that far. Every object
carries its `kind` and `apiVersion` (client-go decodes each event by them), and the stream ends after
`timeoutSeconds` (default 30 minutes). With `Accept: ...as=Table...` each object is a one-row Table.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

from opsgate.sandbox.kube.cluster import KubeCluster
from opsgate.sandbox.kube.errors import KubeApiError, bad_request
from opsgate.sandbox.kube.objects import JsonObject, ResourceType
from opsgate.sandbox.kube.selectors import field_selector, label_selector
from opsgate.sandbox.kube.tables import table, wants_table

POLL_SECONDS = 0.02
DEFAULT_TIMEOUT_SECONDS = 1800


def _line(kind: str, obj: JsonObject) -> bytes:
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"


def watch_response(
    cluster: KubeCluster, resource: ResourceType, namespace: str | None, request: Request
) -> StreamingResponse:
    query = request.query_params
    by_labels = label_selector(query.get("labelSelector"))
    by_fields = field_selector(query.get("fieldSelector"))
    raw_version = query.get("resourceVersion") or ""
    try:
        start = int(raw_version) if raw_version not in ("", "0") else None
        timeout = float(query.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS)
    except ValueError as error:
        raise bad_request(f"invalid resourceVersion or timeoutSeconds: {error}") from error
    as_table = wants_table(request.headers.get("accept", ""))
    include_object = query.get("includeObject", "PartialObjectMetadata")

    def matches(obj: JsonObject, obj_namespace: str) -> bool:
        if namespace is not None and obj_namespace != namespace:
            return False
        return by_labels(obj) and by_fields(obj)

    def render(obj: JsonObject, first: bool) -> JsonObject:
        full = {**obj, "kind": resource.kind, "apiVersion": resource.api_version}
        if not as_table:
            return full
        return table(
            resource.kind,
            [full],
            cluster.now(),
            resource_version=str(obj["metadata"].get("resourceVersion", "")),
            include_object=include_object,
            columns=first,
        )

    async def stream() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        # the real server spreads watch timeouts a little so clients do not reconnect in lockstep
        deadline = loop.time() + timeout * (1.0 if timeout < 60 else random.uniform(0.9, 1.0))
        first = True
        if start is None:
            listed = cluster.list(resource, namespace)
            cursor = int(listed["metadata"]["resourceVersion"])
            for item in listed["items"]:
                if by_labels(item) and by_fields(item):
                    yield _line("ADDED", render(item, first))
                    first = False
        else:
            cursor = start
        while loop.time() < deadline:
            changes, latest = cluster.changes_after(resource, cursor)
            if changes is None:
                gone = KubeApiError(410, "Expired", f"too old resource version: {cursor} ({latest})").to_status()
                yield _line("ERROR", gone)
                return
            for change in changes:
                if matches(change.object, change.namespace):
                    yield _line(change.type, render(copy.deepcopy(change.object), first))
                    first = False
            cursor = max(cursor, latest)
            await asyncio.sleep(POLL_SECONDS)

    headers: dict[str, Any] = {"Cache-Control": "no-cache"}
    return StreamingResponse(stream(), media_type="application/json", headers=headers)
