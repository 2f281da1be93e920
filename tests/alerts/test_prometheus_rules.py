"""Alerts fired by a real Prometheus from rules over the sandbox's scraped series reach a real Alertmanager,
and `alerts_list` (through an MCP client) shows them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from opsgate.config import Settings
from opsgate.sandbox.world import SandboxWorld
from opsgate.server import build_app
from tests.alerts.alertmanager import BINARY, running_alertmanager
from tests.alerts.prometheus_rules import PROMETHEUS, poll_until, scraping_prometheus

pytestmark = pytest.mark.skipif(
    BINARY is None or PROMETHEUS is None, reason="prometheus or prometheus-alertmanager is not installed"
)
RULES = """groups:
  - name: sandbox
    interval: 1s
    rules:
      - alert: CheckoutHighLatency
        expr: max by (namespace, service) (latency_p99_seconds{service="checkout"}) > 0.8
        for: 0s
        labels: {severity: critical}
        annotations:
          summary: "checkout p99 latency {{ $value }}s above 800 ms"
          runbook_url: runbook://checkout-latency-regression
      - alert: CheckoutLatencyCreeping
        expr: max by (namespace, service) (latency_p99_seconds{service="checkout"}) > 0.5
        for: 1h
        labels: {severity: warning}
        annotations:
          summary: "checkout p99 latency above 500 ms (pending for an hour before it fires)"
"""
DEADLINE_S = 30.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A sandbox world, a real Alertmanager, and a real Prometheus scraping the world and alerting into it."""
    root = tmp_path_factory.mktemp("rules")
    with (
        SandboxWorld("checkout-bad-deploy", mode="frozen") as world,
        running_alertmanager(root / "alertmanager") as alertmanager,
        scraping_prometheus(world, RULES, alertmanager, root / "prometheus") as prometheus,
    ):
        yield {"alertmanager": alertmanager, "prometheus": prometheus}


def _alertmanager_has(url: str, name: str) -> list[dict[str, Any]]:
    found = httpx.get(f"{url}/api/v2/alerts", params={"filter": f'alertname="{name}"'}, timeout=5).json()
    return list(found)


async def test_a_rule_firing_in_real_prometheus_reaches_alertmanager_and_alerts_list(
    tmp_path: Path, stack: dict[str, str]
) -> None:
    alertmanager = stack["alertmanager"]
    poll_until(
        lambda: _alertmanager_has(alertmanager, "CheckoutHighLatency"),
        DEADLINE_S,
        lambda: f"no CheckoutHighLatency in Alertmanager within {DEADLINE_S:g}s",
    )
    app = build_app(Settings(state_dir=tmp_path / "state", alerts={"alertmanager_url": alertmanager}), ["alerts"])
    try:
        async with Client(app.server) as client:
            listed = await client.call_tool("alerts_list", {"namespace": "shop", "service": "checkout"})
    finally:
        await app.aclose()
    assert not listed.is_error, listed.content
    items = listed.structured_content["items"]
    assert [i["name"] for i in items] == ["CheckoutHighLatency"], items
    alert = items[0]
    assert alert["state"] == "firing" and alert["severity"] == "critical"
    assert alert["labels"] == {
        "alertname": "CheckoutHighLatency",
        "namespace": "shop",
        "service": "checkout",
        "severity": "critical",
    }
    assert alert["summary"].startswith("checkout p99 latency 1.") and alert["started"]
    assert alert["runbook_url"] == "runbook://checkout-latency-regression"


def _prometheus_pending(url: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{url}/api/v1/alerts", timeout=5).json()
    return [a for a in body["data"]["alerts"] if a["state"] == "pending"]


async def test_pending_alerts_are_listed_from_prometheus_when_it_is_configured(
    tmp_path: Path, stack: dict[str, str]
) -> None:
    """A rule with `for: 1h` stays pending: Alertmanager never sees it, Prometheus' /api/v1/alerts does."""
    alertmanager, prometheus = stack["alertmanager"], stack["prometheus"]
    poll_until(
        lambda: _prometheus_pending(prometheus) and _alertmanager_has(alertmanager, "CheckoutHighLatency"),
        DEADLINE_S,
        lambda: f"no pending alert in Prometheus and firing one in Alertmanager within {DEADLINE_S:g}s",
    )
    without = build_app(Settings(state_dir=tmp_path / "a", alerts={"alertmanager_url": alertmanager}), ["alerts"])
    both = build_app(
        Settings(state_dir=tmp_path / "b", alerts={"alertmanager_url": alertmanager, "prometheus_url": prometheus}),
        ["alerts"],
    )
    only = build_app(Settings(state_dir=tmp_path / "c", alerts={"prometheus_url": prometheus}), ["alerts"])
    try:
        async with Client(without.server) as client:
            no_source = await client.call_tool("alerts_list", {"state": "pending"})
            all_without = await client.call_tool("alerts_list", {"state": "all", "namespace": "shop"})
        async with Client(both.server) as client:
            pending = await client.call_tool("alerts_list", {"state": "pending", "namespace": "shop"})
            everything = await client.call_tool("alerts_list", {"state": "all", "namespace": "shop"})
            firing = await client.call_tool("alerts_list", {"namespace": "shop"})
        async with Client(only.server) as client:
            from_prometheus = await client.call_tool("alerts_list", {"state": "all", "service": "checkout"})
    finally:
        for app in (without, both, only):
            await app.aclose()
    assert _alertmanager_has(alertmanager, "CheckoutLatencyCreeping") == []
    assert no_source.is_error and "prometheus_url" in no_source.content[0].text
    assert [i["name"] for i in all_without.structured_content["items"]] == ["CheckoutHighLatency"]
    [item] = pending.structured_content["items"]
    assert item["name"] == "CheckoutLatencyCreeping" and item["state"] == "pending"
    assert item["severity"] == "warning" and item["started"] and item["labels"]["service"] == "checkout"
    assert pending.structured_content["backend"] == "alertmanager+prometheus"
    states = {i["name"]: i["state"] for i in everything.structured_content["items"]}
    assert states == {"CheckoutHighLatency": "firing", "CheckoutLatencyCreeping": "pending"}
    assert [i["name"] for i in firing.structured_content["items"]] == ["CheckoutHighLatency"]
    states = {i["name"]: i["state"] for i in from_prometheus.structured_content["items"]}
    assert states == {"CheckoutHighLatency": "firing", "CheckoutLatencyCreeping": "pending"}
    assert from_prometheus.structured_content["backend"] == "prometheus"
