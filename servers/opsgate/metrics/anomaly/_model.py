"""Scoring: seasonal profile, trailing robust level and scale, and the per-point flags.

Works on a block of series that share one time grid (shape ``(series, points)``), so that
ranking many series costs a handful of numpy calls rather than a handful per series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from ._config import DetectorConfig
from ._robust import (
    row_quantile,
    sorted_rows,
    trailing_blocks,
    trailing_extremes,
    trailing_median,
)

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

_IQR_TO_SIGMA = 1.349  # IQR of a standard normal


@dataclass(frozen=True)
class Scored:
    """Per-point results for a block of series on one grid (every array is ``(series, points)``)."""

    values: FloatArray  # observed (NaN = gap)
    expected: FloatArray  # baseline (NaN = warm-up or gap)
    z: FloatArray  # robust z of the point
    flags: BoolArray  # anomalous points
    warmup: int  # leading points never flagged (not enough history yet)


def daily_autocorrelation(x: FloatArray, period: int) -> FloatArray:
    """Correlation of each series with itself one period earlier, after removing each period's mean."""
    lead, m = x.shape[:-1], x.shape[-1]
    days = -(-m // period)
    padded = np.full((*lead, days * period), np.nan)
    padded[..., :m] = x
    by_day = padded.reshape(*lead, days, period)
    finite = np.isfinite(by_day)
    with np.errstate(invalid="ignore", divide="ignore"):
        day_mean = np.where(finite, by_day, 0.0).sum(axis=-1) / finite.sum(axis=-1)
    d = (by_day - day_mean[..., None]).reshape(*lead, days * period)[..., :m]
    a, b = d[..., period:], d[..., :-period]
    ok = np.isfinite(a) & np.isfinite(b)
    count = ok.sum(axis=-1)
    a = np.where(ok, a, 0.0)
    b = np.where(ok, b, 0.0)
    n = np.maximum(count, 1)[..., None]
    a = np.where(ok, a - a.sum(axis=-1, keepdims=True) / n, 0.0)
    b = np.where(ok, b - b.sum(axis=-1, keepdims=True) / n, 0.0)
    denom = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=-1) / denom
    out: FloatArray = np.where((denom > 0) & (count >= period), r, 0.0)
    return out


def seasonal_profile(x: FloatArray, period: int, history: int) -> FloatArray:
    """Causal daily profile: per phase, the median over the previous ``history`` days of each
    day's deviation from that day's median. NaN on the first day (no past day yet)."""
    lead, m = x.shape[:-1], x.shape[-1]
    days = -(-m // period)
    padded = np.full((*lead, days * period), np.nan)
    padded[..., :m] = x
    by_day = padded.reshape(*lead, days, period)
    history = max(1, min(history, days - 1))
    s, n = sorted_rows(by_day)
    deviation = by_day - row_quantile(s, n, 0.5)[..., None]
    earlier = np.concatenate((np.full((*lead, history, period), np.nan), deviation[..., :-1, :]), axis=-2)
    windows = sliding_window_view(earlier, history, axis=-2)  # (..., days, period, history)
    s, n = sorted_rows(windows)
    profile: FloatArray = row_quantile(s, n, 0.5).reshape(*lead, days * period)[..., :m]
    return profile


def score(x: FloatArray, step: float, cfg: DetectorConfig) -> Scored:
    """Score every point of each row of ``x`` (series on a shared grid of ``step`` seconds)."""
    m = x.shape[-1]
    period = round(cfg.season_seconds / step)
    seasonal = np.zeros(x.shape[:-1], dtype=bool)
    profile = np.zeros_like(x)
    if period >= 4 and m >= 2 * period:
        seasonal = daily_autocorrelation(x, period) >= cfg.min_season_autocorr
        if seasonal.any():
            profile = np.where(seasonal[..., None], seasonal_profile(x, period, cfg.season_history_periods), 0.0)
    y = x - profile

    window = max(round(cfg.baseline_seconds / step), cfg.min_history_points)
    hop = max(1, int(window * cfg.hop_fraction))
    s, n = trailing_blocks(y, window, hop)
    level = row_quantile(s, n, 0.5)
    iqr = row_quantile(s, n, 0.75) - row_quantile(s, n, 0.25)
    scale = np.maximum(np.maximum(iqr / _IQR_TO_SIGMA, cfg.relative_scale_floor * np.abs(level)), 1e-9)
    lvl = np.repeat(level, hop, axis=-1)[..., :m]
    sc = np.repeat(scale, hop, axis=-1)[..., :m]
    warmup = min(int(window * cfg.warmup_windows), max(cfg.min_history_points, m // 4))
    lvl[..., :warmup] = np.nan

    with np.errstate(invalid="ignore"):
        z = (y - lvl) / sc
        k = max(1, round(cfg.sustained_seconds / step))
        history_blocks = max(1, round(cfg.range_history_seconds / step / hop))
        lo, hi = trailing_extremes(y, hop, history_blocks)
        margin = cfg.range_margin
        spike_up = (z > cfg.spike_z) & (y > hi + margin * (hi - lvl))
        spike_down = (z < -cfg.spike_z) & (y < lo - margin * (lvl - lo))
        # Sustained: the k-point trailing median is sustained_z from the level and beyond every
        # value that median took over the past week.
        smooth = trailing_median(y, k)
        z_smooth = (smooth - lvl) / sc
        smooth_lo, smooth_hi = trailing_extremes(smooth, hop, history_blocks)
        shift_up = (z_smooth > cfg.sustained_z) & (smooth > smooth_hi)
        shift_down = (z_smooth < -cfg.sustained_z) & (smooth < smooth_lo)
    flags = (spike_up | spike_down | shift_up | shift_down) & np.isfinite(x)  # never flag a gap
    expected = lvl + profile
    return Scored(values=x, expected=expected, z=z, flags=flags, warmup=warmup)
