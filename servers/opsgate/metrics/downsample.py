"""Point budgets: shrink a series to a few points per series without losing its spikes.

Min/max buckets: the series is cut into ``budget // 2`` buckets of consecutive samples and each
bucket keeps its lowest and its highest sample, in time order. Every extreme of the original
series survives (a one-sample spike is the maximum of its bucket), which averaging or striding
would lose; the cost is one pass of numpy reductions.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

METHOD = "min/max buckets"


def minmax_downsample(times: FloatArray, values: FloatArray, budget: int) -> tuple[FloatArray, FloatArray]:
    """At most `budget` points (budget >= 2) of (times, values), keeping each bucket's min and max.

    NaN values are gaps: a bucket with only gaps contributes nothing.
    """
    if budget < 2:
        raise ValueError("the point budget must be at least 2")
    n = values.size
    if n <= budget:
        return times, values
    buckets = budget // 2
    size = -(-n // buckets)
    padded = np.full(buckets * size, np.nan)
    padded[:n] = values
    blocks = padded.reshape(buckets, size)
    finite = np.isfinite(blocks)
    has_data = finite.any(axis=1)
    lo = np.where(finite, blocks, np.inf).argmin(axis=1)
    hi = np.where(finite, blocks, -np.inf).argmax(axis=1)
    first = np.minimum(lo, hi)
    second = np.maximum(lo, hi)
    offsets = np.arange(buckets) * size
    idx = np.stack((offsets + first, offsets + second), axis=1)[has_data].ravel()
    idx = idx[np.concatenate(([True], np.diff(idx) != 0))] if idx.size else idx
    return times[idx], values[idx]
