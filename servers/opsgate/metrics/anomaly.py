"""Anomaly detection for metric series: a pure numpy algorithm, no I/O and no opsgate imports.

Model: ``value = seasonal profile + level + noise``.

* The series is put on a regular grid (median step); missing points and NaNs become gaps.
* A daily profile is used only when the series shows daily seasonality (autocorrelation at a
  one-day lag of the series less its one-day moving average). The profile at a phase is the median
  over the previous days of each day's deviation from its own median, so it uses only the past.
* Level and scale come from a trailing window (one day by default) of the deseasonalised series,
  recomputed every ``hop`` grid steps: median for the level, interquartile range for the scale,
  floored so that flat or quantised series do not turn noise into infinite scores.
* A point is flagged either as a *spike* (one point, far out: robust z above ``spike_z`` and outside
  the range seen in the trailing window) or as part of a *sustained* deviation (robust z above
  ``sustained_z`` for at least ``sustained_seconds``). Flags close together are merged into one
  :class:`Anomaly`.

Everything is causal: a point is judged against data strictly before its block, so a level shift
is reported where it starts and the baseline then adapts to the new level within half a window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

__all__ = [
    "Anomaly",
    "DetectorConfig",
    "InsufficientDataError",
    "Ranking",
    "detect",
    "flag_points",
    "rank_series",
    "rank_series_with_skips",
]


class InsufficientDataError(ValueError):
    """The series has too few usable points to build a baseline."""


@dataclass(frozen=True)
class Anomaly:
    start: float
    end: float
    peak_time: float
    direction: Literal["up", "down"]
    score: float
    magnitude: float
    baseline: float
    observed: float


@dataclass(frozen=True)
class DetectorConfig:
    season_seconds: float = 86_400.0
    min_season_autocorr: float = 0.3
    season_history_periods: int = 7
    baseline_seconds: float = 86_400.0
    min_history_points: int = 60
    hop_fraction: float = 1 / 8
    range_history_seconds: float = 7 * 86_400.0
    warmup_windows: float = 1.0
    range_margin: float = 0.0
    spike_z: float = 8.0
    sustained_z: float = 4.0
    sustained_seconds: float = 1_800.0
    merge_gap_seconds: float = 1_800.0
    relative_scale_floor: float = 0.01
    min_points: int = 30


@dataclass(frozen=True)
class Ranking:
    ranked: list[tuple[str, Anomaly]]
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Scored:
    times: FloatArray  # grid times
    values: FloatArray  # observed values on the grid (NaN = gap)
    expected: FloatArray  # baseline value at each grid point (NaN = not scored)
    z: FloatArray  # robust z-score (NaN = not scored)
    z_sustained: FloatArray  # robust z-score of the short trailing median
    new_extreme: NDArray[np.bool_]  # beyond everything in the trailing history
    new_sustained_extreme: NDArray[np.bool_]  # short trailing median beyond its trailing history
    step: float


def _clean(timestamps: np.ndarray, values: np.ndarray) -> tuple[FloatArray, FloatArray]:
    t = np.asarray(timestamps, dtype=np.float64).ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    if t.shape != v.shape:
        raise ValueError(f"timestamps and values differ in length: {t.size} != {v.size}")
    keep = np.isfinite(t) & np.isfinite(v)
    t, v = t[keep], v[keep]
    if t.size > 1 and np.any(np.diff(t) <= 0):
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        last_of_each = np.append(np.diff(t) > 0, True)  # duplicate timestamps: keep the last
        t, v = t[last_of_each], v[last_of_each]
    return t, v


def _to_grid(t: FloatArray, v: FloatArray) -> tuple[FloatArray, FloatArray, float]:
    step = float(np.median(np.diff(t)))
    idx = np.rint((t - t[0]) / step).astype(np.int64)
    grid = np.full(int(idx[-1]) + 1, np.nan)
    grid[idx] = v  # points sharing a slot: the later one wins
    times = t[0] + step * np.arange(grid.size)
    return times, grid, step


def _sorted_rows(a: FloatArray) -> tuple[FloatArray, NDArray[np.int64]]:
    """Rows sorted ascending (NaNs last) and the count of finite values per row."""
    s = np.sort(a, axis=-1)
    return s, np.count_nonzero(np.isfinite(a), axis=-1).astype(np.int64)


def _row_quantile(s: FloatArray, n: NDArray[np.int64], q: float) -> FloatArray:
    """Linear-interpolated quantile of each sorted row's first ``n`` values (NaN where n == 0)."""
    pos = q * np.maximum(n - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    frac = pos - lo
    a = np.take_along_axis(s, lo[..., None], axis=-1)[..., 0]
    b = np.take_along_axis(s, hi[..., None], axis=-1)[..., 0]
    out: FloatArray = a + (b - a) * frac
    return np.where(n > 0, out, np.nan)


def _moving_average(x: FloatArray, width: int) -> FloatArray:
    """Centred moving average ignoring NaNs (NaN where the window has no value)."""
    finite = np.isfinite(x)
    c = np.concatenate(([0.0], np.cumsum(np.where(finite, x, 0.0))))
    k = np.concatenate(([0], np.cumsum(finite)))
    i = np.arange(x.size)
    lo = np.clip(i - width // 2, 0, x.size)
    hi = np.clip(i + (width - width // 2), 0, x.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (c[hi] - c[lo]) / (k[hi] - k[lo])


def _seasonal_profile(x: FloatArray, period: int, cfg: DetectorConfig) -> FloatArray | None:
    """Causal daily profile at each grid point, or None when the series is not daily-seasonal."""
    if period < 4 or x.size < 2 * period:
        return None
    detrended = x - _moving_average(x, period)
    a, b = detrended[period:], detrended[:-period]
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < period:
        return None
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if denom == 0.0 or float((a * b).sum()) / denom < cfg.min_season_autocorr:
        return None
    days = -(-x.size // period)
    padded = np.full(days * period, np.nan)
    padded[: x.size] = x
    by_day = padded.reshape(days, period)
    s, n = _sorted_rows(by_day)
    deviation = by_day - _row_quantile(s, n, 0.5)[:, None]
    k = cfg.season_history_periods
    history = np.concatenate((np.full((k, period), np.nan), deviation[:-1]))  # only previous days
    windows = np.lib.stride_tricks.sliding_window_view(history, k, axis=0)  # (days, period, k)
    s, n = _sorted_rows(windows)
    profile = _row_quantile(s, n, 0.5).reshape(-1)[: x.size]
    return profile


def _trailing_extremes(y: FloatArray, hop: int, history_blocks: int) -> tuple[FloatArray, FloatArray]:
    """Min and max of ``y`` over the points before each point, reaching back ``history_blocks`` blocks."""
    m = y.size
    blocks = -(-m // hop)
    padded = np.full(blocks * hop, np.nan)
    padded[:m] = y
    by_block = padded.reshape(blocks, hop)
    hi_src = np.where(np.isfinite(by_block), by_block, -np.inf)
    lo_src = np.where(np.isfinite(by_block), by_block, np.inf)
    out: list[FloatArray] = []
    for src, acc, fill in ((lo_src, np.minimum, np.inf), (hi_src, np.maximum, -np.inf)):
        block_ext = acc.reduce(src, axis=1)
        before = np.concatenate((np.full(history_blocks, fill), block_ext[:-1]))
        prev = acc.reduce(np.lib.stride_tricks.sliding_window_view(before, history_blocks), axis=1)
        within = acc.accumulate(src, axis=1)
        within = np.concatenate((np.full((blocks, 1), fill), within[:, :-1]), axis=1)
        out.append(acc(prev[:, None], within).reshape(-1)[:m])
    return out[0], out[1]


def _trailing_median(y: FloatArray, k: int) -> FloatArray:
    """Median of each point and the ``k - 1`` points before it (NaNs ignored)."""
    if k <= 1:
        return y
    padded = np.concatenate((np.full(k - 1, np.nan), y))
    s, n = _sorted_rows(np.lib.stride_tricks.sliding_window_view(padded, k))
    return _row_quantile(s, n, 0.5)


def _score(t: FloatArray, v: FloatArray, cfg: DetectorConfig) -> _Scored:
    times, x, step = _to_grid(t, v)
    m = x.size
    period = int(round(cfg.season_seconds / step))
    profile = _seasonal_profile(x, period, cfg)
    y = x if profile is None else x - profile

    window = max(int(round(cfg.baseline_seconds / step)), cfg.min_history_points)
    warmup = min(int(window * cfg.warmup_windows), max(cfg.min_history_points, m // 4))
    hop = max(1, int(window * cfg.hop_fraction))
    blocks = -(-m // hop)
    padded = np.concatenate((np.full(window, np.nan), y, np.full(blocks * hop - m, np.nan)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, window)[: blocks * hop : hop]
    s, n = _sorted_rows(windows)
    level = _row_quantile(s, n, 0.5)
    iqr = _row_quantile(s, n, 0.75) - _row_quantile(s, n, 0.25)
    scale = np.maximum(iqr / 1.349, cfg.relative_scale_floor * np.abs(level))
    scale = np.maximum(scale, 1e-9)

    rep = lambda a: np.repeat(a, hop)[:m]  # noqa: E731
    lvl, sc = rep(level), rep(scale)
    lvl[: min(warmup, m)] = np.nan
    z = (y - lvl) / sc
    k = max(1, int(round(cfg.sustained_seconds / step)))
    smooth = _trailing_median(y, k)
    z_sustained = (smooth - lvl) / sc
    history_blocks = max(1, int(round(cfg.range_history_seconds / step / hop)))
    lo, hi = _trailing_extremes(y, hop, history_blocks)
    slo, shi = _trailing_extremes(smooth, hop, history_blocks)
    margin = cfg.range_margin
    new_extreme = (y > hi + margin * (hi - lvl)) | (y < lo - margin * (lvl - lo))
    new_sustained_extreme = (smooth > shi) | (smooth < slo)
    expected = lvl if profile is None else lvl + profile
    return _Scored(times, x, expected, z, z_sustained, new_extreme, new_sustained_extreme, step)


def _runs(mask: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Start and end (exclusive) indices of the True runs of ``mask``."""
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _flags(sc: _Scored, cfg: DetectorConfig) -> NDArray[np.bool_]:
    az = np.abs(np.nan_to_num(sc.z, nan=0.0))
    azs = np.abs(np.nan_to_num(sc.z_sustained, nan=0.0))
    spikes = (az > cfg.spike_z) & sc.new_extreme
    sustained = (azs > cfg.sustained_z) & sc.new_sustained_extreme
    return spikes | sustained


def flag_points(
    timestamps: np.ndarray, values: np.ndarray, config: DetectorConfig | None = None
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Grid times and the per-point flags behind :func:`detect` (for evaluation against labels)."""
    cfg = config or DetectorConfig()
    t, v = _prepare(timestamps, values, cfg)
    sc = _score(t, v, cfg)
    return sc.times, _flags(sc, cfg)


def _prepare(timestamps: np.ndarray, values: np.ndarray, cfg: DetectorConfig) -> tuple[FloatArray, FloatArray]:
    t, v = _clean(timestamps, values)
    needed = max(cfg.min_points, cfg.min_history_points + 1)
    if t.size < needed:
        raise InsufficientDataError(
            f"series has {t.size} usable (finite) points; at least {needed} are needed to build a baseline"
        )
    return t, v


def _events(sc: _Scored, flags: NDArray[np.bool_], cfg: DetectorConfig) -> list[Anomaly]:
    idx = np.flatnonzero(flags)
    if idx.size == 0:
        return []
    gap = max(1, int(round(cfg.merge_gap_seconds / sc.step)))
    breaks = np.flatnonzero(np.diff(idx) > gap)
    firsts = np.concatenate(([0], breaks + 1))
    lasts = np.concatenate((breaks, [idx.size - 1]))
    out: list[Anomaly] = []
    for f, last in zip(firsts, lasts, strict=True):
        s, e = int(idx[f]), int(idx[last])
        seg = np.abs(np.nan_to_num(sc.z[s : e + 1], nan=0.0))
        p = s + int(np.argmax(seg))
        z = float(sc.z[p])
        n_flagged = int(flags[s : e + 1].sum())
        out.append(
            Anomaly(
                start=float(sc.times[s]),
                end=float(sc.times[e]),
                peak_time=float(sc.times[p]),
                direction="up" if z > 0 else "down",
                score=abs(z) * (1.0 + np.log1p(n_flagged) / 4),
                magnitude=z,
                baseline=float(sc.expected[p]),
                observed=float(sc.values[p]),
            )
        )
    return out


def detect(timestamps: np.ndarray, values: np.ndarray, config: DetectorConfig | None = None) -> list[Anomaly]:
    """Anomalies of one series, in time order.

    Raises :class:`InsufficientDataError` when the series is too short to judge.
    """
    cfg = config or DetectorConfig()
    t, v = _prepare(timestamps, values, cfg)
    sc = _score(t, v, cfg)
    return _events(sc, _flags(sc, cfg), cfg)


def rank_series_with_skips(
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    window: tuple[float, float] | None,
    config: DetectorConfig | None = None,
) -> Ranking:
    """Anomalies across many series, most severe first, plus the series that could not be judged."""
    cfg = config or DetectorConfig()
    found: list[tuple[str, Anomaly]] = []
    skipped: dict[str, str] = {}
    for name, (ts, vs) in series.items():
        try:
            anomalies = detect(ts, vs, cfg)
        except InsufficientDataError as exc:
            skipped[name] = str(exc)
            continue
        if window is not None:
            lo, hi = window
            anomalies = [a for a in anomalies if a.end >= lo and a.start <= hi]
        found.extend((name, a) for a in anomalies)
    found.sort(key=lambda item: item[1].score, reverse=True)
    return Ranking(found, skipped)


def rank_series(
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    window: tuple[float, float] | None,
    config: DetectorConfig | None = None,
) -> list[tuple[str, Anomaly]]:
    """Anomalies across many series, most severe first (series too short to judge are left out)."""
    return rank_series_with_skips(series, window, config).ranked
