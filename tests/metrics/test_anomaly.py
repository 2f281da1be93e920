"""Behaviour of the metric anomaly detector, and its figures on the NAB labelled series."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from opsgate.metrics.anomaly import (
    DetectorConfig,
    InsufficientDataError,
    detect,
    flag_points,
    rank_series,
    rank_series_with_skips,
)
from tests.conftest import DATASETS

STEP = 300.0
DAY = 288  # points per day at a five-minute step
T0 = 1_700_000_000.0
REPO = Path(__file__).resolve().parents[2]
NAB = DATASETS / "nab"

FloatArray = NDArray[np.float64]


def seasonal(days: int = 5, seed: int = 0, level: float = 100.0) -> tuple[FloatArray, FloatArray]:
    rng = np.random.default_rng(seed)
    n = days * DAY
    t = T0 + STEP * np.arange(n, dtype=np.float64)
    v = level * (1 + 0.3 * np.sin(2 * np.pi * np.arange(n) / DAY)) + rng.normal(0, 0.03 * level, n)
    return t, v


def test_spike_is_found_with_its_direction_and_start() -> None:
    t, v = seasonal()
    at = 4 * DAY + 100
    v[at] += 80.0
    found = detect(t, v)
    assert len(found) == 1
    a = found[0]
    assert a.direction == "up"
    assert a.start == t[at] == a.peak_time
    assert a.observed == pytest.approx(v[at])
    assert a.magnitude > 6
    assert abs(a.baseline - (v[at] - 80.0)) < 15  # the baseline is the seasonal expectation


def test_dip_is_found_going_down() -> None:
    t, v = seasonal(seed=1)
    at = 4 * DAY + 30
    v[at : at + 12] -= 60.0
    found = detect(t, v)
    assert [a.direction for a in found] == ["down"]
    assert t[at] <= found[0].start <= t[at + 2]


def test_level_shift_is_found_near_its_onset() -> None:
    t, v = seasonal(seed=2)
    at = 4 * DAY + 50
    v[at:] += 50.0
    found = detect(t, v)
    assert found, "a 50% level shift went unnoticed"
    first = found[0]
    assert first.direction == "up"
    assert abs(first.start - t[at]) <= 3 * STEP
    assert first.observed - first.baseline > 30


def test_shift_flags_its_onset_not_every_later_point() -> None:
    t, v = seasonal(seed=3)
    at = 3 * DAY
    v[at:] += 50.0
    result = flag_points(t, v)
    assert result.flags[at : at + 12].any()
    assert result.flags[at:].sum() < 24


@pytest.mark.parametrize("seed", range(5))
def test_clean_seasonal_series_raises_nothing(seed: int) -> None:
    t, v = seasonal(days=7, seed=seed)
    assert detect(t, v) == []


def test_nans_gaps_and_irregular_timestamps_do_not_crash() -> None:
    t, v = seasonal(seed=4)
    rng = np.random.default_rng(9)
    v[rng.choice(v.size, 60, replace=False)] = np.nan
    keep = np.ones(t.size, dtype=bool)
    keep[2 * DAY : 2 * DAY + 40] = False  # a missing stretch
    t = t + rng.uniform(-20, 20, t.size)  # jittered sampling
    at = 4 * DAY + 10
    v[at] += 90.0
    t, v = t[keep], v[keep]
    order = rng.permutation(t.size)  # unsorted input
    found = detect(t[order], v[order])
    assert any(a.direction == "up" and abs(a.peak_time - T0 - at * STEP) < STEP for a in found)


def test_duplicate_timestamps_keep_the_last_value() -> None:
    t, v = seasonal(seed=5)
    t = np.concatenate((t, t[:10]))
    v = np.concatenate((v, v[:10]))
    assert detect(t, v) == []


def test_constant_series_raises_nothing_and_a_step_away_from_it_is_found() -> None:
    t = T0 + STEP * np.arange(3 * DAY, dtype=np.float64)
    flat = np.full(t.size, 42.0)
    assert detect(t, flat) == []
    stepped = flat.copy()
    stepped[2 * DAY + 100 :] = 60.0
    found = detect(t, stepped)
    assert found and found[0].direction == "up"
    assert found[0].start == t[2 * DAY + 100]
    zero = np.zeros(t.size)
    assert detect(t, zero) == []


@pytest.mark.parametrize("size", [0, 1, 5, 50])
def test_short_series_say_so(size: int) -> None:
    t = T0 + STEP * np.arange(size, dtype=np.float64)
    with pytest.raises(InsufficientDataError, match=f"has {size} usable"):
        detect(t, np.ones(size))


def test_all_nan_series_is_too_short() -> None:
    t = T0 + STEP * np.arange(500, dtype=np.float64)
    with pytest.raises(InsufficientDataError, match="has 0 usable"):
        detect(t, np.full(500, np.nan))


def test_series_that_is_mostly_gaps_says_so() -> None:
    t = np.concatenate((T0 + STEP * np.arange(100.0), [T0 + 365 * 86_400.0]))
    with pytest.raises(InsufficientDataError, match="mostly gaps"):
        detect(t, np.ones(t.size))


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        detect(np.arange(10.0), np.arange(11.0))


def test_ranking_orders_by_severity_and_reports_skipped_series() -> None:
    series = {}
    at = 4 * DAY + 60
    for name, bump in (("small", 40.0), ("large", 200.0), ("medium", 80.0)):
        t, v = seasonal(seed=len(name))
        v[at] += bump
        series[name] = (t, v)
    series["quiet"] = seasonal(seed=11)
    series["tiny"] = (np.arange(5.0), np.ones(5))
    ranking = rank_series_with_skips(series, None)
    assert [name for name, _ in ranking.ranked] == ["large", "medium", "small"]
    scores = [a.score for _, a in ranking.ranked]
    assert scores == sorted(scores, reverse=True)
    assert set(ranking.skipped) == {"tiny"}
    assert "usable" in ranking.skipped["tiny"]


def test_ranking_keeps_only_anomalies_in_the_window() -> None:
    early_t, early_v = seasonal(seed=21)
    early_v[3 * DAY] += 150.0
    late_t, late_v = seasonal(seed=22)
    late_v[4 * DAY + 200] += 150.0
    series = {"early": (early_t, early_v), "late": (late_t, late_v)}
    window = (T0 + 4 * DAY * STEP, T0 + 5 * DAY * STEP)
    assert [name for name, _ in rank_series(series, window)] == ["late"]


def test_ranking_many_series_agrees_with_detecting_each() -> None:
    series = {}
    for i in range(12):
        t, v = seasonal(seed=100 + i)
        if i % 3 == 0:
            v[4 * DAY + 7 * i] -= 70.0
        if i % 4 == 1:  # a different grid: shorter and offset, scored in its own group
            t, v = t[DAY // 2 :], v[DAY // 2 :]
        series[f"s{i}"] = (t, v)
    ranked = rank_series(series, None)
    one_by_one = sorted(
        ((name, a) for name, (t, v) in series.items() for a in detect(t, v)),
        key=lambda item: item[1].score,
        reverse=True,
    )
    assert ranked == one_by_one
    assert {name for name, _ in ranked} == {"s0", "s3", "s6", "s9"}


def test_non_seasonal_noisy_series_spike_is_found() -> None:
    rng = np.random.default_rng(31)
    n = 4 * DAY
    t = T0 + STEP * np.arange(n, dtype=np.float64)
    v = 50 + rng.normal(0, 2, n)
    v[3 * DAY] = 90
    found = detect(t, v, DetectorConfig())
    assert [(a.direction, a.peak_time) for a in found] == [("up", t[3 * DAY])]


def _load_bench_nab() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_nab", REPO / "bench" / "bench_nab.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


@pytest.mark.shared_data("nab")
def test_nab_windows_found_and_false_positives_beat_the_rolling_z_baseline() -> None:
    bench = _load_bench_nab()
    files = bench.load_nab(NAB)
    assert len(files) == 28
    ours = bench.totals([bench.detector_tally(f) for f in files])
    base = bench.totals([bench.baseline_tally(f) for f in files])
    assert ours.windows == base.windows == 36
    # The baseline as specified: 27 windows and about 650 false-positive points.
    assert base.found == 27
    assert 600 <= base.false_points <= 700
    # Measured: 27 windows, 63 false-positive points. The issue-13 goal: windows found >= the rolling
    # z-score's, with at most a tenth of its false-positive points.
    assert ours.found >= base.found
    assert ours.false_points * 10 <= base.false_points


def test_one_day_at_one_minute_finds_a_spike() -> None:
    rng = np.random.default_rng(41)
    n = 1440
    t = T0 + 60.0 * np.arange(n, dtype=np.float64)
    v = 20 + rng.normal(0, 1, n)
    v[1200] = 45
    found = detect(t, v)
    assert [(a.direction, a.peak_time) for a in found] == [("up", t[1200])]


@settings(max_examples=60, deadline=None)
@given(
    values=hnp.arrays(
        np.float64,
        st.integers(0, 700),
        elements=st.one_of(st.floats(-1e12, 1e12), st.just(np.nan), st.just(np.inf)),
    ),
    gaps=st.integers(0, 5),
)
def test_arbitrary_values_either_judge_or_say_too_short(values: FloatArray, gaps: int) -> None:
    t = T0 + STEP * np.arange(values.size, dtype=np.float64)
    if gaps and values.size:
        t = t + STEP * gaps * (np.arange(values.size) % 7 == 0).cumsum()
    try:
        found = detect(t, values)
    except InsufficientDataError:
        assert np.count_nonzero(np.isfinite(values)) < 61
        return
    for a in found:
        assert a.start <= a.peak_time <= a.end
        assert a.direction in ("up", "down")
        assert np.isfinite(a.score)


# -- failure modes seen on unseen data (issue 13): each of these failed before the fix ---------------


def test_a_counter_at_zero_ticking_up_does_not_outrank_latency_quadrupling() -> None:
    rng = np.random.default_rng(51)
    n = 5 * DAY
    t = T0 + STEP * np.arange(n, dtype=np.float64)
    p99 = 0.2 + rng.normal(0, 0.02, n)
    p99[n - 30 : n - 18] *= 4  # an hour of p99 latency four times its usual
    zero = np.zeros(n)
    zero[n - 25] = 3.0  # one stray count on a series sitting at zero
    counts = rng.poisson(0.2, n).astype(np.float64)  # a sparse counter: mostly 0, sometimes 1 or 2
    counts[n - 25] = 3.0
    ranked = rank_series({"p99": (t, p99), "zero": (t, zero), "counts": (t, counts)}, None)
    assert ranked[0][0] == "p99"
    p99_score = ranked[0][1].score
    assert all(a.score < p99_score / 2 for name, a in ranked if name != "p99")
    assert all(abs(a.magnitude) <= DetectorConfig().spike_z for name, a in ranked if name == "zero")
    assert "counts" not in {name for name, _ in ranked}  # 3 on a counter of resolution 1 is z = 3


@pytest.mark.parametrize("step_minutes", [30, 60])
def test_a_series_sampled_every_30_to_60_minutes_does_not_flood(step_minutes: int) -> None:
    rng = np.random.default_rng(step_minutes)
    step = step_minutes * 60.0
    per_day = round(86_400 / step)
    n = 28 * per_day
    t = T0 + step * np.arange(n, dtype=np.float64)
    daily = 1 + 0.4 * np.sin(2 * np.pi * np.arange(n) / per_day)
    v = 100 * daily * rng.lognormal(0, 0.25, n)  # bursty, as request counts and latencies are
    assert len(detect(t, v)) <= 2
    v[20 * per_day + 3 : 20 * per_day + 9] *= 4  # and a real six-point surge is still found
    assert any(abs(a.start - t[20 * per_day + 3]) <= 2 * step for a in detect(t, v))


def test_one_large_spike_does_not_hide_the_next_for_a_week() -> None:
    rng = np.random.default_rng(61)
    n = 7 * DAY
    t = T0 + STEP * np.arange(n, dtype=np.float64)
    v = 50 + rng.normal(0, 1, n)
    v[3 * DAY] = 500.0  # a huge spike ...
    v[4 * DAY] = 75.0  # ... then a day later one of 25 sigma, far beyond anything normal
    v[5 * DAY] = 75.0  # ... and a third as large as the second: recurring, so now part of the range
    peaks = [a.peak_time for a in detect(t, v)]
    assert t[3 * DAY] in peaks and t[4 * DAY] in peaks
