"""NaN-aware robust statistics along the last axis, vectorised over any leading axes."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def sorted_rows(a: FloatArray) -> tuple[FloatArray, IntArray]:
    """``a`` sorted along the last axis (NaNs last) and the count of finite values per row."""
    return np.sort(a, axis=-1), np.count_nonzero(np.isfinite(a), axis=-1).astype(np.int64)


def row_quantile(s: FloatArray, n: IntArray, q: float) -> FloatArray:
    """Interpolated quantile of the first ``n`` values of each sorted row (NaN where ``n == 0``)."""
    if n.size and int(n.min()) == int(n.max()) == s.shape[-1]:
        return _full_row_quantile(s, q)
    top = np.maximum(n - 1, 0)
    pos = q * top
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, top)
    a = np.take_along_axis(s, lo[..., None], axis=-1)[..., 0]
    b = np.take_along_axis(s, hi[..., None], axis=-1)[..., 0]
    out: FloatArray = np.where(n > 0, a + (b - a) * (pos - lo), np.nan)
    return out


def _full_row_quantile(s: FloatArray, q: float) -> FloatArray:
    """Quantile of sorted rows without NaNs: a fixed position in every row."""
    pos = q * (s.shape[-1] - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, s.shape[-1] - 1)
    out: FloatArray = s[..., lo] + (s[..., hi] - s[..., lo]) * (pos - lo)
    return out


def trailing_median(y: FloatArray, k: int) -> FloatArray:
    """Median of each point and the ``k - 1`` points before it (NaNs ignored)."""
    if k <= 1:
        return y
    padded = np.concatenate((np.full((*y.shape[:-1], k - 1), np.nan), y), axis=-1)
    s, n = sorted_rows(sliding_window_view(padded, k, axis=-1))
    return row_quantile(s, n, 0.5)


def trailing_blocks(y: FloatArray, window: int, hop: int) -> tuple[FloatArray, IntArray]:
    """Sorted trailing windows: row ``b`` holds the ``window`` points just before index ``b * hop``."""
    m = y.shape[-1]
    blocks = -(-m // hop)
    lead = np.full((*y.shape[:-1], window), np.nan)
    padded = np.concatenate((lead, y[..., : (blocks - 1) * hop]), axis=-1)
    return sorted_rows(sliding_window_view(padded, window, axis=-1)[..., ::hop, :])


def trailing_extremes(y: FloatArray, hop: int, history_blocks: int) -> tuple[FloatArray, FloatArray]:
    """Min and max over all points before each point, back to ``history_blocks`` whole blocks ago."""
    lead, m = y.shape[:-1], y.shape[-1]
    blocks = -(-m // hop)
    padded = np.full((*lead, blocks * hop), np.nan)
    padded[..., :m] = y
    by_block = padded.reshape(*lead, blocks, hop)
    finite = np.isfinite(by_block)
    result: list[FloatArray] = []
    for ufunc, fill in ((np.minimum, np.inf), (np.maximum, -np.inf)):
        src = np.where(finite, by_block, fill)
        per_block = ufunc.reduce(src, axis=-1)
        earlier = np.concatenate((np.full((*lead, history_blocks), fill), per_block[..., :-1]), axis=-1)
        previous = ufunc.reduce(sliding_window_view(earlier, history_blocks, axis=-1), axis=-1)
        within = ufunc.accumulate(src, axis=-1)
        within = np.concatenate((np.full((*lead, blocks, 1), fill), within[..., :-1]), axis=-1)
        both = ufunc(previous[..., None], within).reshape(*lead, blocks * hop)
        result.append(both[..., :m])
    return result[0], result[1]
