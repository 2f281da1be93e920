"""Scoring: seasonal profile, trailing robust level and scale, and the per-point flags.

Works on a block of series that share one time grid (shape ``(series, points)``), so that
ranking many series costs a handful of numpy calls rather than a handful per series.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from ._config import DetectorConfig
from ._robust import row_quantile, sorted_rows

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
_T = TypeVar("_T", bound=np.generic)

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


def _median(a: FloatArray, axis: int) -> FloatArray:
    """Median along ``axis``, NaNs ignored (all-NaN slices give NaN); fast when there is no NaN."""
    if not np.isnan(a).any():
        out: FloatArray = np.median(a, axis=axis)
        return out
    s, n = sorted_rows(np.moveaxis(a, axis, -1))
    return row_quantile(s, n, 0.5)


def seasonal_profile(x: FloatArray, period: int, history: int) -> FloatArray:
    """Causal daily profile: per phase, the median over the previous ``history`` days of each
    day's deviation from that day's median. NaN on the first day (no past day yet)."""
    lead, m = x.shape[:-1], x.shape[-1]
    days = -(-m // period)
    padded = np.full((*lead, days * period), np.nan)
    padded[..., :m] = x
    by_day = padded.reshape(*lead, days, period)
    history = max(1, min(history, days - 1))
    deviation = by_day - _median(by_day, -1)[..., None]
    profile = np.full((*lead, days, period), np.nan)
    for day in range(1, days):
        profile[..., day, :] = _median(deviation[..., max(0, day - history) : day, :], -2)
    out: FloatArray = profile.reshape(*lead, days * period)[..., :m]
    return out


def _per_block(a: NDArray[_T], hop: int, fill: float | bool) -> NDArray[_T]:
    """``a`` (series, points) padded with ``fill`` to whole blocks of ``hop`` points: (series, blocks, hop)."""
    lead, m = a.shape[:-1], a.shape[-1]
    blocks = -(-m // hop)
    padded = np.full((*lead, blocks * hop), fill, dtype=a.dtype)
    padded[..., :m] = a
    return padded.reshape(*lead, blocks, hop)


def _trailing_quartiles(y: FloatArray, window: int, hop: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Quartiles of the ``window`` points before each block of ``hop`` points: (series..., blocks) each.

    One sort per block over the points there are (no NaN padding, no index gathering); rows with
    a gap in the window take the NaN-aware path.
    """
    lead, m = y.shape[:-1], y.shape[-1]
    blocks = -(-m // hop)
    out = np.full((3, *lead, blocks), np.nan)
    flat = y.reshape(-1, m)
    view = out.reshape(3, -1, blocks)
    gaps = np.isnan(flat)
    for b in range(1, blocks):
        lo, hi = max(0, b * hop - window), b * hop
        part = flat[:, lo:hi]
        size = hi - lo
        positions = [q * (size - 1) for q in (0.25, 0.5, 0.75)]
        clean = ~gaps[:, lo:hi].any(axis=-1)
        if clean.all():
            ordered = np.sort(part, axis=-1)
            rows = slice(None)
        else:
            ordered = np.sort(part[clean], axis=-1)
            rows = clean  # type: ignore[assignment]
            s, n = sorted_rows(part[~clean])
            for i, q in enumerate((0.25, 0.5, 0.75)):
                view[i, ~clean, b] = row_quantile(s, n, q)
        for i, p in enumerate(positions):
            f = int(np.floor(p))
            c = min(f + 1, size - 1)
            view[i, rows, b] = ordered[:, f] + (ordered[:, c] - ordered[:, f]) * (p - f)
    return out[0], out[1], out[2]


def _resolution(y: FloatArray, hop: int, window_blocks: int) -> FloatArray:
    """Per block, the smallest non-zero step between consecutive values over the trailing window
    (the series' resolution: 1 for counts; 0 when the window never moved)."""
    step = np.abs(np.diff(y, axis=-1, prepend=np.nan))
    step = np.where(step > 0, step, np.inf)  # NaN and zero steps say nothing about the resolution
    per_block = _per_block(step, hop, np.inf).min(axis=-1)
    lead = per_block.shape[:-1]
    earlier = np.concatenate((np.full((*lead, window_blocks), np.inf), per_block[..., :-1]), axis=-1)
    smallest = np.min(sliding_window_view(earlier, window_blocks, axis=-1), axis=-1)
    out: FloatArray = np.where(np.isfinite(smallest), smallest, 0.0)
    return out


def _median_of_windows(windows: FloatArray, need: int) -> FloatArray:
    """Median along the last axis, NaNs ignored; NaN where fewer than ``need`` values are finite."""
    k = windows.shape[-1]
    if not np.isnan(windows).any():
        middle = sorted({(k - 1) // 2, k // 2})
        part = np.partition(windows, middle, axis=-1)
        full: FloatArray = part[..., middle].mean(axis=-1)
        return full
    s, n = sorted_rows(windows)
    med = row_quantile(s, n, 0.5)
    med[n < need] = np.nan
    return med


def _held_levels(y: FloatArray, k: int, hop: int) -> FloatArray:
    """Per direction and block, the most extreme short-span level the series held: the median of
    the ``k`` points ending at every ``k // 4``-th point of the block (every point when ``k`` is
    small), largest for up and, negated, smallest for down. Shape (2, series..., blocks)."""
    m = y.shape[-1]
    stride = max(1, k // 4)
    offsets = np.arange(min(stride, hop) - 1, hop, stride)
    blocks = -(-m // hop)
    ends = (np.arange(blocks)[:, None] * hop + offsets[None, :]).clip(max=m - 1)
    # Edge-padded: the first windows (inside the warm-up anyway) repeat the first value.
    padded = np.concatenate((np.repeat(y[..., :1], k - 1, axis=-1), y), axis=-1)
    medians = _median_of_windows(padded[..., ends[..., None] + np.arange(k)], -(-k // 2))
    finite = np.isfinite(medians)
    return np.stack([np.where(finite, sign * medians, -np.inf).max(axis=-1) for sign in (1.0, -1.0)])


def _trailing_median_where_needed(y: FloatArray, z: FloatArray, k: int, limit: float) -> FloatArray:
    """Median of each point and the ``k - 1`` before it, computed only where it can pass ``limit``.

    A median beyond ``limit`` needs half of its points beyond it; points where fewer than half of the
    window lie even two thirds as far out (each judged against its own block's level, which moves
    little from one block to the next) are left NaN: they cannot be a sustained deviation. The cost
    is a cumulative sum plus a small sort per candidate, not a sort of every window.
    """
    m = y.shape[-1]
    need = -(-k // 2)
    out = np.full(y.shape, np.nan)
    hi = np.arange(1, m + 1)
    lo = np.maximum(hi - k, 0)
    far = np.abs(z) > limit * 2 / 3
    total = np.concatenate((np.zeros((*y.shape[:-1], 1), dtype=np.int32), np.cumsum(far, axis=-1, dtype=np.int32)), -1)
    rows, cols = np.nonzero(total[..., hi] - total[..., lo] >= need)
    if rows.size:
        flat_rows = y.reshape(-1, m)
        padded = np.concatenate((np.repeat(flat_rows[:, :1], k - 1, axis=-1), flat_rows), axis=-1)
        out.reshape(-1, m)[rows, cols] = _median_of_windows(padded[rows[:, None], cols[:, None] + np.arange(k)], need)
    return out


def score(x: FloatArray, step: float, cfg: DetectorConfig) -> Scored:
    """Score every point of each row of ``x`` (series on a shared grid of ``step`` seconds).

    Three choices keep scores comparable and flags sparse on data the defaults were not tuned on:

    * the scale is floored at the series' resolution as well as 1% of its level, and a series whose
      baseline window never moved (a counter sitting at zero) reports ``|z|`` of at most ``spike_z``:
      a departure from a flat line is certain but has no size to rank by, so one stray count does
      not outrank a latency quadrupling;
    * spans are in points with a floor (``min_sustained_points``), so a series sampled every 30-60
      minutes does not judge "sustained" on one point;
    * "beyond the past week's range" is the range of the points *not flagged* (an extreme reached
      twice counts as range): one large spike does not raise the bar for the next one. Blocks of
      ``hop`` points are judged in time order, each against the extremes of the blocks before it
      (and every earlier point of its own block, so that a level shift flags its onset, not every
      point until the baseline catches up).
    """
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
    q1, level, q3 = _trailing_quartiles(y, window, hop)
    iqr = q3 - q1
    resolution = _resolution(y, hop, max(1, -(-window // hop)))[..., : level.shape[-1]]
    floor = np.maximum(cfg.relative_scale_floor * np.abs(level), resolution)
    flat = (iqr <= 0) & (resolution <= 0)  # the baseline window holds one value only
    scale = np.maximum(np.maximum(iqr / _IQR_TO_SIGMA, floor), 1e-9)
    blocks = level.shape[-1]
    warmup = min(int(window * cfg.warmup_windows), max(cfg.min_history_points, m // 4))
    lvl = np.repeat(level, hop, axis=-1)[..., :m]
    sc = np.repeat(scale, hop, axis=-1)[..., :m]
    lvl[..., :warmup] = np.nan

    k = max(round(cfg.sustained_seconds / step), cfg.min_sustained_points)
    history = max(1, round(cfg.range_history_seconds / step / hop))
    with np.errstate(invalid="ignore"):
        z = (y - lvl) / sc
        finite = np.isfinite(x)
        smooth = _trailing_median_where_needed(y, z, k, cfg.sustained_z)
        z_smooth = (smooth - lvl) / sc
        candidates = (
            _per_block((z > cfg.spike_z) & finite, hop, False),
            _per_block((z < -cfg.spike_z) & finite, hop, False),
            _per_block((z_smooth > cfg.sustained_z) & finite, hop, False),
            _per_block((z_smooth < -cfg.sustained_z) & finite, hop, False),
        )
    yb, sb = _per_block(y, hop, np.nan), _per_block(smooth, hop, np.nan)
    # The held levels only matter to series with a sustained candidate: computed for those alone.
    rows = (candidates[2] | candidates[3]).reshape(-1, blocks * hop).any(axis=-1)
    held = np.full((2, *x.shape[:-1], blocks), -np.inf)
    if rows.any():
        held.reshape(2, -1, blocks)[:, rows] = _held_levels(y.reshape(-1, m)[rows], k, hop)
    flags = _judge_blocks(yb, sb, level[..., :, None], candidates, history, cfg.range_margin, held)
    flags = flags.reshape(*x.shape[:-1], blocks * hop)[..., :m]
    if flat.any():
        z = np.where(np.repeat(flat, hop, axis=-1)[..., :m], np.clip(z, -cfg.spike_z, cfg.spike_z), z)
    expected = lvl + profile
    return Scored(values=x, expected=expected, z=z, flags=flags, warmup=warmup)


def _judge_blocks(
    yb: FloatArray,
    sb: FloatArray,
    lvl_b: FloatArray,
    candidates: tuple[BoolArray, BoolArray, BoolArray, BoolArray],
    history: int,
    margin: float,
    held: FloatArray,
) -> BoolArray:
    """Flags per block: candidates beyond the range of up to ``history`` earlier blocks.

    The range of single points is made of the points that were not flagged, plus the second most
    extreme flagged one: an excursion the series has made twice is part of its range (routine
    bursts stay quiet), one made once is not (it does not hide the next anomaly). For sustained
    deviations the range is that of the short-span medians (``held``): a level the series held
    is part of its range, which is what makes a level shift flag at its onset only.
    """
    up_spike, down_spike, up_shift, down_shift = candidates
    lead, blocks = yb.shape[:-2], yb.shape[-2]
    # Per direction (0 up, 1 down; values as sign * value so that larger is more extreme) and block:
    # the extreme unflagged value, the top two flagged values, and the extreme short-span median.
    kept = np.full((2, *lead, blocks), -np.inf)
    top1 = np.full((2, *lead, blocks), -np.inf)
    top2 = np.full((2, *lead, blocks), -np.inf)
    flags = np.zeros(yb.shape, dtype=bool)
    axes = tuple(range(len(lead)))
    any_candidate: BoolArray = np.asarray((up_spike | down_spike | up_shift | down_shift).any(axis=axes).any(axis=-1))
    no_flags: BoolArray = np.zeros(yb.shape[:-2] + yb.shape[-1:], dtype=bool)
    signs = ((0, 1.0), (1, -1.0))
    for b in range(blocks):
        first = max(0, b - history)
        y = yb[..., b, :]
        flagged = no_flags
        if bool(any_candidate[b]):
            if b > first:
                both = np.concatenate((top1[..., first:b], top2[..., first:b]), axis=-1)
                second = -np.partition(-both, 1, axis=-1)[..., 1]
                bar = np.maximum(kept[..., first:b].max(axis=-1), second)  # (2, *lead)
                sustained = held[..., first:b].max(axis=-1)
            else:
                bar = sustained = np.full((2, *lead), -np.inf)
            level = lvl_b[..., b, :]
            s = sb[..., b, :]
            with np.errstate(invalid="ignore"):
                hi = np.fmax(bar[0][..., None], _before(y, np.fmax))
                lo = np.fmin(-bar[1][..., None], _before(y, np.fmin))
                shi = np.fmax(sustained[0][..., None], _before(s, np.fmax))
                slo = np.fmin(-sustained[1][..., None], _before(s, np.fmin))
                flagged = (
                    (up_spike[..., b, :] & (y > hi + margin * (hi - level)))
                    | (down_spike[..., b, :] & (y < lo - margin * (level - lo)))
                    | (up_shift[..., b, :] & (s > shi))
                    | (down_shift[..., b, :] & (s < slo))
                )
            flags[..., b, :] = flagged
            for d, sign in signs:
                v = np.where(flagged & np.isfinite(y), sign * y, -np.inf)
                part = -np.partition(-v, 1, axis=-1) if v.shape[-1] > 1 else np.concatenate((v, v * 0 - np.inf), -1)
                top1[d, ..., b], top2[d, ..., b] = part[..., 0], part[..., 1]
        ok = np.isfinite(y) & ~flagged
        for d, sign in signs:
            kept[d, ..., b] = np.where(ok, sign * y, -np.inf).max(axis=-1)
    return flags


def _before(a: FloatArray, ufunc: np.ufunc) -> FloatArray:
    """The running extreme of the points before each point (NaN where none is finite)."""
    running = ufunc.accumulate(a, axis=-1)
    out: FloatArray = np.concatenate((np.full((*a.shape[:-1], 1), np.nan), running[..., :-1]), axis=-1)
    return out
