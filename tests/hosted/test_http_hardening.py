"""Hosted mode against what a client misconfigures and an attacker sends: 401s that say which credential
is expected (and a missing one from a wrong one), no OAuth metadata without OAuth, deep bodies, and a
flood of half-open connections at the default open-files limit."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsgate.config import ApiKey, HttpSettings, Settings
from opsgate.http_auth import hash_key
from opsgate.server import build_app
from tests.support.loopback import free_port, serve_http

from .conftest import API_KEY, Hosted, get, post

JSON = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
PING = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}},
}


@pytest.fixture
def api_key_only(tmp_path: Path) -> Iterator[str]:
    settings = Settings(
        state_dir=tmp_path,
        http=HttpSettings(port=free_port(), api_keys=[ApiKey(sha256=hash_key(API_KEY), subject="agent@ci")]),
    )
    app = build_app(settings, ["runbooks"], http=True)
    with serve_http(app, settings) as url:
        yield url


async def test_api_key_only_mode_publishes_no_oauth_metadata(api_key_only: str) -> None:
    base = api_key_only.removesuffix("/mcp")
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        assert (await get(base + path)).status_code == 404, path
    missing = await post(api_key_only, json=PING, headers=JSON)
    wrong = await post(api_key_only, json=PING, headers={**JSON, "Authorization": "Bearer ogk_not-the-key"})
    for response in (missing, wrong, await get(base + "/metrics")):
        assert response.status_code == 401
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith("Bearer ") and "resource_metadata" not in challenge
        assert "API key" in response.json()["error_description"]
    assert "no credential" in missing.json()["error_description"]
    assert 'error="invalid_token"' not in missing.headers["www-authenticate"]
    assert "not recognised" in wrong.json()["error_description"]
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    good = await post(api_key_only, json=PING, headers={**JSON, "Authorization": f"Bearer {API_KEY}"})
    assert good.status_code == 200


async def test_with_oidc_the_401_names_both_credentials_and_the_metadata(hosted: Hosted) -> None:
    missing = await post(hosted.url, json=PING, headers=JSON)
    assert missing.status_code == 401
    assert "resource_metadata=" in missing.headers["www-authenticate"]
    assert hosted.issuer.issuer in missing.json()["error_description"]
    foreign = hosted.issuer.mint("https://someone-else.example.com/mcp", roles=["responder"])
    rejected = await post(hosted.url, json=PING, headers={**JSON, "Authorization": f"Bearer {foreign}"})
    assert rejected.status_code == 401 and "access token was rejected" in rejected.json()["error_description"]


@pytest.mark.parametrize("shape", ["array", "object"])
async def test_a_5000_deep_body_is_a_400_not_a_500(hosted: Hosted, shape: str) -> None:
    depth = 5000
    body = "[" * depth + "]" * depth if shape == "array" else '{"a":' * depth + "1" + "}" * depth
    # an OAuth token without the write scope (its body is read before the SDK's) and an API key
    for token in (hosted.token(roles=["responder"], scp="Ops.Read"), API_KEY):
        response = await post(hosted.url, content=body, headers={**JSON, "Authorization": f"Bearer {token}"})
        assert response.status_code == 400, (token[:8], response.status_code, response.text[:200])
    ok = await post(hosted.url, json=PING, headers={**JSON, "Authorization": f"Bearer {API_KEY}"})
    assert ok.status_code == 200


def _serve_at_default_file_limit(tmp_path: Path, port: int, **http: Any) -> subprocess.Popen[bytes]:
    lines = [f'state_dir = "{tmp_path / "state"}"', "[http]", f"port = {port}"]
    lines += [f"{k} = {v}" for k, v in http.items()]
    lines += ["[[http.api_keys]]", f'sha256 = "{hash_key(API_KEY)}"', 'subject = "agent@ci"']
    config = tmp_path / "opsgate.toml"
    config.write_text("\n".join(lines) + "\n")

    def default_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    proc = subprocess.Popen(
        [sys.executable, "-m", "opsgate", "--config", str(config), "serve", "runbooks", "--transport", "http"],
        preexec_fn=default_limit,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("opsgate serve --transport http did not start")
        time.sleep(0.1)


def test_1100_half_open_requests_do_not_wedge_the_server(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1400:
        pytest.skip(f"needs 1,400 open files for the attacking side (hard limit {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1400) if hard == resource.RLIM_INFINITY else hard, hard))
    port = free_port()
    proc = _serve_at_default_file_limit(tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    attackers: list[socket.socket] = []
    try:
        for _ in range(1100):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n")
            attackers.append(s)
        during = httpx.get(f"{url}/healthz", timeout=10)
        assert during.status_code == 200
        ping = httpx.post(f"{url}/mcp", json=PING, headers={**JSON, "Authorization": f"Bearer {API_KEY}"}, timeout=10)
        assert ping.status_code == 200
        for s in attackers:
            s.close()
        attackers.clear()
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    finally:
        for s in attackers:
            s.close()
        proc.terminate()
        proc.wait(timeout=20)


def test_a_connection_that_never_finishes_its_headers_is_closed(tmp_path: Path) -> None:
    port = free_port()
    proc = _serve_at_default_file_limit(tmp_path, port, header_timeout_s=0.5)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            started = time.monotonic()
            try:
                closed = s.recv(1024) == b""
            except ConnectionResetError:
                closed = True
            assert closed and time.monotonic() - started < 9
    finally:
        proc.terminate()
        proc.wait(timeout=20)
