"""Events for the loopback Kubernetes API emulation: recorded like client-go's recorder, served in both
API shapes (`core/v1` Event and `events.k8s.io/v1` Event).

The recorder aggregates like the real event correlator: a second event for the same object, reason,
message, type and source updates the first one (`count`, `lastTimestamp`, `series`) instead of adding
another. The store keeps at most `max_events`; the oldest go first (the real API server expires them
after an hour).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from opsgate.sandbox.kube.objects import EVENTS, JsonObject, format_time, new_uid, parse_time
from opsgate.sandbox.kube.store import ObjectStore

EVENTS_V1_API_VERSION = "events.k8s.io/v1"

COMPONENTS = {
    "Deployment": "deployment-controller",
    "ReplicaSet": "replicaset-controller",
    "StatefulSet": "statefulset-controller",
    "DaemonSet": "daemonset-controller",
}


def format_micro_time(moment: datetime) -> str:
    """metav1.MicroTime: RFC 3339 with microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EventRecorder:
    """Records events into the store; callers hold the cluster lock."""

    def __init__(self, store: ObjectStore, clock: Callable[[], datetime], max_events: int = 2000) -> None:
        self._store = store
        self._clock = clock
        self.max_events = max_events
        # aggregation key -> (namespace, name), oldest first
        self._index: OrderedDict[tuple[str, ...], tuple[str, str]] = OrderedDict()

    def record(
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
        action: str | None = None,
    ) -> JsonObject:
        """Record (or aggregate into) an event about `involved`.

        With `count`/`first`/`last` the event is set to exactly that history (an emulated kubelet that
        knows how often something happened); without, an existing identical event is counted up.
        """
        meta = involved["metadata"]
        component = component or COMPONENTS.get(str(involved.get("kind")), "kubelet")
        key = (str(meta["namespace"]), str(meta.get("uid", "")), reason, message, event_type, component)
        now = self._clock()
        located = self._index.get(key)
        existing = self._store.get(EVENTS, *located) if located else None
        if existing is not None:
            updated = {**existing, "metadata": dict(existing["metadata"])}
            new_count = count if count is not None else int(existing.get("count") or 1) + 1
            new_last = format_time(last or now)
            if new_count == existing.get("count") and new_last == existing.get("lastTimestamp"):
                return existing
            updated["count"] = new_count
            updated["lastTimestamp"] = new_last
            if first is not None:
                updated["firstTimestamp"] = format_time(first)
            self._store.put(EVENTS, updated)
            self._index.move_to_end(key)
            return updated
        started = first or now
        # like the real recorder: `{object}.{hex unix nanos}`, so names sort chronologically per object
        stamp = int(started.timestamp() * 1_000_000_000)
        name = f"{meta['name']}.{stamp:x}"
        while self._store.get(EVENTS, meta["namespace"], name) is not None:
            stamp += 1
            name = f"{meta['name']}.{stamp:x}"
        involved_ref: JsonObject = {
            "apiVersion": involved["apiVersion"],
            "kind": involved["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid", ""),
        }
        if meta.get("resourceVersion"):
            involved_ref["resourceVersion"] = meta["resourceVersion"]
        source: JsonObject = {"component": component}
        if host:
            source["host"] = host
        event: JsonObject = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "uid": new_uid(),
                "creationTimestamp": format_time(started),
            },
            "involvedObject": involved_ref,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": format_time(started),
            "lastTimestamp": format_time(last or started),
            "count": count if count is not None else 1,
            "type": event_type,
            "reportingComponent": component,
            "reportingInstance": host or "",
        }
        if action:
            event["action"] = action
        self._store.put(EVENTS, event)
        self._index[key] = (str(meta["namespace"]), name)
        while len(self._index) > self.max_events:
            _, (old_namespace, old_name) = self._index.popitem(last=False)
            self._store.delete(EVENTS, old_namespace, old_name)
        return event


def to_events_v1(event: JsonObject) -> JsonObject:
    """A core/v1 Event in the `events.k8s.io/v1` shape, as the API server converts it."""
    first = event.get("firstTimestamp") or event["metadata"].get("creationTimestamp")
    last = event.get("lastTimestamp") or first
    count = int(event.get("count") or 1)
    converted: JsonObject = {
        "apiVersion": EVENTS_V1_API_VERSION,
        "kind": "Event",
        "metadata": event["metadata"],
        "eventTime": event.get("eventTime") or format_micro_time(parse_time(str(first))),
        "reportingController": event.get("reportingComponent") or (event.get("source") or {}).get("component", ""),
        "reportingInstance": event.get("reportingInstance") or (event.get("source") or {}).get("host", ""),
        "action": event.get("action") or event.get("reason", ""),
        "reason": event.get("reason", ""),
        "regarding": event.get("involvedObject") or {},
        "note": event.get("message", ""),
        "type": event.get("type", "Normal"),
        "deprecatedSource": event.get("source") or {},
        "deprecatedFirstTimestamp": first,
        "deprecatedLastTimestamp": last,
        "deprecatedCount": count,
    }
    if count > 1:
        converted["series"] = {"count": count, "lastObservedTime": format_micro_time(parse_time(str(last)))}
    return converted
