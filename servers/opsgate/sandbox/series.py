"""A synthetic shop's metric series with daily seasonality, noise and a bad deploy (test and benchmark data).

The scenario worlds (`world.py`) generate their series from a scenario (`engine.py`); this older,
scenario-free generator remains as a compact, fast data set for the metrics tests and benchmarks: the
same series are backfilled into a real Prometheus, served by the Azure loopback and, through
`ShopSource`, by the sandbox's Prometheus-compatible API.

Every value is a pure function of (seed, series, time), so any window can be answered on demand,
the same window always gives the same numbers, and tests can write the very same series into a real
Prometheus. The bad deploy is read from a :class:`SandboxTimeline` that other parts of the sandbox
(the rollback side, the demo) may change at runtime: setting ``rollback_at`` ends the incident.

Metrics (namespace ``shop``, one series per service and pod, sampled every ``RESOLUTION_S``):

==========================  =======  ==============================================
``latency_p99_seconds``     gauge    99th percentile request latency
``error_ratio``             gauge    share of requests answered with a 5xx
``request_rate``            gauge    requests per second
``http_requests_total``     counter  requests served (its rate is ``request_rate``'s mean)
``cpu_usage_cores``         gauge    CPU in use
``memory_usage_bytes``      gauge    resident memory
==========================  =======  ==============================================
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

NAMESPACE = "shop"
SERVICES: tuple[str, ...] = ("checkout", "payments", "inventory", "frontend")
RESOLUTION_S = 60
DAY_S = 86_400.0
RAMP_S = 120.0  # a deploy's effect builds up (and a rollback's fades) over two scrapes


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str  # "gauge" or "counter"
    help: str
    unit: str


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("latency_p99_seconds", "gauge", "99th percentile request latency", "seconds"),
    MetricSpec("error_ratio", "gauge", "Share of requests answered with a 5xx", "ratio"),
    MetricSpec("request_rate", "gauge", "Requests per second", "requests/s"),
    MetricSpec("http_requests_total", "counter", "Requests served", "requests"),
    MetricSpec("cpu_usage_cores", "gauge", "CPU in use", "cores"),
    MetricSpec("memory_usage_bytes", "gauge", "Resident memory", "bytes"),
)
METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS)

# Per-service baselines (a service not listed gets the generic row).
_BASE: dict[str, dict[str, float]] = {
    "checkout": {"latency": 0.25, "errors": 0.004, "rate": 120.0, "cpu": 0.6, "memory": 512e6},
    "payments": {"latency": 0.18, "errors": 0.002, "rate": 80.0, "cpu": 0.4, "memory": 384e6},
    "inventory": {"latency": 0.08, "errors": 0.001, "rate": 200.0, "cpu": 0.8, "memory": 768e6},
    "frontend": {"latency": 0.35, "errors": 0.003, "rate": 400.0, "cpu": 1.2, "memory": 256e6},
}
_GENERIC = {"latency": 0.2, "errors": 0.002, "rate": 100.0, "cpu": 0.5, "memory": 512e6}

# What the bad deploy does to the deployed service while it is live.
LATENCY_FACTOR = 3.5
ERROR_RATIO_ADDED = 0.06
CPU_FACTOR = 1.3


@dataclass
class SandboxTimeline:
    """When the bad deploy went out and when (if ever) it was rolled back; safe to change at runtime."""

    deploy_at: float | None = None  # unix seconds
    rollback_at: float | None = None
    service: str = "checkout"
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def set(self, *, deploy_at: float | None = None, rollback_at: float | None = None) -> None:
        with self._lock:
            if deploy_at is not None:
                self.deploy_at = deploy_at
            if rollback_at is not None:
                self.rollback_at = rollback_at

    def roll_back(self, at: float | None = None) -> None:
        """Mark the bad deploy rolled back (now, unless `at` is given)."""
        self.set(rollback_at=time.time() if at is None else at)

    def incident_level(self, t: FloatArray) -> FloatArray:
        """0 before the deploy and after the rollback, 1 while the bad version serves (ramped)."""
        with self._lock:
            deploy, rollback = self.deploy_at, self.rollback_at
        if deploy is None:
            return np.zeros_like(t)
        on = np.clip((t - deploy) / RAMP_S, 0.0, 1.0)
        if rollback is None:
            return on
        off = np.clip(1.0 - (t - rollback) / RAMP_S, 0.0, 1.0)
        return np.minimum(on, off)


@dataclass(frozen=True)
class SeriesKey:
    metric: str
    labels: tuple[tuple[str, str], ...]  # sorted (name, value) pairs

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


def _splitmix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """A counter-based hash: deterministic noise for any (series, sample) without stored state."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _normal(seed: int, series_ids: NDArray[np.uint64], ticks: NDArray[np.int64]) -> FloatArray:
    """Standard normal noise of shape (series, ticks), a pure function of its arguments."""
    base = np.uint64(seed & 0xFFFFFFFF) << np.uint64(40)
    key = (series_ids[:, None] << np.uint64(44)) ^ base ^ ticks.astype(np.uint64)[None, :]
    a = _splitmix64(key)
    b = _splitmix64(a)
    scale = 1.0 / float(1 << 53)
    u1 = ((a >> np.uint64(11)).astype(np.float64) + 0.5) * scale
    u2 = (b >> np.uint64(11)).astype(np.float64) * scale
    out: FloatArray = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)
    return out


def _daily(t: FloatArray) -> FloatArray:
    """Daily shape in [-1, 1], busiest at 14:00 UTC and quietest at 02:00 UTC."""
    out: FloatArray = np.cos(2.0 * math.pi * (t - 14 * 3600.0) / DAY_S)
    return out


def _daily_integral(t: FloatArray) -> FloatArray:
    out: FloatArray = DAY_S / (2.0 * math.pi) * np.sin(2.0 * math.pi * (t - 14 * 3600.0) / DAY_S)
    return out


class SandboxSeries:
    """The sandbox's metric series, evaluated on demand for any timestamps."""

    def __init__(
        self,
        seed: int = 7,
        timeline: SandboxTimeline | None = None,
        services: Sequence[str] = SERVICES,
        pods_per_service: int = 1,
    ) -> None:
        if pods_per_service < 1:
            raise ValueError("pods_per_service must be at least 1")
        self.seed = seed
        self.timeline = timeline if timeline is not None else SandboxTimeline()
        self.services = tuple(services)
        self.pods_per_service = pods_per_service
        self.keys: list[SeriesKey] = [
            SeriesKey(m.name, (("namespace", NAMESPACE), ("pod", f"{svc}-{p}"), ("service", svc)))
            for m in METRICS
            for svc in self.services
            for p in range(pods_per_service)
        ]
        self._ids = {k: i for i, k in enumerate(self.keys)}

    def keys_of(self, metric: str) -> list[SeriesKey]:
        return [k for k in self.keys if k.metric == metric]

    def values(self, keys: Sequence[SeriesKey], timestamps: FloatArray) -> FloatArray:
        """Values of `keys` (shape (len(keys), len(timestamps))) as last scraped at or before each time."""
        t = np.asarray(timestamps, dtype=np.float64)
        ticks = np.floor(t / RESOLUTION_S).astype(np.int64)
        sample_t = ticks.astype(np.float64) * RESOLUTION_S
        out = np.empty((len(keys), t.size))
        by_metric: dict[str, list[int]] = {}
        for row, key in enumerate(keys):
            by_metric.setdefault(key.metric, []).append(row)
        daily = _daily(sample_t)
        for metric, rows in by_metric.items():
            ks = [keys[r] for r in rows]
            out[rows] = self._metric(metric, ks, sample_t, ticks, daily)
        return out

    def _metric(
        self, metric: str, keys: Sequence[SeriesKey], t: FloatArray, ticks: NDArray[np.int64], daily: FloatArray
    ) -> FloatArray:
        svcs = [k.label_dict["service"] for k in keys]
        base = {name: np.array([_BASE.get(s, _GENERIC)[name] for s in svcs])[:, None] for name in _GENERIC}
        ids = np.array([self._ids[k] for k in keys], dtype=np.uint64)
        noise = _normal(self.seed, ids, ticks)
        incident = self.timeline.incident_level(t)[None, :]
        hit = np.array([s == self.timeline.service for s in svcs])[:, None] * incident
        if metric == "latency_p99_seconds":
            v = base["latency"] * (1 + 0.25 * daily) * np.exp(0.06 * noise)
            return v * (1 + (LATENCY_FACTOR - 1) * hit)
        if metric == "error_ratio":
            v = base["errors"] * (1 + 0.2 * daily) * np.exp(0.25 * noise)
            return np.clip(v + ERROR_RATIO_ADDED * hit * (1 + 0.1 * noise), 0.0, 1.0)
        if metric == "request_rate":
            return base["rate"] * (1 + 0.5 * daily) * (1 + 0.03 * noise)
        if metric == "http_requests_total":
            # the closed-form integral of request_rate's mean, so its rate matches request_rate
            total: FloatArray = np.round(base["rate"] * (t + 0.5 * _daily_integral(t))[None, :])
            return total
        if metric == "cpu_usage_cores":
            v = base["cpu"] * (1 + 0.4 * daily) * (1 + 0.05 * noise)
            return v * (1 + (CPU_FACTOR - 1) * hit)
        if metric == "memory_usage_bytes":
            return base["memory"] * (1 + 0.02 * noise) + 0.0 * daily
        raise KeyError(f"no sandbox metric named {metric!r}")


def sample_times(start: float, end: float) -> FloatArray:
    """The scrape times in [start, end]."""
    first = math.ceil(start / RESOLUTION_S) * RESOLUTION_S
    out: FloatArray = np.arange(first, end + 1e-9, RESOLUTION_S, dtype=np.float64)
    return out


class ShopSource:
    """`SandboxSeries` as a `promapi.SeriesSource`: serve them with `PromApiServer(ShopSource(series))`."""

    def __init__(self, series: SandboxSeries) -> None:
        self._series = series

    def metric_names(self) -> tuple[str, ...]:
        return METRIC_NAMES

    def series(self, metric: str) -> list[dict[str, str]]:
        return [key.label_dict for key in self._series.keys_of(metric)]

    def values(self, metric: str, series: Sequence[dict[str, str]], times: FloatArray) -> FloatArray:
        wanted = {tuple(sorted(labels.items())) for labels in series}
        keys = [k for k in self._series.keys_of(metric) if k.labels in wanted]
        order = {k.labels: row for row, k in enumerate(keys)}
        values = self._series.values(keys, times) if keys else np.empty((0, times.size))
        out = np.full((len(series), times.size), np.nan)
        for row, labels in enumerate(series):
            found = order.get(tuple(sorted(labels.items())))
            if found is not None:
                out[row] = values[found]
        return out

    def alerts(self) -> list[dict[str, object]]:
        return []
