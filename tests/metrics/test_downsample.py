"""Point budgets: min/max buckets keep every extreme and never exceed the budget."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from opsgate.metrics.downsample import minmax_downsample


def test_a_one_sample_spike_survives_a_hundredfold_reduction() -> None:
    times = np.arange(4000, dtype=np.float64)
    values = np.sin(times / 300.0)
    values[2717] = 25.0
    values[1234] = -9.0
    t, v = minmax_downsample(times, values, 40)
    assert t.size <= 40
    assert 25.0 in v and -9.0 in v
    assert t[np.argmax(v)] == 2717 and t[np.argmin(v)] == 1234


def test_series_within_the_budget_are_untouched() -> None:
    times = np.arange(30, dtype=np.float64)
    values = np.arange(30, dtype=np.float64)
    t, v = minmax_downsample(times, values, 40)
    assert t is times and v is values


def test_gaps_are_skipped_not_invented() -> None:
    values = np.full(1000, np.nan)
    values[10:20] = 1.0
    values[900] = 3.0
    _, v = minmax_downsample(np.arange(1000, dtype=np.float64), values, 20)
    assert np.isfinite(v).all() and 3.0 in v and set(v.tolist()) == {1.0, 3.0}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=3000),
    st.integers(min_value=2, max_value=300),
)
def test_budget_order_and_extremes_hold_for_any_series(raw: list[float], budget: int) -> None:
    values = np.array(raw)
    times = np.arange(values.size, dtype=np.float64) * 15
    t, v = minmax_downsample(times, values, budget)
    assert t.size <= max(budget, 1) or values.size <= budget
    assert np.all(np.diff(t) > 0)  # time order, no duplicates
    assert v.max() == values.max() and v.min() == values.min()
    assert set(zip(t.tolist(), v.tolist(), strict=True)) <= set(zip(times.tolist(), values.tolist(), strict=True))
