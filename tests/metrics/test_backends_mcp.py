"""The three backends answer the same typed queries through an MCP client session.

Sandbox, a real Prometheus (backfilled with the same incident) and the real Azure SDK against a
loopback endpoint: the values must match the generator, and the incident must look the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from mcp import Client

from opsgate.sandbox.series import LATENCY_FACTOR
from opsgate.server import App
from tests.metrics.conftest import BACKEND_NAMES, BACKENDS
from tests.metrics.incident import DEPLOY, END, SERVICES, incident_series

WINDOW = {"start": END - 7200, "end": END}


async def _call(app: App, mode: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    async with Client(app.server, mode=mode) as client:
        result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


def _expected(metric: str, times: np.ndarray) -> dict[str, np.ndarray]:
    series = incident_series()
    keys = series.keys_of(metric)
    values = series.values(keys, times)
    return {k.label_dict["service"]: row for k, row in zip(keys, values, strict=True)}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_range_query_returns_the_generated_values(
    metrics_app: Callable[..., App], backend: str, wire_mode: str
) -> None:
    app = metrics_app(backend)
    args = {"metric": "latency_p99_seconds", "namespace": "shop", "aggregation": "max", "by": ["service"]}
    out = await _call(app, wire_mode, "metrics_query", {**args, **WINDOW, "step": "1m", "points": 200})
    assert out["backend"] == BACKEND_NAMES[backend] and out["kind"] == "range" and out["step_s"] == 60
    assert out["query"].endswith('max by (service) (latency_p99_seconds{namespace="shop"})') or backend == "azure"
    assert sorted(s["labels"]["service"] for s in out["items"]) == sorted(SERVICES)
    expected = _expected("latency_p99_seconds", WINDOW["start"] + 60.0 * np.arange(121))
    for s in out["items"]:
        assert s["raw_points"] == 121 and len(s["t"]) == 121
        assert "none" in out["downsampling"]
        got = np.array(s["v"], dtype=np.float64)
        np.testing.assert_allclose(got, expected[s["labels"]["service"]], rtol=1e-3)
    checkout = next(s for s in out["items"] if s["labels"]["service"] == "checkout")
    assert checkout["max"] > 2.5 * checkout["min"]  # the bad deploy in the window


@pytest.mark.parametrize("backend", BACKENDS)
async def test_default_range_is_downsampled_and_says_so(metrics_app: Callable[..., App], backend: str) -> None:
    app = metrics_app(backend)
    out = await _call(app, "2026-07-28", "metrics_query", {"metric": "error_ratio", "service": "checkout", **WINDOW})
    (series,) = out["items"]
    assert series["raw_points"] == 121 and len(series["v"]) <= out["points_budget"] == 40
    assert "min/max buckets" in out["downsampling"] and "121" in out["downsampling"]
    assert max(series["v"]) == series["max"]  # the extremes survive the budget
    assert min(series["v"]) == series["min"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_instant_query_per_service(metrics_app: Callable[..., App], backend: str) -> None:
    app = metrics_app(backend)
    args = {"metric": "error_ratio", "aggregation": "avg", "by": ["service"], "instant": True, "end": END}
    out = await _call(app, "2026-07-28", "metrics_query", args)
    values = {s["labels"]["service"]: s["last"] for s in out["items"]}
    expected = {k: float(v[0]) for k, v in _expected("error_ratio", np.array([END])).items()}
    assert values.keys() == expected.keys()
    for service, value in values.items():
        assert value == pytest.approx(expected[service], rel=1e-3)
    assert values["checkout"] > 0.04 > max(v for k, v in values.items() if k != "checkout")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_rate_of_a_counter_matches_the_request_rate(metrics_app: Callable[..., App], backend: str) -> None:
    app = metrics_app(backend)
    window = {"start": END - 3600, "end": END, "step": "5m", "points": 100}
    rate = await _call(
        app,
        "2026-07-28",
        "metrics_query",
        {"metric": "http_requests_total", "aggregation": "rate", "by": ["service"], **window},
    )
    gauge = await _call(
        app,
        "2026-07-28",
        "metrics_query",
        {"metric": "request_rate", "aggregation": "sum", "by": ["service"], **window},
    )
    mean_gauge = {s["labels"]["service"]: np.mean(s["v"]) for s in gauge["items"]}
    for s in rate["items"]:
        assert np.mean([v for v in s["v"] if v is not None]) == pytest.approx(
            mean_gauge[s["labels"]["service"]], rel=0.03
        )


@pytest.mark.parametrize("backend", BACKENDS)
async def test_anomalies_rank_the_bad_deploy_first(
    metrics_app: Callable[..., App], backend: str, wire_mode: str
) -> None:
    app = metrics_app(backend)
    out = await _call(app, wire_mode, "metrics_anomalies", {"namespace": "shop", "since": "3h"})
    assert out["series_scanned"] == 20 and out["series_skipped"] == 0
    top = out["items"][:2]
    assert {a["series"].split("{")[0] for a in top} == {"latency_p99_seconds", "error_ratio"}
    for a in top:
        assert 'service="checkout"' in a["series"] and a["direction"] == "up" and a["ongoing"]
        started = np.datetime64(a["start"].rstrip("Z")).astype("datetime64[s]").astype(int)
        assert abs(started - DEPLOY) <= 300, (a["start"], DEPLOY)
        assert a["z"] > 6 and a["change_pct"] > 100
    latency = next(a for a in top if a["series"].startswith("latency"))
    assert latency["observed"] / latency["baseline"] == pytest.approx(LATENCY_FACTOR, rel=0.25)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_compare_around_the_deploy_puts_checkout_first(metrics_app: Callable[..., App], backend: str) -> None:
    app = metrics_app(backend)
    args = {"metric": "latency_p99_seconds", "aggregation": "max", "by": ["service"], "at": DEPLOY}
    out = await _call(app, "2026-07-28", "metrics_compare", args)
    first, *rest = out["items"]
    assert first["series"] == 'latency_p99_seconds{service="checkout"}' and first["direction"] == "up"
    assert first["change_pct"] == pytest.approx((LATENCY_FACTOR - 1) * 100, rel=0.2)
    assert all(item["direction"] == "flat" for item in rest)
    assert out["series_compared"] == 4


async def test_azure_sdk_sends_the_credential_token_and_batch_request(
    metrics_app: Callable[..., App], azure_endpoint: Any
) -> None:
    app = metrics_app("azure")
    before = len(azure_endpoint.requests)
    await _call(app, "2026-07-28", "metrics_query", {"metric": "cpu_usage_cores", "service": "payments", **WINDOW})
    request = azure_endpoint.requests[before]
    assert request["auth"] == "Bearer loopback-test-token"
    assert request["path"].endswith("/metrics:getBatch")
    assert request["query"]["metricnames"] == ["cpu_usage_cores"] and request["query"]["interval"] == ["PT1M"]
    assert "service eq 'payments'" in request["query"]["filter"][0]
    assert request["body"]["resourceids"]
