"""OAuth bearer tokens from an OIDC issuer over Streamable HTTP, with the official SDK client."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2
import jwt
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent

from opsgate.server import build_app
from tests.support import testkit
from tests.support.loopback import serve_http

from .conftest import API_KEY, Hosted, hosted_settings, post
from .issuer import LocalIssuer, SigningKey, running_issuer

LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = jwt.utils.base64url_decode(payload).replace(b'"user-0001"', b'"admin-0001"')
    return ".".join([header, jwt.utils.base64url_encode(claims).decode(), signature])


def _refused_tokens(h: Hosted) -> dict[str, str | None]:
    stranger = SigningKey()
    return {
        "missing": None,
        "garbage": "not-a-token",
        "expired": h.token(roles=["responder"], lifetime_s=-3600),
        "wrong audience": h.issuer.mint("http://127.0.0.1:1/other", roles=["responder"]),
        "wrong issuer": h.token(roles=["responder"], iss="https://login.microsoftonline.com/other-tenant/v2.0"),
        "tampered": _tampered(h.token(roles=["responder"])),
        "unknown kid": h.token(roles=["responder"], key=stranger),
        "known kid, foreign key": h.token(roles=["responder"], headers={"kid": h.issuer.key.kid}, key=stranger),
        "symmetric alg": jwt.encode(
            {"iss": h.issuer.issuer, "aud": h.url, "sub": "x", "exp": int(time.time()) + 60},
            "secret-of-at-least-32-bytes-for-hs256!!",
            algorithm="HS256",
            headers={"kid": h.issuer.key.kid},
        ),
        "no exp": h.token(roles=["responder"], exp=None),
    }


async def test_bad_tokens_get_401_with_resource_metadata(hosted: Hosted) -> None:
    metadata_url = f"{hosted.base}/.well-known/oauth-protected-resource/mcp"
    for case, token in _refused_tokens(hosted).items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await post(hosted.url, json=LIST, headers=headers)
        assert response.status_code == 401, case
        assert f'resource_metadata="{metadata_url}"' in response.headers["www-authenticate"], case
    assert list(hosted.app.gate.audit.records()) == []


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_valid_token_roles_reach_the_audit_caller(hosted: Hosted, mode: str) -> None:
    token = hosted.token(roles=["responder", "oncall"], scp="Ops.Read")
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(hosted.url, http_client=http), mode=mode) as client,
    ):
        echoed = await client.call_tool("testkit_echo", {"text": "hello"})
        assert not echoed.is_error and echoed.structured_content["text"] == "hello"
    (record,) = [r.record for r in hosted.app.gate.audit.records()]
    assert record["caller"]["subject"] == "user-0001"
    assert record["caller"]["roles"] == ["oncall", "responder"]
    assert record["caller"]["authenticated"] is True
    assert record["outcome"] == "ok"


async def test_forbidden_role_gets_a_policy_denial_naming_the_rule(hosted: Hosted) -> None:
    token = hosted.token(roles=["responder"])
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(hosted.url, http_client=http)) as client,
    ):
        denied = await client.call_tool("hosted_query", {"raw_query": "select *"})
        allowed_for_sre = hosted.token(roles=["sre"])
        assert denied.is_error
        assert isinstance(denied.content[0], TextContent)
        assert "read.raw_query.role_required" in denied.content[0].text
        assert denied.meta is not None and denied.meta["opsgate/rule"] == "read.raw_query.role_required"
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {allowed_for_sre}"}, timeout=30) as http,
        Client(streamable_http_client(hosted.url, http_client=http)) as client,
    ):
        ok = await client.call_tool("hosted_query", {"raw_query": "select *"})
        assert not ok.is_error and ok.structured_content["rows"] == 1
    outcomes = [(r.record["caller"]["roles"], r.record["outcome"]) for r in hosted.app.gate.audit.records()]
    assert outcomes == [(["responder"], "denied"), (["sre"], "ok")]


async def test_api_keys_still_work_next_to_oidc(hosted: Hosted) -> None:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as http,
        Client(streamable_http_client(hosted.url, http_client=http)) as client,
    ):
        assert not (await client.call_tool("testkit_noargs", {})).is_error
    (record,) = [r.record for r in hosted.app.gate.audit.records()]
    assert record["caller"]["subject"] == "agent@ci"


async def test_key_rotation_refetches_the_jwks_once(tmp_path: Path) -> None:
    with running_issuer() as issuer:
        settings = hosted_settings(tmp_path, issuer)
        app = build_app(settings, [], capabilities=[testkit.build()], http=True)
        with serve_http(app, settings) as url:
            old = issuer.mint(url, roles=["responder"])
            assert (await post(url, json=LIST, headers={"Authorization": f"Bearer {old}"})).status_code != 401
            assert (await post(url, json=LIST, headers={"Authorization": f"Bearer {old}"})).status_code != 401
            assert issuer.jwks_requests == 1  # cached
            # The verifier only refetches an unknown kid after its minimum refresh interval.
            verifier = app.server._token_verifier  # the composite verifier the SDK calls
            verifier.oidc.jwks._fetched_at -= 60  # type: ignore[union-attr]
            issuer.rotate()
            new = issuer.mint(url, roles=["responder"])
            assert (await post(url, json=LIST, headers={"Authorization": f"Bearer {new}"})).status_code != 401
            assert issuer.jwks_requests == 2
            # the retired key is gone from the issuer's set, so its tokens are refused now
            assert (await post(url, json=LIST, headers={"Authorization": f"Bearer {old}"})).status_code == 401
            # and an unknown kid right after a refresh does not hit the issuer again
            assert issuer.jwks_requests == 2
        await app.aclose()


async def test_unreachable_issuer_fails_closed(tmp_path: Path) -> None:
    issuer = LocalIssuer()  # never started
    settings = hosted_settings(tmp_path, issuer)
    app = build_app(settings, [], capabilities=[testkit.build()], http=True)
    with serve_http(app, settings) as url:
        token = issuer.mint(url, roles=["responder"])
        response = await post(url, json=LIST, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
    await app.aclose()
