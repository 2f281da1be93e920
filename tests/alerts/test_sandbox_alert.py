"""In the sandbox the default incident's alert fires, alerts_list leads to the runbook, and after the
rollback the alert resolves: every step through opsgate's own tools over one MCP session."""

from __future__ import annotations

from pathlib import Path

from mcp import Client

from opsgate.config import load_settings
from opsgate.sandbox.world import SandboxWorld
from opsgate.server import build_app


async def test_the_default_incidents_alert_leads_to_the_runbook_and_resolves_after_the_rollback(
    tmp_path: Path,
) -> None:
    with SandboxWorld("checkout-bad-deploy", mode="frozen") as world:
        kubeconfig = world.write_kubeconfig(tmp_path / "kubeconfig")
        config = tmp_path / "opsgate.toml"
        config.write_text(world.config_toml(tmp_path, kubeconfig, autonomy="autonomous"))
        app = build_app(load_settings(config), ["alerts", "runbooks", "rollback", "workloads"])
        try:
            async with Client(app.server) as client:
                firing = await client.call_tool("alerts_list", {"namespace": "shop"})
                assert not firing.is_error, firing.content
                alert = firing.structured_content["items"][0]
                assert alert["name"] == "CheckoutHighLatency" and alert["state"] == "firing"
                assert alert["labels"]["service"] == "checkout" and alert["severity"] == "critical"
                assert "runbook_search(alert='CheckoutHighLatency')" in firing.structured_content["next_step"]
                runbook = await client.call_tool("runbook_search", {"alert": alert["name"]})
                assert runbook.structured_content["items"][0]["id"] == "checkout-latency-regression"
                assert alert["runbook_url"] == "runbook://checkout-latency-regression"
                status = await client.call_tool("workload_status", {"namespace": "shop", "name": "checkout"})
                assert not status.is_error, status.content
                done = await client.call_tool(
                    "rollback_deployment",
                    {"namespace": "shop", "deployment": "checkout", "dry_run": False, "reason": "v8 is slow"},
                )
                assert not done.is_error, done.content
                resolved = await client.call_tool("alerts_list", {"namespace": "shop"})
        finally:
            await app.aclose()
        assert world.recovered()
    assert resolved.structured_content["items"] == [], resolved.structured_content
    assert "nothing is firing" in resolved.structured_content["next_step"]
