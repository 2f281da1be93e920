"""Turning per-point flags into :class:`Anomaly` events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Anomaly:
    """One anomalous stretch of a series.

    ``magnitude`` is the robust z-score at the peak (deviation from the baseline in units of the
    series' own robust spread, signed); ``score`` ranks anomalies across series: the peak |z|,
    raised a little for anomalies that last.
    """

    start: float  # unix seconds of the first anomalous point
    end: float  # unix seconds of the last anomalous point
    peak_time: float
    direction: Literal["up", "down"]
    score: float
    magnitude: float
    baseline: float  # expected value at the peak
    observed: float  # observed value at the peak


def events(
    times: FloatArray,
    values: FloatArray,
    expected: FloatArray,
    z: FloatArray,
    flags: NDArray[np.bool_],
    merge_gap: int,
    lead_in: int = 0,
    lead_z: float = np.inf,
) -> list[Anomaly]:
    """One anomaly per group of flags whose gaps are at most ``merge_gap`` grid steps.

    A sustained deviation is flagged only once it has lasted a while; its start is moved back over
    up to ``lead_in`` earlier points that already deviated the same way by more than ``lead_z``.
    """
    idx = np.flatnonzero(flags)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > merge_gap)
    firsts = np.concatenate(([0], breaks + 1))
    lasts = np.concatenate((breaks, [idx.size - 1]))
    out: list[Anomaly] = []
    for f, last in zip(firsts.tolist(), lasts.tolist(), strict=True):
        members = idx[f : last + 1]
        peak = int(members[np.argmax(np.abs(z[members]))])
        peak_z = float(z[peak])
        first = int(members[0])
        sign = 1.0 if peak_z > 0 else -1.0
        while first > 0 and int(members[0]) - first < lead_in and sign * z[first - 1] > lead_z:
            first -= 1
        out.append(
            Anomaly(
                start=float(times[first]),
                end=float(times[members[-1]]),
                peak_time=float(times[peak]),
                direction="up" if peak_z > 0 else "down",
                score=abs(peak_z) * (1.0 + float(np.log1p(members.size)) / 4),
                magnitude=peak_z,
                baseline=float(expected[peak]),
                observed=float(values[peak]),
            )
        )
    return out
