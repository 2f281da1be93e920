"""An in-process metrics backend over the synthetic shop series (`opsgate.sandbox.series`), for benchmarks.

Test and benchmark code only: the metrics capability knows no sandbox (the sandbox world is served to
it through a Prometheus-compatible API); benchmarks of the analysis use this backend so they time the
capability and the detector without HTTP in between."""

from __future__ import annotations

import difflib

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from opsgate.contracts import ToolError
from opsgate.metrics.aggregate import evaluate
from opsgate.metrics.backends.base import Series
from opsgate.metrics.selection import Selection
from opsgate.sandbox.series import METRIC_NAMES, RESOLUTION_S, SERVICES, SandboxSeries, SandboxTimeline


class SeriesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = 7
    services: list[str] = Field(default_factory=lambda: list(SERVICES), min_length=1)
    pods_per_service: int = Field(default=1, ge=1, le=1000)
    deploy_at: float | None = Field(
        default=None, description="Unix time of the bad deploy; default: 30 min before start"
    )
    rollback_at: float | None = Field(default=None, description="Unix time of the rollback; default: not rolled back")


class SeriesBackend:
    name = "sandbox"

    def __init__(self, config: SeriesSettings, series: SandboxSeries | None = None) -> None:
        if series is None:
            timeline = SandboxTimeline(deploy_at=config.deploy_at, rollback_at=config.rollback_at)
            series = SandboxSeries(config.seed, timeline, config.services, config.pods_per_service)
        self.series = series

    def describe(self, selection: Selection) -> str:
        return selection.promql()

    def _check(self, selection: Selection) -> str:
        if selection.raw_query is not None:
            raise ToolError("the sandbox backend has no query language: use the typed fields instead of raw_query")
        metric = selection.metric
        if metric is None or metric not in METRIC_NAMES:
            close = difflib.get_close_matches(metric or "", METRIC_NAMES, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known metrics: {', '.join(METRIC_NAMES)}"
            raise ToolError(f"no series named {metric!r}{hint}")
        return metric

    def _evaluate(self, selection: Selection, times: np.ndarray, step: float) -> list[Series]:
        metric = self._check(selection)
        keys = [k for k in self.series.keys_of(metric) if selection.matches(k.label_dict)]
        extra = 0
        if selection.aggregation == "rate":
            extra = max(1, round(selection.rate_window_s / step))
            times = np.concatenate((times[0] - step * np.arange(extra, 0, -1), times))
        values = self.series.values(keys, times)
        raw = [Series(k.label_dict, times, row, metric) for k, row in zip(keys, values, strict=True)]
        out = evaluate(selection, raw, step)
        for s in out:
            s.times, s.values = s.times[extra:], s.values[extra:]
        return out

    async def query_range(self, selection: Selection, start: float, end: float, step: float) -> list[Series]:
        times = start + step * np.arange(int((end - start) // step) + 1, dtype=np.float64)
        return self._evaluate(selection, times, step)

    async def query_instant(self, selection: Selection, at: float) -> list[Series]:
        return self._evaluate(selection, np.array([at], dtype=np.float64), float(RESOLUTION_S))

    async def aclose(self) -> None:
        return None
