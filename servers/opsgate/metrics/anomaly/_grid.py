"""Cleaning a raw series and laying it on a regular time grid."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def clean(timestamps: np.ndarray, values: np.ndarray) -> tuple[FloatArray, FloatArray]:
    """Finite points only, sorted by time, one value per timestamp (the last one given)."""
    t = np.asarray(timestamps, dtype=np.float64).ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    if t.shape != v.shape:
        raise ValueError(f"timestamps and values differ in length: {t.size} != {v.size}")
    keep = np.isfinite(t) & np.isfinite(v)
    if not keep.all():
        t, v = t[keep], v[keep]
    if t.size > 1 and bool(np.any(t[1:] <= t[:-1])):
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        last_of_each = np.append(t[1:] > t[:-1], True)
        t, v = t[last_of_each], v[last_of_each]
    return t, v


def grid_step(t: FloatArray) -> float:
    """The series' sampling step: the median gap between consecutive points."""
    return float(np.median(np.diff(t)))


def to_grid(t: FloatArray, v: FloatArray, step: float) -> FloatArray:
    """Values on the grid ``t[0] + step * i``; slots without a point are NaN (a gap)."""
    idx = np.rint((t - t[0]) / step).astype(np.int64)
    if idx[-1] == t.size - 1 and bool(np.all(np.diff(idx) == 1)):
        return v  # already regular: the common case, no copy needed
    grid = np.full(int(idx[-1]) + 1, np.nan)
    grid[idx] = v  # points sharing a slot: the later one wins
    return grid
