"""NaN-aware robust statistics along the last axis, vectorised over any leading axes."""

from __future__ import annotations

import numpy as np
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
