"""The protocol every metrics backend implements, and the series it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from opsgate.metrics.selection import Selection

FloatArray = NDArray[np.float64]


@dataclass
class Series:
    """One series: its labels (without the metric name) and its samples in time order."""

    labels: dict[str, str]
    times: FloatArray
    values: FloatArray
    metric: str | None = field(default=None)


class MetricsBackend(Protocol):
    """A source of metric series. Errors: `ToolError` for what the caller can fix (bad query, unknown
    metric), `BackendUnavailable` when the backend cannot be reached or keeps failing."""

    name: str

    async def query_range(self, selection: Selection, start: float, end: float, step: float) -> list[Series]:
        """Series evaluated every `step` seconds from `start` to `end` (inclusive)."""
        ...

    async def query_instant(self, selection: Selection, at: float) -> list[Series]:
        """Series with one sample each: their value at `at`."""
        ...

    def describe(self, selection: Selection) -> str:
        """The query as this backend runs it (shown to the caller)."""
        ...

    async def aclose(self) -> None: ...
