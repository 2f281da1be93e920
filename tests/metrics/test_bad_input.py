"""What bad input and failing backends get: a clear tool error naming the problem, audited, in time."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from mcp import Client
from mcp_types import TextContent

from opsgate.config import LocalCaller, Settings
from opsgate.server import App
from tests.metrics.azure_loopback import AzureLoopback
from tests.metrics.conftest import BACKENDS
from tests.metrics.incident import END
from tests.support.azure import StaticTokenCredential

MODE = "2026-07-28"


async def _error(app: App, tool: str, args: dict[str, Any]) -> str:
    async with Client(app.server, mode=MODE) as client:
        result = await client.call_tool(tool, args)
    assert result.is_error, result.content
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def _outcomes(app: App) -> list[str]:
    return [r.record["outcome"] for r in app.gate.audit.records()]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sre(tmp_path: Any) -> Settings:
    return Settings(state_dir=tmp_path / "sre", caller=LocalCaller(subject="local:sre", roles=["sre"]))


async def test_invalid_promql_surfaces_prometheus_own_error(metrics_app: Callable[..., App], tmp_path: Any) -> None:
    app = metrics_app("prometheus", settings=_sre(tmp_path))
    text = await _error(app, "metrics_query", {"raw_query": "sum(rate(x[5m]", "start": END - 600, "end": END})
    assert "Prometheus rejected the query (bad_data)" in text and "parse error" in text
    assert _outcomes(app) == ["error"]


async def test_raw_promql_is_allowed_for_sre_and_denied_for_responders(
    metrics_app: Callable[..., App], tmp_path: Any
) -> None:
    args = {"raw_query": 'max by (service) (error_ratio{namespace="shop"})', "start": END - 600, "end": END}
    sre = metrics_app("prometheus", settings=_sre(tmp_path))
    async with Client(sre.server, mode=MODE) as client:
        ok = await client.call_tool("metrics_query", args)
    assert not ok.is_error and len(ok.structured_content["items"]) == 4
    responder = metrics_app("prometheus")
    text = await _error(responder, "metrics_query", args)
    assert "read.raw_query.role_required" in text and "typed" in text
    assert _outcomes(responder) == ["denied"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_end_before_start_is_invalid_input(metrics_app: Callable[..., App], backend: str) -> None:
    app = metrics_app(backend)
    text = await _error(app, "metrics_query", {"metric": "error_ratio", "start": END, "end": END - 600})
    assert "must be after start" in text
    assert _outcomes(app) == ["invalid"]


async def test_a_step_that_would_return_millions_of_points_is_denied_before_the_backend(
    metrics_app: Callable[..., App], azure_endpoint: AzureLoopback
) -> None:
    args = {"metric": "error_ratio", "start": END - 30 * 86_400, "end": END, "step": "1s"}
    unreachable = metrics_app("prometheus", url=f"http://127.0.0.1:{_closed_port()}")
    text = await _error(unreachable, "metrics_query", args)
    # denied by policy, not "unreachable": the backend was never asked
    assert "read.point_budget_exceeded" in text and "2592001 points" in text and "raise the step" in text
    record = list(unreachable.gate.audit.records())[-1].record
    assert record["outcome"] == "denied" and record["facts"]["estimated_points"] == 2_592_001
    azure = metrics_app("azure")
    before = len(azure_endpoint.requests)
    assert "read.point_budget_exceeded" in await _error(azure, "metrics_anomalies", {**args, "baseline": "30d"})
    assert len(azure_endpoint.requests) == before


@pytest.mark.parametrize("backend", BACKENDS)
async def test_unknown_metric_says_no_series_named_it(metrics_app: Callable[..., App], backend: str) -> None:
    app = metrics_app(backend)
    text = await _error(app, "metrics_query", {"metric": "latency_p99_secs", "start": END - 600, "end": END})
    assert "no series named 'latency_p99_secs'" in text
    if backend != "azure":
        assert "did you mean latency_p99_seconds" in text
    assert _outcomes(app) == ["error"]


async def test_label_filters_that_match_nothing_are_an_empty_answer(metrics_app: Callable[..., App]) -> None:
    app = metrics_app("prometheus")
    async with Client(app.server, mode=MODE) as client:
        result = await client.call_tool("metrics_query", {"metric": "error_ratio", "service": "nope", "since": "10m"})
    assert not result.is_error
    assert result.structured_content["items"] == [] and "no series matched" in result.structured_content["note"]


async def test_unreachable_prometheus_is_a_clear_backend_error(metrics_app: Callable[..., App]) -> None:
    port = _closed_port()
    app = metrics_app("prometheus", url=f"http://127.0.0.1:{port}", timeout_s=2)
    started = time.monotonic()
    text = await _error(app, "metrics_query", {"metric": "error_ratio", "since": "10m"})
    assert f"backend unavailable: Prometheus at http://127.0.0.1:{port} is unreachable" in text
    assert time.monotonic() - started < 30  # within the contract's timeout
    assert _outcomes(app) == ["error"]


async def test_azure_429_is_retried_then_reported(
    metrics_app: Callable[..., App], azure_endpoint: AzureLoopback
) -> None:
    app = metrics_app("azure", retry_total=1)
    azure_endpoint.always_fail = (429, {"Retry-After": "1"})
    before = len(azure_endpoint.requests)
    try:
        text = await _error(app, "metrics_query", {"metric": "error_ratio", "since": "10m"})
    finally:
        azure_endpoint.always_fail = None
    assert "throttled the query (HTTP 429 Too Many Requests)" in text and "after 1 retries" in text
    assert len(azure_endpoint.requests) - before == 2  # the SDK retried once, as bounded


async def test_azure_one_429_is_absorbed_by_the_sdk_retry(
    metrics_app: Callable[..., App], azure_endpoint: AzureLoopback
) -> None:
    app = metrics_app("azure")
    azure_endpoint.failures = [(429, {"Retry-After": "1"})]
    async with Client(app.server, mode=MODE) as client:
        result = await client.call_tool(
            "metrics_query", {"metric": "error_ratio", "service": "checkout", "since": "10m"}
        )
    assert not result.is_error and len(result.structured_content["items"]) == 1


async def test_azure_5xx_is_a_backend_error_after_bounded_retries(
    metrics_app: Callable[..., App], azure_endpoint: AzureLoopback
) -> None:
    app = metrics_app("azure", retry_total=2, retry_backoff_max_s=0.2)
    azure_endpoint.always_fail = (503, {})
    try:
        text = await _error(app, "metrics_query", {"metric": "error_ratio", "since": "10m"})
    finally:
        azure_endpoint.always_fail = None
    assert "backend unavailable: Azure Monitor failed (HTTP 503) after 2 retries" in text
    assert _outcomes(app) == ["error"]


async def test_azure_long_retry_after_hits_the_deadline_with_the_reason(
    metrics_app: Callable[..., App], azure_endpoint: AzureLoopback
) -> None:
    app = metrics_app("azure", timeout_s=1.5)
    azure_endpoint.always_fail = (429, {"Retry-After": "60"})
    started = time.monotonic()
    try:
        text = await _error(app, "metrics_query", {"metric": "error_ratio", "since": "10m"})
    finally:
        azure_endpoint.always_fail = None
    assert time.monotonic() - started < 10
    assert "did not answer within 1.5s (last answer HTTP 429, Retry-After 60s" in text


async def test_azure_credential_is_asked_for_the_metrics_audience(metrics_app: Callable[..., App]) -> None:
    app = metrics_app("azure")
    async with Client(app.server, mode=MODE) as client:
        assert not (await client.call_tool("metrics_query", {"metric": "error_ratio", "since": "5m"})).is_error
    capability = next(c for c in app.capabilities if c.name == "metrics")
    assert capability.contracts  # the backend's credential is the test one
    from opsgate.metrics.backends.azure import AzureBackend

    backend = capability.closers[0].__self__  # type: ignore[attr-defined]
    assert isinstance(backend, AzureBackend)
    assert isinstance(backend.credential, StaticTokenCredential)
    assert backend.credential.scopes[0] == ("https://metrics.monitor.azure.com/.default",)
