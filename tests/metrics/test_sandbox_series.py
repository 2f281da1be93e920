"""The sandbox's series: deterministic, seasonal, and the bad deploy ends when the timeline says so."""

from __future__ import annotations

import numpy as np

from opsgate.sandbox.series import (
    ERROR_RATIO_ADDED,
    LATENCY_FACTOR,
    SandboxSeries,
    SandboxTimeline,
    sample_times,
)

T0 = 1_800_000_000.0


def test_same_seed_same_values_different_seed_different_values() -> None:
    times = sample_times(T0, T0 + 3600)
    a = SandboxSeries(seed=1, timeline=SandboxTimeline())
    b = SandboxSeries(seed=1, timeline=SandboxTimeline())
    c = SandboxSeries(seed=2, timeline=SandboxTimeline())
    keys = a.keys_of("latency_p99_seconds")
    assert np.array_equal(a.values(keys, times), b.values(keys, times))
    assert not np.allclose(a.values(keys, times), c.values(keys, times))
    # any sub-window gives the very same samples (values are a function of time, not of the request)
    assert np.array_equal(a.values(keys, times[10:20]), a.values(keys, times)[:, 10:20])


def test_daily_seasonality_peaks_in_the_afternoon() -> None:
    s = SandboxSeries(timeline=SandboxTimeline())
    day = sample_times(T0 - T0 % 86_400, T0 - T0 % 86_400 + 86_399)
    rate = s.values(s.keys_of("request_rate"), day).mean(axis=0)
    assert 12 <= int(np.argmax(rate)) // 60 <= 16 and 0 <= int(np.argmin(rate)) // 60 <= 4


def test_bad_deploy_raises_checkout_until_rollback_set_at_runtime() -> None:
    timeline = SandboxTimeline(deploy_at=T0)
    s = SandboxSeries(timeline=timeline)
    latency = s.keys_of("latency_p99_seconds")
    checkout = [k for k in latency if k.label_dict["service"] == "checkout"]
    errors = [k for k in s.keys_of("error_ratio") if k.label_dict["service"] == "checkout"]
    before, during, after = (
        sample_times(T0 - 1800, T0 - 60),
        sample_times(T0 + 300, T0 + 1800),
        sample_times(T0 + 3900, T0 + 5400),
    )
    ratio = np.median(s.values(checkout, during)) / np.median(s.values(checkout, before))
    assert abs(ratio - LATENCY_FACTOR) < 0.5
    assert np.median(s.values(errors, during)) > ERROR_RATIO_ADDED * 0.8
    assert np.median(s.values(checkout, after)) > 2 * np.median(s.values(checkout, before))  # not rolled back yet
    timeline.roll_back(at=T0 + 3600)
    assert abs(np.median(s.values(checkout, after)) / np.median(s.values(checkout, before)) - 1) < 0.25
    others = [k for k in latency if k.label_dict["service"] != "checkout"]
    assert abs(np.median(s.values(others, during)) / np.median(s.values(others, before)) - 1) < 0.2


def test_counter_is_monotonic_and_its_rate_is_the_request_rate() -> None:
    s = SandboxSeries(timeline=SandboxTimeline(), pods_per_service=3)
    assert len(s.keys_of("http_requests_total")) == 12
    times = sample_times(T0, T0 + 7200)
    counter = s.values(s.keys_of("http_requests_total"), times)
    assert (np.diff(counter, axis=1) > 0).all()
    rate = np.diff(counter, axis=1).mean(axis=1) / 60
    gauge = s.values(s.keys_of("request_rate"), times).mean(axis=1)
    np.testing.assert_allclose(rate, gauge, rtol=0.02)
