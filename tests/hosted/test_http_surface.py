"""Hosted HTTP surface: protected-resource metadata, the write scope judged by policy, Origin checks,
health, metrics, and malformed JSON-RPC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from opsgate.approvals import Approvals
from opsgate.config import Settings
from opsgate.http_auth import resource_url

from .conftest import API_KEY, WRITE_SCOPE, Hosted, get, post

WRITE_ARGS: dict[str, Any] = {"namespace": "shop", "service": "checkout", "value": 3}
WRITE_CALL = {
    "jsonrpc": "2.0",
    "id": 7,
    "method": "tools/call",
    "params": {"name": "testkit_write", "arguments": WRITE_ARGS},
}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_protected_resource_metadata_points_at_the_issuer(hosted: Hosted) -> None:
    response = await get(f"{hosted.base}/.well-known/oauth-protected-resource/mcp")
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["resource"] == hosted.url
    assert metadata["authorization_servers"] == [hosted.issuer.issuer]
    assert metadata["scopes_supported"] == [WRITE_SCOPE]
    assert metadata["bearer_methods_supported"] == ["header"]


async def test_write_without_the_write_scope_is_a_policy_denial_audited_like_any(hosted: Hosted) -> None:
    """Issue 10, "Access decisions outside the gate": the write-scope check ran before the gate (an
    HTTP 403 nothing audited, scopes the policy never saw). Now the token's scopes are on the caller
    and the policy decides: a denial with its rule and reason, audited, and nothing runs."""
    reader = hosted.token(roles=["responder"], scp="Ops.Read")
    writer = hosted.token(roles=["responder"], scp=f"Ops.Read {WRITE_SCOPE}")
    calls: list[tuple[str, str, dict[str, Any]]] = [
        (reader, "testkit_write", WRITE_ARGS),
        (reader, "testkit_echo", {"text": "still reading"}),
        (writer, "testkit_write", WRITE_ARGS),
    ]
    results = []
    for token, tool, args in calls:
        async with (
            httpx2.AsyncClient(headers=_bearer(token), timeout=30) as http,
            Client(streamable_http_client(hosted.url, http_client=http)) as client,
        ):
            results.append(await client.call_tool(tool, args))
    denied, read, dry_run = results
    assert denied.is_error and denied.meta is not None and denied.meta["opsgate/outcome"] == "denied"
    message = denied.content[0].text  # type: ignore[union-attr]
    assert "(rule write.oauth_scope_missing)" in message and WRITE_SCOPE in message and "Ops.Read" in message
    assert not read.is_error and not dry_run.is_error, dry_run.content
    records = [r.record for r in hosted.app.gate.audit.records()]
    assert [(r["tool"], r["outcome"], r["decision"]["rule"]) for r in records] == [
        ("testkit_write", "denied", "write.oauth_scope_missing"),
        ("testkit_echo", "ok", "read.allowed"),
        ("testkit_write", "ok", "write.dry_run.allowed"),
    ]
    # the caller the policy and the audit saw carries the token's scopes
    assert records[0]["caller"]["scopes"] == ["Ops.Read"] and records[0]["caller"]["auth"] == "oidc"
    assert records[2]["caller"]["scopes"] == ["Ops.Read", WRITE_SCOPE]


async def test_api_key_write_is_judged_by_policy_not_scopes(hosted: Hosted) -> None:
    async with (
        httpx2.AsyncClient(headers=_bearer(API_KEY), timeout=30) as http,
        Client(streamable_http_client(hosted.url, http_client=http)) as client,
    ):
        real = await client.call_tool("testkit_write", {**WRITE_ARGS, "dry_run": False})
    assert real.is_error  # a production write needs an approval: a policy decision, not a 403
    assert real.meta is not None and real.meta["opsgate/outcome"] in ("denied", "pending_approval")


async def test_foreign_origin_is_refused(hosted: Hosted) -> None:
    token = hosted.token(roles=["responder"])
    headers = {**_bearer(token), "Accept": "application/json, text/event-stream"}
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    foreign = await post(hosted.url, json=init, headers={**headers, "Origin": "http://attacker.example"})
    assert foreign.status_code == 403
    local = await post(hosted.url, json=init, headers={**headers, "Origin": f"{hosted.base}"})
    assert local.status_code == 200
    rebound_host = await post(hosted.url, json=init, headers={**headers, "Host": "attacker.example"})
    assert rebound_host.status_code == 421


async def test_health_is_public_and_metrics_need_a_token(hosted: Hosted) -> None:
    health = await get(f"{hosted.base}/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok" and health.json()["tools"] == 4
    anonymous = await get(f"{hosted.base}/metrics")
    assert anonymous.status_code == 401 and "resource_metadata=" in anonymous.headers["www-authenticate"]

    token = hosted.token(roles=["responder"])
    async with (
        httpx2.AsyncClient(headers=_bearer(token), timeout=30) as http,
        Client(streamable_http_client(hosted.url, http_client=http)) as client,
    ):
        await client.call_tool("testkit_noargs", {})
    metrics = await get(f"{hosted.base}/metrics", headers=_bearer(token))
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    sample = 'opsgate_tool_calls_total{outcome="ok",tool="testkit_noargs"}'
    assert sample in metrics.text
    assert "opsgate_tool_call_seconds_bucket" in metrics.text


async def test_malformed_json_rpc_gets_an_error_and_the_server_keeps_serving(hosted: Hosted) -> None:
    headers = {
        **_bearer(hosted.token(roles=["responder"])),
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    for body in [b"{not json", b'{"jsonrpc": "2.0", "id": 3}', b'{"jsonrpc": "1.0", "id": 4, "method": "ping"}']:
        response = await post(hosted.url, content=body, headers=headers)
        assert 400 <= response.status_code < 500, body
        error = response.json()
        assert error["jsonrpc"] == "2.0" and error["error"]["code"] in (-32700, -32600, -32602), error
    async with (
        httpx2.AsyncClient(headers={"Authorization": headers["Authorization"]}, timeout=30) as http,
        Client(streamable_http_client(hosted.url, http_client=http)) as client,
    ):
        assert not (await client.call_tool("testkit_echo", {"text": "alive"})).is_error


@pytest.mark.parametrize(
    "public_url",
    [
        "https://ops.example.com",
        "https://ops.example.com/",
        "https://ops.example.com/mcp",
        "https://ops.example.com/mcp/",
    ],
)
def test_public_url_names_the_endpoint_once_and_the_approval_page_beside_it(public_url: str, tmp_path: Path) -> None:
    # deploy/k8s/configmap.yaml writes the endpoint itself; a base URL (with or without "/") means the same server
    settings = Settings(
        state_dir=tmp_path,
        http={"public_url": public_url, "oidc_issuer": "https://login.example.com"},  # type: ignore[arg-type]
        approvals={"oidc_client_id": "opsgate-page"},  # type: ignore[arg-type]
    )
    assert resource_url(settings.http) == "https://ops.example.com/mcp"
    hook = Approvals.from_settings(settings, http=True)
    assert hook.page_url == "https://ops.example.com/approvals"
    hook.close()
