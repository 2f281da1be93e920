"""alerts_list and alert_silence over the two real transports (stdio subprocess, Streamable HTTP with an API
key) on both wire generations, against a real Prometheus Alertmanager."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from opsgate.config import ApiKey, HttpSettings, Settings
from opsgate.http_auth import hash_key
from opsgate.server import build_app
from tests.alerts.alertmanager import BINARY, post_alerts, running_alertmanager, wait_for_alerts
from tests.support.loopback import free_port, serve_http

pytestmark = pytest.mark.skipif(BINARY is None, reason="prometheus-alertmanager is not installed")
KEY = "ogk_alerts-transport-key"
ALERT = {
    "labels": {
        "alertname": "CheckoutHighLatency",
        "severity": "critical",
        "namespace": "staging",
        "service": "checkout",
    },
    "annotations": {"summary": "checkout p99 above 800ms"},
    "age_min": 3,
}
SILENCE = {
    "matchers": [{"name": "alertname", "value": "CheckoutHighLatency"}, {"name": "namespace", "value": "staging"}],
    "duration": "30m",
    "comment": "deploying the fix",
}


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_alertmanager(tmp_path_factory.mktemp("alertmanager")) as url:
        post_alerts(url, [ALERT])
        assert len(wait_for_alerts(url, 1)) == 1
        yield url


def _check(listed: object, preview: object) -> None:
    assert listed.structured_content["items"][0]["name"] == "CheckoutHighLatency"
    dry = preview.structured_content
    assert not preview.is_error and dry["dry_run"] is True and dry["applied"] is False


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_over_stdio(tmp_path: Path, alertmanager: str, mode: str) -> None:
    config = tmp_path / "opsgate.toml"
    config.write_text(f'[alerts]\nalertmanager_url = "{alertmanager}"\n')
    env = {**os.environ, "OPSGATE_STATE_DIR": str(tmp_path / "state"), "OPSGATE_CONFIG": str(config)}
    params = StdioServerParameters(command=sys.executable, args=["-m", "opsgate", "serve", "alerts"], env=env)
    async with Client(params, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"alerts_list", "alert_silence"}
        assert all(t.output_schema for t in tools.values())
        listed = await client.call_tool("alerts_list", {"namespace": "staging"})
        preview = await client.call_tool("alert_silence", SILENCE)
    _check(listed, preview)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_over_http(tmp_path: Path, alertmanager: str, mode: str) -> None:
    settings = Settings(
        state_dir=tmp_path / "state",
        alerts={"alertmanager_url": alertmanager},
        http=HttpSettings(
            port=free_port(), api_keys=[ApiKey(sha256=hash_key(KEY), subject="agent@ci", roles=["responder"])]
        ),
    )
    app = build_app(settings, ["alerts"], http=True)
    # Not closed from here: the backend's connections belong to the server thread's event loop, which
    # ended with serve_http (a hosted server closes the app on its own loop at shutdown).
    with serve_http(app, settings) as url:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http,
            Client(streamable_http_client(url, http_client=http), mode=mode) as client,
        ):
            listed = await client.call_tool("alerts_list", {"namespace": "staging"})
            preview = await client.call_tool("alert_silence", SILENCE)
    _check(listed, preview)
