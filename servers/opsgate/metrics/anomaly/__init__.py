"""Anomaly detection for metric series: a pure numpy algorithm, no I/O and no other opsgate imports.

Model: ``value = daily profile + level + noise``.

* Each series is put on a regular grid (its median step); missing points and NaNs become gaps.
* A daily profile is used only when the series is daily-seasonal (autocorrelation one day apart,
  after removing the one-day moving average). The profile is causal: per phase, the median over the
  previous days of each day's deviation from its own median.
* Level and scale come from a trailing one-day window of the deseasonalised series (median and
  interquartile range, the scale floored at 1% of the level so flat or quantised series do not turn
  noise into huge scores).
* A point is flagged as a *spike* when its robust z exceeds ``spike_z`` and it breaks the range the
  series has shown over the past week, or as part of a *sustained* deviation when its 30-minute
  median does both (with ``sustained_z``). "Breaks the past week's range" is what keeps routine
  bursts of bursty metrics quiet, and what makes a level shift flag at its onset rather than for
  every point until the baseline catches up.
* Flags closer than ``merge_gap_seconds`` form one :class:`Anomaly`.

Everything is causal (a point is judged against data before it), with a warm-up of two baseline
windows (a quarter of the series for short ones) during which nothing is flagged.

Why not a library: statsmodels' STL/MSTL decomposes with LOESS over the whole series (it sees the
future, absorbs level shifts into the trend, and costs milliseconds per series, over the budget of
about one millisecond for ranking a thousand series); ruptures' change-point search (PELT/BinSeg)
finds level shifts but not spikes, needs a penalty per series and is slower still. The robust
statistics needed here are a few sorted-window quantiles, which numpy does vectorised across series.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ._config import DetectorConfig
from ._events import Anomaly, events
from ._grid import clean, grid_step, to_grid
from ._model import score

__all__ = [
    "Anomaly",
    "DetectorConfig",
    "FlaggedPoints",
    "InsufficientDataError",
    "Ranking",
    "detect",
    "flag_points",
    "rank_series",
    "rank_series_with_skips",
]

FloatArray = NDArray[np.float64]


class InsufficientDataError(ValueError):
    """The series has too few usable points to build a baseline."""


@dataclass(frozen=True)
class Ranking:
    ranked: list[tuple[str, Anomaly]]  # most severe first
    skipped: dict[str, str] = field(default_factory=dict)  # series name -> why it was not judged


@dataclass(frozen=True)
class FlaggedPoints:
    times: FloatArray  # grid times
    flags: NDArray[np.bool_]  # the points the detector calls anomalous
    anomalies: list[Anomaly]
    judged_from: float  # unix seconds of the first point past the warm-up


@dataclass(frozen=True)
class _Prepared:
    times: FloatArray
    grid: FloatArray
    step: float


def _prepare(timestamps: np.ndarray, values: np.ndarray, cfg: DetectorConfig) -> _Prepared:
    t, v = clean(timestamps, values)
    needed = max(cfg.min_points, cfg.min_history_points + 1)
    if t.size < needed:
        raise InsufficientDataError(
            f"series has {t.size} usable (finite) points; at least {needed} are needed to build a baseline"
        )
    step = grid_step(t)
    slots = round((t[-1] - t[0]) / step) + 1
    if slots > 4 * t.size:
        raise InsufficientDataError(f"series is mostly gaps: {t.size} points spread over {slots} steps of {step:g} s")
    grid = to_grid(t, v, step)
    return _Prepared(t[0] + step * np.arange(grid.size), grid, step)


def _events(
    p: _Prepared, expected: FloatArray, z: FloatArray, flags: NDArray[np.bool_], cfg: DetectorConfig
) -> list[Anomaly]:
    return events(
        p.times,
        p.grid,
        expected,
        z,
        flags,
        merge_gap=max(1, round(cfg.merge_gap_seconds / p.step)),
        lead_in=max(0, round(cfg.sustained_seconds / p.step) - 1),
        lead_z=cfg.sustained_z,
    )


def flag_points(timestamps: np.ndarray, values: np.ndarray, config: DetectorConfig | None = None) -> FlaggedPoints:
    """The per-point flags behind :func:`detect`, on the series' grid (for evaluation against labels)."""
    cfg = config or DetectorConfig()
    p = _prepare(timestamps, values, cfg)
    sc = score(p.grid[None, :], p.step, cfg)
    found = _events(p, sc.expected[0], sc.z[0], sc.flags[0], cfg)
    judged_from = float(p.times[min(sc.warmup, p.times.size - 1)])
    return FlaggedPoints(p.times, sc.flags[0], found, judged_from)


def detect(timestamps: np.ndarray, values: np.ndarray, config: DetectorConfig | None = None) -> list[Anomaly]:
    """Anomalies of one series, in time order.

    Raises :class:`InsufficientDataError` when the series has too few usable points to judge.
    """
    return flag_points(timestamps, values, config).anomalies


def rank_series_with_skips(
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    window: tuple[float, float] | None,
    config: DetectorConfig | None = None,
) -> Ranking:
    """Anomalies overlapping ``window`` across many series, most severe first, and the series skipped.

    Series that share a time grid are scored together in one vectorised pass.
    """
    cfg = config or DetectorConfig()
    skipped: dict[str, str] = {}
    groups: dict[tuple[float, float, int], list[tuple[str, _Prepared]]] = {}
    for name, (ts, vs) in series.items():
        try:
            p = _prepare(ts, vs, cfg)
        except (InsufficientDataError, ValueError) as exc:
            skipped[name] = str(exc)
            continue
        groups.setdefault((float(p.times[0]), p.step, p.grid.size), []).append((name, p))

    found: list[tuple[str, Anomaly]] = []
    for (_, step, _), members in groups.items():
        sc = score(np.stack([p.grid for _, p in members]), step, cfg)
        flagged_rows = np.flatnonzero(sc.flags.any(axis=-1))
        for row in flagged_rows.tolist():
            name, p = members[row]
            for a in _events(p, sc.expected[row], sc.z[row], sc.flags[row], cfg):
                if window is None or (a.end >= window[0] and a.start <= window[1]):
                    found.append((name, a))
    found.sort(key=lambda item: item[1].score, reverse=True)
    return Ranking(found, skipped)


def rank_series(
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    window: tuple[float, float] | None,
    config: DetectorConfig | None = None,
) -> list[tuple[str, Anomaly]]:
    """Anomalies overlapping ``window`` across many series, most severe first.

    Series too short to judge are left out; :func:`rank_series_with_skips` says which and why.
    """
    return rank_series_with_skips(series, window, config).ranked
