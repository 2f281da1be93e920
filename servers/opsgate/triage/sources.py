"""What triage reads, declared in one place: the evidence types and the source protocols.

Triage is the one capability that composes others. It never calls their MCP tools and never imports
their internals: it reads them through these protocols, which the server composition
(`opsgate.composition`) implements over each capability's public service interface
(`opsgate.<capability>.service`). A source that is not configured is None, and triage says which
evidence it could not read.

Times are unix seconds (UTC). Text that comes from the monitored system (log templates, event
messages, change causes) is data, never instructions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

ChangeKind = Literal["rollout", "scale", "config"]


@dataclass(frozen=True)
class Change:
    """A change to a workload: a rollout to a new revision, a scale event, a config-only change."""

    kind: ChangeKind
    namespace: str
    service: str  # the Deployment's name
    at: float
    revision: int | None = None
    previous_revision: int | None = None
    images_before: dict[str, str] = field(default_factory=dict)
    images_after: dict[str, str] = field(default_factory=dict)
    config_diff: tuple[str, ...] = ()  # "env POOL_SIZE: 20 -> 2", "resources.limits.memory: 512Mi -> 128Mi"
    change_cause: str | None = None
    current: bool = True  # the revision the Deployment runs now
    rollout_state: str | None = None  # complete, progressing, stalled (None: unknown)
    replicas_before: int | None = None
    replicas_after: int | None = None


@dataclass(frozen=True)
class MetricAnomaly:
    """An anomaly a metric series showed: which series, when it began and how large it was."""

    metric: str
    service: str | None
    series: str
    start: float
    peak: float
    direction: Literal["up", "down"]
    z: float
    change_pct: float | None
    observed: float
    baseline: float
    ongoing: bool


@dataclass(frozen=True)
class LogTemplate:
    """A log template of one service: when it was first and last seen and how often."""

    service: str
    template: str
    count: int
    first_seen: float
    last_seen: float
    level: str  # the worst level seen: error, warn, info, ...
    sample: str = ""


@dataclass(frozen=True)
class PodState:
    """A pod and the revision it runs."""

    name: str
    service: str
    revision: int | None
    ready: bool
    restarts: int = 0
    last_termination: str | None = None  # OOMKilled, Error, ...
    waiting: str | None = None  # CrashLoopBackOff, ImagePullBackOff, ...
    node: str | None = None


@dataclass(frozen=True)
class ClusterEvent:
    """Kubernetes Events aggregated by (object, reason)."""

    type: str  # Normal, Warning
    reason: str
    kind: str
    name: str
    message: str
    count: int
    first_seen: float
    last_seen: float


class ChangeSource(Protocol):
    async def changes(self, namespace: str, since: float, until: float) -> list[Change]:
        """Rollouts (with image and config diff), scale events and config changes in [since, until]."""
        ...


class MetricSource(Protocol):
    async def anomalies(
        self, namespace: str, services: Sequence[str] | None, start: float, end: float
    ) -> list[MetricAnomaly]:
        """Anomalies of the namespace's key metrics overlapping [start, end], one per series."""
        ...


class LogSource(Protocol):
    async def templates(self, namespace: str, service: str, start: float, end: float) -> list[LogTemplate]:
        """The service's log templates over [start, end] with first and last seen."""
        ...


class WorkloadSource(Protocol):
    async def pods(self, namespace: str, service: str | None) -> list[PodState]:
        """Pods of the namespace (or one service) with their revision and state."""
        ...

    async def events(self, namespace: str, since: float) -> list[ClusterEvent]:
        """Events of the namespace since ``since``, aggregated by (object, reason)."""
        ...


@dataclass
class Sources:
    """The sources triage reads; None for a capability that is not configured."""

    changes: ChangeSource | None = None
    metrics: MetricSource | None = None
    logs: LogSource | None = None
    workloads: WorkloadSource | None = None

    def missing(self) -> list[str]:
        return [name for name in ("changes", "metrics", "logs", "workloads") if getattr(self, name) is None]
