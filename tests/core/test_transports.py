"""The official SDK client over stdio (a real subprocess) and Streamable HTTP (loopback, API key)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from opsgate import cli
from opsgate.audit import AuditLog
from opsgate.config import ApiKey, HttpSettings, Settings
from opsgate.http_auth import hash_key
from opsgate.server import build_app
from tests.support.loopback import free_port, serve_http

KEY = "ogk_test-key-for-loopback-only"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stdio_subprocess_session(tmp_path: Path, mode: str) -> None:
    env = {**os.environ, "OPSGATE_STATE_DIR": str(tmp_path)}
    params = StdioServerParameters(command=sys.executable, args=["-m", "opsgate", "serve", "runbooks"], env=env)
    async with Client(params, mode=mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {"runbook_search", "runbook_fetch"}
        hit = await client.call_tool("runbook_search", {"query": "database connection pool"})
        assert hit.structured_content["items"][0]["id"] == "db-connection-pool-exhausted"
        bad = await client.call_tool("runbook_search", {"query": ""})
        assert bad.is_error and "query" in bad.content[0].text
    log = AuditLog(tmp_path / "audit.db")
    assert [r.record["outcome"] for r in log.records()] == ["ok", "invalid"]
    assert log.records().__next__().record["caller"]["authenticated"] is True
    assert log.verify().ok


async def test_stdio_policy_denial_is_a_clear_tool_error(tmp_path: Path) -> None:
    """Under read-only autonomy even a dry-run write is refused by policy, over a real stdio session."""
    env = {**os.environ, "OPSGATE_STATE_DIR": str(tmp_path), "OPSGATE_AUTONOMY": "read-only"}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "opsgate", "serve", "runbooks", "rollback"], env=env
    )
    async with Client(params) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["rollback_deployment"].annotations.destructive_hint is True  # type: ignore[union-attr]
        denied = await client.call_tool("rollback_deployment", {"namespace": "shop", "deployment": "checkout"})
    assert denied.is_error
    text = denied.content[0].text
    assert "denied by policy" in text and "(rule " in text, text
    assert cli.main(["audit", "verify", "--file", str(tmp_path / "audit.db")]) == 0
    records = [r.record for r in AuditLog(tmp_path / "audit.db").records()]
    assert [(r["tool"], r["outcome"]) for r in records] == [("rollback_deployment", "denied")]


@pytest.fixture
def http_settings(tmp_path: Path) -> Settings:
    return Settings(
        state_dir=tmp_path,
        http=HttpSettings(
            port=free_port(), api_keys=[ApiKey(sha256=hash_key(KEY), subject="agent@ci", roles=["responder"])]
        ),
    )


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_http_session_with_api_key(http_settings: Settings, mode: str) -> None:
    app = build_app(http_settings, ["runbooks"], http=True)
    with serve_http(app, http_settings) as url:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(url, http_client=http), mode=mode) as client,
        ):
            found = await client.call_tool("runbook_search", {"query": "5xx errors"})
            assert not found.is_error
            assert found.structured_content["items"][0]["id"] == "high-5xx-error-rate"
        # no key: 401 naming the API key it expects (no OAuth metadata: none is configured); nothing reaches the gate
        async with httpx.AsyncClient() as plain:
            response = await plain.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            assert response.status_code == 401
            assert "resource_metadata" not in response.headers.get("www-authenticate", "")
            assert "API key" in response.json()["error_description"]
            wrong = await plain.post(url, json={}, headers={"Authorization": "Bearer ogk_wrong"})
            assert wrong.status_code == 401
    records = [r.record for r in app.gate.audit.records()]
    assert records[0]["caller"] == {
        "subject": "agent@ci",
        "roles": ["responder"],
        "client": "mcp",
        "authenticated": True,
        "auth": "api_key",
        "scopes": [],
    }
    await app.aclose()
