"""Evaluate a selection's aggregation in process, for backends without a query language of their own.

Inputs are raw series on one shared time grid; results follow PromQL's semantics closely enough that
the same typed query gives the same answer on every backend (labels of an aggregate are its `by`
labels, and its series keeps the selection's metric name for display; `rate` is the per-second
increase of a counter over `rate_window`, resets counted).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from opsgate.metrics.backends.base import Series
from opsgate.metrics.selection import Selection

FloatArray = NDArray[np.float64]


def counter_rate(values: FloatArray, step: float, window_s: float) -> FloatArray:
    """Per-second increase over the trailing `window_s` of counters sampled every `step` (rows = series).

    The first `window_s / step` points have no full window and are NaN.
    """
    k = max(1, round(window_s / step))
    inc = np.diff(values, axis=-1)
    inc = np.where(inc < 0, values[..., 1:], inc)  # a reset: the counter restarted from zero
    csum = np.concatenate((np.zeros((*values.shape[:-1], 1)), np.nancumsum(inc, axis=-1)), axis=-1)
    out = np.full(values.shape, np.nan)
    out[..., k:] = (csum[..., k:] - csum[..., :-k]) / (k * step)
    return out


def evaluate(selection: Selection, series: Sequence[Series], step: float) -> list[Series]:
    """Apply `selection`'s matchers and aggregation to raw series that share one grid."""
    picked = [s for s in series if selection.matches(s.labels)]
    if not picked:
        return []
    times = picked[0].times
    block = np.stack([s.values for s in picked])
    agg = selection.aggregation
    if agg == "none":
        return [Series(dict(s.labels), times, s.values, selection.metric) for s in picked]
    if agg == "rate":
        block = counter_rate(block, step, selection.rate_window_s)
        if not selection.by:
            return [Series(dict(s.labels), times, row, selection.metric) for s, row in zip(picked, block, strict=True)]
        agg = "sum"
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, s in enumerate(picked):
        groups.setdefault(tuple(s.labels.get(b, "") for b in selection.by), []).append(i)
    out: list[Series] = []
    for key, rows in sorted(groups.items()):
        out.append(
            Series(
                {b: v for b, v in zip(selection.by, key, strict=True) if v},
                times,
                _reduce(agg, block[rows], selection),
                selection.metric,
            )
        )
    return out


def _reduce(agg: str, rows: FloatArray, selection: Selection) -> FloatArray:
    finite = np.isfinite(rows)
    count = finite.sum(axis=0).astype(np.float64)
    # an instant where every series has a gap is a gap, not a warning
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if agg == "count":
            return np.where(count > 0, count, np.nan)
        if agg == "sum":
            return np.where(count > 0, np.nansum(rows, axis=0), np.nan)
        if agg == "avg":
            return np.asarray(np.nanmean(rows, axis=0), dtype=np.float64)
        if agg == "max":
            return np.asarray(np.nanmax(rows, axis=0), dtype=np.float64)
        if agg == "min":
            return np.asarray(np.nanmin(rows, axis=0), dtype=np.float64)
        if agg == "quantile":
            q = 0.5 if selection.quantile is None else selection.quantile
            return np.asarray(np.nanquantile(rows, q, axis=0), dtype=np.float64)
    raise ValueError(f"unknown aggregation {agg!r}")
