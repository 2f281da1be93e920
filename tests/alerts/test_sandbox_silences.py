"""The sandbox's Alertmanager-compatible API keeps silences as Alertmanager does: `alert_silence` through an
MCP client creates one, the alert shows as suppressed (silenced by it), and expiring it makes it fire again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from mcp import Client

from opsgate.config import load_settings
from opsgate.sandbox.world import SandboxWorld
from opsgate.server import build_app


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_alert_silence_in_the_sandbox_suppresses_the_alert_until_the_silence_expires(tmp_path: Path) -> None:
    args: dict[str, Any] = {
        "matchers": [
            {"name": "alertname", "value": "CheckoutHighLatency"},
            {"name": "namespace", "value": "shop"},
        ],
        "duration": "30m",
        "comment": "rollback in progress",
        "dry_run": False,
    }
    with SandboxWorld("checkout-bad-deploy", mode="frozen") as world:
        kubeconfig = world.write_kubeconfig(tmp_path / "kubeconfig")
        config = tmp_path / "opsgate.toml"
        config.write_text(world.config_toml(tmp_path, kubeconfig, autonomy="autonomous"))
        api = world.prometheus_url
        app = build_app(load_settings(config), ["alerts"])
        try:
            async with Client(app.server) as client, httpx.AsyncClient(base_url=api, timeout=5) as http:
                created = await client.call_tool("alert_silence", args)
                assert not created.is_error, created.content
                silence_id = created.structured_content["silence_id"]
                silenced = await client.call_tool("alerts_list", {"namespace": "shop", "state": "silenced"})
                firing = await client.call_tool("alerts_list", {"namespace": "shop"})
                raw = (await http.get("/api/v2/alerts")).json()
                listed = (await http.get("/api/v2/silences")).json()
                one = (await http.get(f"/api/v2/silence/{silence_id}")).json()
                expired = await http.delete(f"/api/v2/silence/{silence_id}")
                after = (await http.get(f"/api/v2/silence/{silence_id}")).json()
                again = await client.call_tool("alerts_list", {"namespace": "shop"})
                unknown = await http.delete("/api/v2/silence/00000000-0000-0000-0000-000000000000")
        finally:
            await app.aclose()
    assert created.structured_content["created"] is True and created.structured_content["alerts_matched"] == 1
    item = silenced.structured_content["items"][0]
    assert item["name"] == "CheckoutHighLatency" and item["state"] == "silenced"
    assert item["silenced_by"] == [silence_id]
    assert firing.structured_content["items"] == []
    assert raw[0]["status"] == {
        "state": "suppressed",
        "silencedBy": [silence_id],
        "inhibitedBy": [],
        "mutedBy": [],
    }
    assert [s["id"] for s in listed] == [silence_id] and one["status"] == {"state": "active"}
    assert one["createdBy"].startswith("opsgate:") and one["comment"] == "rollback in progress"
    assert {"name": "alertname", "value": "CheckoutHighLatency", "isRegex": False, "isEqual": True} in one["matchers"]
    start, end = (datetime.fromisoformat(one[k].replace("Z", "+00:00")) for k in ("startsAt", "endsAt"))
    assert timedelta(minutes=29) < end - start <= timedelta(minutes=30, seconds=1)
    assert expired.status_code == 200 and after["status"] == {"state": "expired"}
    assert [i["name"] for i in again.structured_content["items"]] == ["CheckoutHighLatency"]
    assert unknown.status_code == 404


async def test_the_sandbox_refuses_silences_alertmanager_refuses_and_filters_like_it(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    good = {
        "matchers": [{"name": "alertname", "value": "CheckoutHighLatency", "isRegex": False, "isEqual": True}],
        "startsAt": _iso(now),
        "endsAt": _iso(now + timedelta(hours=1)),
        "createdBy": "test",
        "comment": "c",
    }
    with SandboxWorld("checkout-bad-deploy", mode="frozen") as world:
        async with httpx.AsyncClient(base_url=world.prometheus_url, timeout=5) as http:
            everything = await http.post(
                "/api/v2/silences", json={**good, "matchers": [{"name": "alertname", "value": ".*", "isRegex": True}]}
            )
            empty = await http.post("/api/v2/silences", json={**good, "matchers": []})
            past = await http.post("/api/v2/silences", json={**good, "endsAt": _iso(now - timedelta(minutes=1))})
            backwards = await http.post(
                "/api/v2/silences",
                json={**good, "startsAt": _iso(now + timedelta(hours=2)), "endsAt": _iso(now + timedelta(hours=1))},
            )
            no_comment = await http.post("/api/v2/silences", json={k: v for k, v in good.items() if k != "comment"})
            refused = (await http.get("/api/v2/silences")).json()
            later = await http.post(
                "/api/v2/silences",
                json={**good, "startsAt": _iso(now + timedelta(hours=1)), "endsAt": _iso(now + timedelta(hours=2))},
            )
            pending = (await http.get(f"/api/v2/silence/{later.json()['silenceID']}")).json()
            still_active = (await http.get("/api/v2/alerts", params={"silenced": "false"})).json()
            other = (await http.get("/api/v2/alerts", params={"filter": 'alertname="SomethingElse"'})).json()
            regex = (await http.get("/api/v2/alerts", params={"filter": 'alertname=~"Checkout.*"'})).json()
    for response in (everything, empty, past, backwards, no_comment):
        assert response.status_code == 400, response.text
    assert "must not match the empty string" in everything.text and "comment" in no_comment.text
    assert refused == []
    assert pending["status"] == {"state": "pending"}
    assert [a["labels"]["alertname"] for a in still_active] == ["CheckoutHighLatency"]
    assert still_active[0]["status"]["state"] == "active"
    assert other == [] and len(regex) == 1
