"""Typed fields become PromQL safely; the same selection evaluates in process like PromQL."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from opsgate.durations import format_duration, parse_duration
from opsgate.metrics.aggregate import counter_rate, evaluate
from opsgate.metrics.backends.base import Series
from opsgate.metrics.contracts import CompareInput, QueryInput
from opsgate.metrics.selection import Matcher, Selection, parse_matcher


def test_typed_fields_render_as_promql() -> None:
    sel = Selection(
        "http_requests_total",
        (Matcher("namespace", "=", "shop"), parse_matcher('code=~"5.."')),
        aggregation="rate",
        by=("service",),
        rate_window_s=300,
    )
    assert sel.promql() == 'sum by (service) (rate(http_requests_total{namespace="shop",code=~"5.."}[300s]))'
    q = Selection("latency_p99_seconds", aggregation="quantile", by=("service",), quantile=0.9)
    assert q.promql() == "quantile by (service) (0.9, latency_p99_seconds)"


def test_label_values_cannot_smuggle_query_text() -> None:
    evil = Matcher("service", "=", 'x"} or vector(1) or up{a="')
    rendered = Selection("up", (evil,)).promql()
    assert rendered == 'up{service="x\\"} or vector(1) or up{a=\\""}'
    assert parse_matcher(evil.promql()) == evil  # round trip


@pytest.mark.parametrize("text", ["service", 'service=="x"', '1abc="x"', 'code=~"(("'])
def test_bad_matchers_are_refused_by_name(text: str) -> None:
    with pytest.raises(ValidationError, match=r"label matcher|regular expression"):
        QueryInput(metric="up", match=[text])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"metric": "up", "raw_query": "up"}, "either raw_query or the typed fields"),
        ({"metric": "up", "aggregation": "quantile"}, "needs `quantile`"),
        ({"metric": "up", "by": ["service"]}, "`by` needs an aggregation"),
        ({"metric": "up", "since": "1h", "start": 0}, "either `since` or `start`"),
        ({"metric": "up", "since": "an hour"}, "pattern"),
        ({"metric": "up{x=1}"}, "pattern"),
    ],
)
def test_inconsistent_arguments_are_refused(args: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        QueryInput.model_validate(args)


def test_compare_needs_a_moment() -> None:
    with pytest.raises(ValidationError, match="at"):
        CompareInput.model_validate({"metric": "up"})


def test_durations() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("2d") == 172_800 and parse_duration("500ms") == 0.5
    assert format_duration(93_784) == "1d2h3m4s"
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("5 minutes")


def _series(labels: dict[str, str], values: list[float]) -> Series:
    return Series(labels, np.arange(len(values), dtype=np.float64) * 60, np.array(values, dtype=np.float64), "m")


def test_in_process_aggregation_follows_promql() -> None:
    raw = [
        _series({"service": "a", "pod": "a-0"}, [1, 2, 3]),
        _series({"service": "a", "pod": "a-1"}, [3, np.nan, 5]),
        _series({"service": "b", "pod": "b-0"}, [10, 10, 10]),
    ]
    by_service = {
        agg: {
            s.labels["service"]: s.values.tolist()
            for s in evaluate(Selection("m", aggregation=agg, by=("service",)), raw, 60)
        }
        for agg in ("sum", "avg", "max", "min", "count")
    }
    assert by_service["sum"] == {"a": [4, 2, 8], "b": [10, 10, 10]}
    assert by_service["avg"]["a"] == [2, 2, 4] and by_service["count"]["a"] == [2, 1, 2]
    assert by_service["max"]["a"] == [3, 2, 5] and by_service["min"]["a"] == [1, 2, 3]
    (total,) = evaluate(Selection("m", aggregation="sum"), raw, 60)
    assert total.labels == {} and total.values.tolist() == [14, 12, 18]
    picked = evaluate(Selection("m", (parse_matcher('pod!~"a-.*"'),)), raw, 60)
    assert [s.labels["pod"] for s in picked] == ["b-0"]


def test_counter_rate_counts_resets() -> None:
    counter = np.array([[0, 60, 120, 30, 90]], dtype=np.float64)  # a restart after 120
    rate = counter_rate(counter, 60, 60)
    assert np.isnan(rate[0, 0]) and rate[0, 1:].tolist() == [1.0, 1.0, 0.5, 1.0]


def test_prometheus_points_land_on_their_own_steps_when_the_sent_start_was_rounded_up() -> None:
    """A range answer with gaps is put back on the grid; its times come from the start as sent (ms
    precision), which may be rounded up: each point must still land on its own step, not the next."""
    import numpy as np

    from opsgate.metrics.backends.base import Series
    from opsgate.metrics.backends.prometheus import _on_grid

    start = 1_796_000_000.0006  # sent as "1796000000.001"
    grid = start + 60.0 * np.arange(5)
    sent = float(f"{start:.3f}")
    answer = Series({}, np.array([sent + 60.0, sent + 120.0]), np.array([1.0, 2.0]), "m")
    placed = _on_grid(answer, grid)
    assert np.isnan(placed.values[0]) and placed.values[1] == 1.0 and placed.values[2] == 2.0
    assert np.isnan(placed.values[3:]).all()
