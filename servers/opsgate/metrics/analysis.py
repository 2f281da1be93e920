"""Turning fetched series into ranked anomalies and before/after comparisons."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from opsgate.metrics.anomaly import Anomaly, rank_series_with_skips
from opsgate.metrics.backends.base import Series
from opsgate.metrics.contracts import AnomalyItem, CompareItem, RevisionItem
from opsgate.metrics.selection import series_name
from opsgate.metrics.timewindow import iso

ANOMALY_METHOD = (
    "robust z against each series' own trailing baseline (daily profile when seasonal), "
    "spikes and sustained shifts beyond the past week's range"
)
COMPARE_METHOD = "median after vs median before; z = change / robust spread (IQR) before, floored at 1% of the level"
FLAT_Z = 3.0
ONGOING_POINTS = 5
_IQR_TO_SIGMA = 1.349
FloatArray = NDArray[np.float64]


def _round(x: float | None, digits: int = 4) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


@dataclass(frozen=True)
class Ranked:
    items: list[AnomalyItem]
    skipped: int


def rank(series: Sequence[Series], window: tuple[float, float]) -> Ranked:
    """Anomalies overlapping `window`, most severe first (CPU-bound: run it off the event loop)."""
    named = {series_name(s.metric, s.labels): (s.times, s.values) for s in series}
    ranking = rank_series_with_skips(named, window)
    # One entry per series: its most severe anomaly, starting where its first same-direction episode began
    # (a long incident can be cut into several episodes by a quiet spell).
    earliest: dict[tuple[str, str], float] = {}
    for name, a in ranking.ranked:
        key = (name, a.direction)
        earliest[key] = min(earliest.get(key, a.start), a.start)
    seen: set[str] = set()
    items = []
    for name, ranked in ranking.ranked:
        if name in seen:
            continue
        seen.add(name)
        a = replace(ranked, start=earliest[(name, ranked.direction)])
        times, values = named[name]
        pct = (a.observed - a.baseline) / abs(a.baseline) * 100 if a.baseline else None
        items.append(
            AnomalyItem(
                series=name,
                start=iso(a.start),
                end=iso(a.end),
                peak=iso(a.peak_time),
                direction=a.direction,
                observed=_round(a.observed) or 0.0,
                baseline=_round(a.baseline) or 0.0,
                change_pct=_round(pct, 3),
                z=_round(a.magnitude, 3) or 0.0,
                score=_round(a.score, 3) or 0.0,
                ongoing=_ongoing(a, times, values, window[1]),
            )
        )
    return Ranked(items, len(ranking.skipped))


def _ongoing(a: Anomaly, times: FloatArray, values: FloatArray, end: float) -> bool:
    """Still away from the baseline at the window's end: the median of the last points keeps at least
    half of the peak's deviation, in the same direction (a level shift stays ongoing after the
    detector stops flagging it, because its new level soon stops being "never seen before")."""
    tail = values[(times <= end) & np.isfinite(values)][-ONGOING_POINTS:]
    if tail.size == 0:
        return False
    peak = a.observed - a.baseline
    now = float(np.median(tail)) - a.baseline
    return bool(peak * now > 0 and abs(now) >= 0.5 * abs(peak))


def _shift(
    values: FloatArray, reference: FloatArray
) -> tuple[float, float, float, float | None, Literal["up", "down", "flat"]]:
    """(median of `values`, median of `reference`, z, change in %, direction) of `values` against
    `reference` (both non-empty): z is the change in units of the reference's robust spread (IQR),
    floored at 1% of its level."""
    a, b = float(np.median(values)), float(np.median(reference))
    q1, q3 = np.percentile(reference, [25, 75])
    spread = max(float(q3 - q1) / _IQR_TO_SIGMA, 0.01 * abs(b), 1e-12)
    z = (a - b) / spread
    pct = (a - b) / abs(b) * 100 if b else None
    direction: Literal["up", "down", "flat"] = "flat" if abs(z) < FLAT_Z else ("up" if z > 0 else "down")
    return a, b, z, pct, direction


def compare_revisions(series: Sequence[Series], at: float, label: str) -> list[RevisionItem]:
    """Each revision's pods after `at` against the other revisions' pods in the same span (or, for a
    revision alone after `at`, against every pod before it): a canary's bad pods stand out even when
    they are a small share of the traffic and barely move the aggregate."""
    after: dict[str, list[NDArray[np.float64]]] = {}
    before_all: list[NDArray[np.float64]] = []
    for s in series:
        ok = np.isfinite(s.values)
        before_all.append(s.values[ok & (s.times < at)])
        value = s.labels.get(label)
        if value is None:
            continue
        after.setdefault(value, []).append(s.values[ok & (s.times >= at)])
    items: list[tuple[float, RevisionItem]] = []
    for revision, parts in after.items():
        mine = np.concatenate(parts) if parts else np.array([])
        others_parts = [v for r, ps in after.items() if r != revision for v in ps]
        others = np.concatenate(others_parts) if others_parts else np.array([])
        if others.size == 0:
            others = np.concatenate(before_all) if before_all else np.array([])
        if mine.size == 0 or others.size == 0:
            items.append(
                (
                    -1.0,
                    RevisionItem(
                        revision=revision,
                        pods=len(parts),
                        after=None,
                        others=None,
                        change_pct=None,
                        z=None,
                        direction="unknown",
                    ),
                )
            )
            continue
        a, b, z, pct, direction = _shift(mine, others)
        items.append(
            (
                abs(z),
                RevisionItem(
                    revision=revision,
                    pods=len(parts),
                    after=_round(a),
                    others=_round(b),
                    change_pct=_round(pct, 3),
                    z=_round(z, 3),
                    direction=direction,
                ),
            )
        )
    items.sort(key=lambda pair: pair[0], reverse=True)
    return [item for _, item in items]


def compare(series: Sequence[Series], at: float) -> list[CompareItem]:
    """Each series' median before and after `at`, most changed (in units of its own spread) first."""
    scored: list[tuple[float, CompareItem]] = []
    for s in series:
        ok = np.isfinite(s.values)
        before = s.values[ok & (s.times < at)]
        after = s.values[ok & (s.times >= at)]
        name = series_name(s.metric, s.labels)
        if before.size == 0 or after.size == 0:
            scored.append(
                (
                    -1.0,
                    CompareItem(
                        series=name, before=None, after=None, change=None, change_pct=None, z=None, direction="unknown"
                    ),
                )
            )
            continue
        a, b, z, pct, direction = _shift(after, before)
        item = CompareItem(
            series=name,
            before=_round(b),
            after=_round(a),
            change=_round(a - b),
            change_pct=_round(pct, 3),
            z=_round(z, 3),
            direction=direction,
        )
        scored.append((abs(z), item))
    scored.sort(key=lambda pair: pair[0], reverse=True)
    return [item for _, item in scored]
