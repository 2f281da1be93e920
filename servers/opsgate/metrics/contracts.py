"""Metrics contracts: typed query, ranked anomalies, and before/after comparison."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from opsgate.contracts import Page, ToolInput, ToolOutput
from opsgate.metrics.selection import LABEL_NAME, METRIC_NAME, Aggregation, parse_matcher
from opsgate.metrics.timewindow import DURATION_PATTERN, parse_duration

NAME = r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$"
# The longest window, `since`, baseline or span a metrics call may name: past it a typo (`99999999d`, year
# 1 to 9999) is refused with a clear error instead of overflowing the calendar or scanning centuries.
MAX_WINDOW_DAYS = 400
MAX_WINDOW_S = MAX_WINDOW_DAYS * 86_400.0


def _unix_seconds(value: Any) -> Any:
    """An instant is RFC 3339 text or unix seconds (a JSON number), as the schema says; never a boolean."""
    if isinstance(value, bool):
        raise ValueError("expected an RFC 3339 time or unix seconds, not a boolean")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{value!r} unix seconds is out of range") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value[:40]!r} is not an RFC 3339 time (e.g. 2026-11-23T05:00:00Z)") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


# RFC 3339 text or unix seconds: the declared schema and what validation accepts are the same thing.
Instant = Annotated[
    datetime,
    BeforeValidator(_unix_seconds),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]}),
]


def _bounded_duration(value: str | None) -> str | None:
    if value is not None and parse_duration(value) > MAX_WINDOW_S:
        raise ValueError(f"{value!r} is longer than the {MAX_WINDOW_DAYS}-day maximum")
    return value


class SeriesInput(ToolInput):
    """Which series: a metric with label filters and an optional aggregation, or a raw backend query."""

    metric: str | None = Field(default=None, pattern=METRIC_NAME, description="Metric name, e.g. latency_p99_seconds")
    namespace: str | None = Field(default=None, pattern=NAME, description="Only series with this namespace label")
    service: str | None = Field(default=None, pattern=NAME, description="Only series with this service label")
    match: list[str] = Field(
        default_factory=list, max_length=10, description='More label matchers: pod=~"checkout-.*", code!="200"'
    )
    aggregation: Aggregation = Field(
        default="none", description="Combine series (rate: per-second increase of a counter, summed by `by`)"
    )
    by: list[str] = Field(default_factory=list, max_length=10, description="Labels to keep when aggregating")
    quantile: float | None = Field(default=None, ge=0, le=1, description="For aggregation=quantile, e.g. 0.99")
    rate_window: str = Field(default="5m", pattern=DURATION_PATTERN, description="Range of a rate, e.g. 5m")
    raw_query: str | None = Field(
        default=None, max_length=2000, description="Backend-native query (PromQL); only some roles may use it"
    )

    @field_validator("rate_window")
    @classmethod
    def _rate_window(cls, value: str) -> str | None:
        return _bounded_duration(value)

    @field_validator("match")
    @classmethod
    def _matchers_parse(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_matcher(text)
        return value

    @field_validator("by")
    @classmethod
    def _label_names(cls, value: list[str]) -> list[str]:
        import re

        for name in value:
            if not re.fullmatch(LABEL_NAME, name):
                raise ValueError(f"{name!r} is not a label name")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.raw_query is not None and (self.metric is not None or self.match or self.aggregation != "none"):
            raise ValueError("give either raw_query or the typed fields (metric, match, aggregation), not both")
        if self.aggregation == "quantile" and self.quantile is None:
            raise ValueError("aggregation=quantile needs `quantile` (e.g. 0.99)")
        if self.aggregation != "quantile" and self.quantile is not None:
            raise ValueError("`quantile` is only used with aggregation=quantile")
        if self.by and self.aggregation == "none":
            raise ValueError("`by` needs an aggregation (sum, avg, max, min, count, rate or quantile)")
        return self


class WindowInput(SeriesInput):
    start: Instant | None = Field(default=None, description="Window start (RFC 3339 or unix seconds)")
    end: Instant | None = Field(default=None, description="Window end; default now")
    since: str | None = Field(default=None, pattern=DURATION_PATTERN, description="Window = the last SINCE, e.g. 1h")

    @field_validator("since")
    @classmethod
    def _since(cls, value: str | None) -> str | None:
        return _bounded_duration(value)

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.since is not None and self.start is not None:
            raise ValueError("give either `since` or `start`, not both")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end.isoformat()}) must be after start ({self.start.isoformat()})")
        if self.start is not None:
            end = self.end.timestamp() if self.end is not None else time.time()
            if end - self.start.timestamp() > MAX_WINDOW_S:
                raise ValueError(
                    f"the window from {self.start.isoformat()} is longer than the {MAX_WINDOW_DAYS}-day maximum; "
                    "narrow it"
                )
        return self


class QueryInput(WindowInput):
    instant: bool = Field(default=False, description="One value per series at `end` (default now) instead of a range")
    step: str | None = Field(default=None, pattern=DURATION_PATTERN, description="Resolution of a range; default auto")
    points: int | None = Field(default=None, ge=2, le=2000, description="Point budget per series (default 40)")
    limit: int = Field(default=10, ge=1, le=200, description="Most series to return")

    @field_validator("step")
    @classmethod
    def _step_bound(cls, value: str | None) -> str | None:
        return _bounded_duration(value)

    @model_validator(mode="after")
    def _step(self) -> Self:
        if self.step is not None and parse_duration(self.step) <= 0:
            raise ValueError("step must be positive")
        return self


class SeriesResult(ToolOutput):
    labels: dict[str, str]
    t: list[int] = Field(description="Seconds since `start` of each point (empty for instant queries)")
    v: list[float | None] = Field(description="Values at `t` (null = no sample)")
    last: float | None = Field(description="Latest value (the value, for instant queries)")
    min: float | None
    max: float | None
    raw_points: int = Field(description="Points the backend returned before downsampling")


class QueryOutput(Page[SeriesResult]):
    query: str = Field(description="The query as the backend ran it")
    kind: Literal["instant", "range"]
    start: str
    end: str
    step_s: float | None
    points_budget: int | None = Field(description="Most points per series returned")
    downsampling: str = Field(description="What was done to fit the point budget")
    note: str | None = None


class AnomaliesInput(WindowInput):
    metric: str | None = Field(
        default=None, pattern=METRIC_NAME, description="Metric to scan; default: the configured key metrics"
    )
    baseline: str = Field(
        default="2d", pattern=DURATION_PATTERN, description="History before the window that each baseline learns from"
    )
    step: str = Field(default="60s", pattern=DURATION_PATTERN, description="Resolution of the scan")
    limit: int = Field(default=10, ge=1, le=200, description="Most anomalies to return")

    @field_validator("baseline", "step")
    @classmethod
    def _durations(cls, value: str) -> str | None:
        return _bounded_duration(value)


class AnomalyItem(ToolOutput):
    series: str
    start: str = Field(description="When the anomaly started")
    end: str
    peak: str = Field(description="When it was strongest")
    direction: Literal["up", "down"]
    observed: float = Field(description="Value at the peak")
    baseline: float = Field(description="What the series' own baseline expected at the peak")
    change_pct: float | None = Field(description="observed vs baseline, in percent")
    z: float = Field(description="Deviation at the peak in units of the series' robust spread")
    score: float
    ongoing: bool = Field(description="Still away from its baseline at the end of the window")


class AnomaliesOutput(Page[AnomalyItem]):
    query: str
    start: str
    end: str
    step_s: float
    series_scanned: int
    series_skipped: int = Field(description="Series too short or gappy to judge")
    method: str


class CompareInput(SeriesInput):
    at: Instant = Field(description="The moment to compare around, e.g. a deploy time (RFC 3339 or unix seconds)")
    before: str = Field(default="30m", pattern=DURATION_PATTERN, description="Span before `at`")
    after: str = Field(default="30m", pattern=DURATION_PATTERN, description="Span after `at`")
    step: str = Field(default="60s", pattern=DURATION_PATTERN, description="Resolution")
    limit: int = Field(default=10, ge=1, le=200, description="Most series to return")
    by_revision: str | None = Field(
        default=None,
        pattern=LABEL_NAME,
        description="Also compare revisions after `at` by this pod label (pod_template_hash): a canary's bad pods",
    )

    @field_validator("before", "after", "step")
    @classmethod
    def _durations(cls, value: str) -> str | None:
        return _bounded_duration(value)


class CompareItem(ToolOutput):
    series: str
    before: float | None = Field(description="Median before `at`")
    after: float | None = Field(description="Median after `at`")
    change: float | None
    change_pct: float | None
    z: float | None = Field(description="Change in units of the before span's robust spread")
    direction: Literal["up", "down", "flat", "unknown"]


class RevisionItem(ToolOutput):
    revision: str = Field(description="The label's value, e.g. a pod-template-hash")
    pods: int = Field(description="Series (pods) of this revision after `at`")
    after: float | None = Field(description="Median of this revision's pods after `at`")
    others: float | None = Field(description="Median of the other revisions' pods after `at` (else: all before)")
    change_pct: float | None
    z: float | None = Field(description="Difference in units of the others' robust spread")
    direction: Literal["up", "down", "flat", "unknown"]


class CompareOutput(Page[CompareItem]):
    revisions: list[RevisionItem] = Field(default_factory=list, description="With by_revision: most different first")
    query: str
    at: str
    before_start: str
    after_end: str
    series_compared: int
    method: str
