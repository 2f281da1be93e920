"""Anomaly detection for metric series: a pure numpy algorithm, no I/O and no other opsgate imports.

Model: ``value = daily profile + level + noise``.

* Each series is put on a regular grid (its median step); missing points and NaNs become gaps.
* A daily profile is used only when the series is daily-seasonal (autocorrelation one day apart,
  after removing the one-day moving average). The profile is causal: per phase, the median over the
  previous days of each day's deviation from its own median.
* Level and scale come from a trailing one-day window of the deseasonalised series (median and
  interquartile range). The scale is floored at 1% of the level and at the series' resolution (the
  smallest step between its values: 1 for a counter), so flat or quantised series do not turn noise
  into huge scores; a series whose window never moved at all (a counter sitting at zero) reports
  ``|z|`` of at most ``spike_z``: its departure is certain, but it has no size to outrank others by.
* A point is flagged as a *spike* when its robust z exceeds ``spike_z`` and it breaks the range the
  series has shown over the past week, or as part of a *sustained* deviation when its short median
  (30 minutes, and at least ``min_sustained_points`` points, so that series sampled every 30-60
  minutes are not judged on single points) does both (with ``sustained_z``). "Breaks the past
  week's range" is what keeps routine bursts of bursty metrics quiet, and what makes a level shift
  flag at its onset rather than for every point until the baseline catches up. The range of single
  points leaves out the points already flagged (an extreme reached twice counts), so one large
  anomaly does not hide the next one for a week.
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


def _regular_step(t: FloatArray) -> float | None:
    """The step of finite, strictly increasing, evenly spaced timestamps; None for any other timeline."""
    if t.size < 2 or not np.isfinite(t[0]) or not np.isfinite(t[-1]):
        return None
    d = np.diff(t)
    step = float(d[0])
    if step <= 0 or float(np.abs(d - step).max()) > 1e-9 * max(step, abs(float(t[-1]))):
        return None
    return step


def _prepare_all(
    series: Mapping[str, tuple[np.ndarray, np.ndarray]], cfg: DetectorConfig
) -> tuple[list[tuple[str, _Prepared]], dict[str, str]]:
    """Every series laid on its grid, or the reason it cannot be judged.

    Series usually share their timestamps (one query, one step): a timeline is checked once, and a
    series on a regular timeline with finite values is used as it is, without cleaning or copying.
    """
    needed = max(cfg.min_points, cfg.min_history_points + 1)
    timelines: dict[tuple[int, float, float], list[tuple[FloatArray, float | None]]] = {}
    prepared: list[tuple[str, _Prepared]] = []
    skipped: dict[str, str] = {}
    for name, (ts, vs) in series.items():
        t = np.asarray(ts, dtype=np.float64).ravel()
        v = np.asarray(vs, dtype=np.float64).ravel()
        step: float | None = None
        if t.size >= needed and t.shape == v.shape:
            known = timelines.setdefault((t.size, float(t[0]), float(t[-1])), [])
            for seen, seen_step in known:
                if seen is t or np.array_equal(seen, t):
                    step = seen_step
                    break
            else:
                step = _regular_step(t)
                known.append((t, step))
        try:
            if step is not None and bool(np.isfinite(v).all()):
                prepared.append((name, _Prepared(t, v, step)))
            else:
                prepared.append((name, _prepare(t, v, cfg)))
        except (InsufficientDataError, ValueError) as exc:
            skipped[name] = str(exc)
    return prepared, skipped


def rank_series_with_skips(
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    window: tuple[float, float] | None,
    config: DetectorConfig | None = None,
) -> Ranking:
    """Anomalies overlapping ``window`` across many series, most severe first, and the series skipped.

    Series with the same step and length are scored together in one vectorised pass, whatever their
    start (series on different time grids, e.g. offset by a scrape phase, still share the pass).
    """
    cfg = config or DetectorConfig()
    prepared, skipped = _prepare_all(series, cfg)
    groups: dict[tuple[float, int], list[tuple[str, _Prepared]]] = {}
    for name, p in prepared:
        groups.setdefault((p.step, p.grid.size), []).append((name, p))

    found: list[tuple[str, Anomaly]] = []
    for (step, _), members in groups.items():
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
