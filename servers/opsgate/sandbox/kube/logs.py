"""Pod logs for the loopback Kubernetes API emulation.

Log lines come from two hooks, in this order: lines stored for a pod (`PodLogs.put`), then a provider
callable (`PodLogs.set_provider`) that gets a `PodRef` (namespace, pod, container, image, labels,
pod start) and returns the lines, e.g. error lines for pods of a bad image. `render_logs` applies the
query parameters of `GET .../pods/{name}/log` the way kubelet does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from opsgate.sandbox.kube.objects import format_time_nano


@dataclass(frozen=True)
class LogLine:
    time: datetime
    text: str


@dataclass(frozen=True)
class PodRef:
    """What a log provider knows about the pod whose logs are asked for."""

    namespace: str
    pod: str
    container: str
    image: str
    labels: Mapping[str, str]
    started: datetime


LogProvider = Callable[[PodRef], Iterable[LogLine]]


@dataclass(frozen=True)
class LogOptions:
    """The query of `GET /api/v1/namespaces/{ns}/pods/{name}/log`."""

    container: str | None = None
    since_time: datetime | None = None
    since_seconds: int | None = None
    tail_lines: int | None = None
    timestamps: bool = False
    limit_bytes: int | None = None


class PodLogs:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stored: dict[tuple[str, str, str | None], list[LogLine]] = {}
        self._provider: LogProvider | None = None

    def put(
        self, namespace: str, pod: str, lines: Iterable[LogLine | tuple[datetime, str]], container: str | None = None
    ) -> None:
        """Append lines for a pod (for one container, or for every container when `container` is None)."""
        converted = [line if isinstance(line, LogLine) else LogLine(line[0], line[1]) for line in lines]
        with self._lock:
            self._stored.setdefault((namespace, pod, container), []).extend(converted)

    def set_provider(self, provider: LogProvider | None) -> None:
        with self._lock:
            self._provider = provider

    def lines_for(self, ref: PodRef) -> list[LogLine]:
        with self._lock:
            stored = self._stored.get((ref.namespace, ref.pod, ref.container))
            if stored is None:
                stored = self._stored.get((ref.namespace, ref.pod, None))
            provider = self._provider
        if stored is not None:
            lines = list(stored)
        elif provider is not None:
            lines = list(provider(ref))
        else:
            lines = []
        return sorted(lines, key=lambda line: line.time)


def render_logs(lines: list[LogLine], options: LogOptions, now: datetime) -> str:
    """Filter by `sinceTime`/`sinceSeconds`, keep the last `tailLines`, prefix RFC3339Nano timestamps
    when asked, and cut at `limitBytes`."""
    since = options.since_time
    if options.since_seconds is not None:
        since = now - timedelta(seconds=options.since_seconds)
    selected = [line for line in lines if since is None or line.time >= since]
    if options.tail_lines is not None:
        selected = selected[-options.tail_lines :] if options.tail_lines > 0 else []
    rendered = "".join(
        f"{format_time_nano(line.time)} {line.text}\n" if options.timestamps else f"{line.text}\n" for line in selected
    )
    if options.limit_bytes is not None:
        rendered = rendered.encode()[: options.limit_bytes].decode(errors="ignore")
    return rendered
