"""alerts_list over Azure Monitor alerts through the real SDK (azure-mgmt-alertsmanagement) against a loopback
stand-in that speaks ARM's wire format, through an MCP client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from opsgate.alerts.backends.azure import AzureAlertsBackend, AzureAlertsSettings
from opsgate.alerts.server import AlertsSettings, capability
from opsgate.config import ConfigError, Settings
from opsgate.server import App, build_app
from tests.alerts import azure_alerts_loopback as arm
from tests.support.azure import StaticTokenCredential


def _app(tmp_path: Path, url: str, token: str = arm.TOKEN, **azure: Any) -> App:
    config = AlertsSettings.model_validate(
        {"backend": "azure", "azure": {"subscription_id": arm.SUBSCRIPTION, "endpoint": url, **azure}}
    )
    assert config.azure is not None
    backend = AzureAlertsBackend(config.azure, StaticTokenCredential(token), allow_http_for_tests=True)
    return build_app(Settings(state_dir=tmp_path / "state"), [], capabilities=[capability(config, backend)])


async def test_azure_monitor_alerts_are_listed_filtered_and_marked_untrusted(tmp_path: Path) -> None:
    stand_in = arm.AzureAlertsLoopback()
    with stand_in.server:
        app = _app(tmp_path, stand_in.url)
        try:
            async with Client(app.server) as client:
                shop = await client.call_tool("alerts_list", {"namespace": "shop"})
                every = await client.call_tool("alerts_list", {"state": "all"})
                critical = await client.call_tool("alerts_list", {"severity": "critical"})
                silence = await client.call_tool(
                    "alert_silence",
                    {
                        "matchers": [{"name": "alertname", "value": "CheckoutHighLatency"}],
                        "duration": "30m",
                        "comment": "rollback in progress",
                    },
                )
        finally:
            await app.aclose()
    out = shop.structured_content
    assert not shop.is_error, shop.content
    assert [i["name"] for i in out["items"]] == ["CheckoutHighLatency", "CheckoutErrorBudget"]
    first = out["items"][0]
    assert first["severity"] == "critical" and first["state"] == "firing" and out["backend"] == "azure"
    assert first["labels"]["service"] == "checkout" and first["labels"]["resource"] == "shop-aks"
    assert first["started"].startswith("2026-11-30T10:03:00")
    assert out["items"][1]["description"] == arm.HOSTILE and "items[].description" in out["untrusted_fields"]
    states = {i["name"]: i["state"] for i in every.structured_content["items"]}
    assert states == {
        "CheckoutHighLatency": "firing",
        "CheckoutErrorBudget": "firing",
        "NodeDiskPressure": "silenced",
        "StagingDbSlow": "firing",
    }, states  # resolved alerts are not listed; four alerts over two pages (nextLink)
    assert [i["name"] for i in critical.structured_content["items"]] == ["CheckoutHighLatency"]
    assert any(q.get("severity") == ["Sev0"] for q in stand_in.requests)
    assert all(q.get("monitorCondition") == ["Fired"] for q in stand_in.requests)
    assert any("$skiptoken" in q for q in stand_in.requests)
    assert silence.is_error and "alert processing rules" in silence.content[0].text


async def test_a_resource_group_narrows_and_a_refused_token_is_a_clear_error(tmp_path: Path) -> None:
    stand_in = arm.AzureAlertsLoopback()
    with stand_in.server:
        staging = _app(tmp_path / "a", stand_in.url, resource_group="staging-rg")
        refused = _app(tmp_path / "b", stand_in.url, token="wrong-token")
        try:
            async with Client(staging.server) as client:
                narrowed = await client.call_tool("alerts_list", {})
            async with Client(refused.server) as client:
                denied = await client.call_tool("alerts_list", {})
        finally:
            await staging.aclose()
            await refused.aclose()
    assert [i["name"] for i in narrowed.structured_content["items"]] == ["StagingDbSlow"]
    assert denied.is_error and "refused the credential (HTTP 401)" in denied.content[0].text


def test_backend_azure_without_its_table_is_a_config_error(tmp_path: Path) -> None:
    from opsgate.alerts.server import build

    with pytest.raises(ConfigError, match=r"\[alerts.azure\]"):
        build(Settings(state_dir=tmp_path, alerts={"backend": "azure"}))
    assert AzureAlertsSettings(subscription_id=arm.SUBSCRIPTION).endpoint == "https://management.azure.com"
