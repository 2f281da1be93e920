"""A tools round trip from the official TypeScript SDK client, over stdio and Streamable HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from opsgate.audit import AuditLog
from opsgate.config import ApiKey, HttpSettings, Settings
from opsgate.http_auth import hash_key
from opsgate.server import build_app
from tests.support.loopback import free_port, serve_http

from .node_tools import HERE, node, package_bin

KEY = "ogk_ts-client-key-loopback-only"


def _roundtrip(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    package_bin("@modelcontextprotocol/sdk", "package.json")
    run = subprocess.run(
        [str(node()), str(HERE / "ts_client_roundtrip.mjs"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=HERE,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def _check(result: dict[str, Any]) -> None:
    assert result["server"]["name"] == "opsgate"
    assert {t["name"] for t in result["tools"]} == {"runbook_search", "runbook_fetch"}
    assert all(t["hasOutputSchema"] for t in result["tools"])
    assert result["found"]["isError"] is False
    assert result["found"]["structuredContent"]["items"][0]["id"] == "db-connection-pool-exhausted"
    assert result["invalid"]["isError"] is True and "query" in result["invalid"]["text"]


def test_typescript_client_over_stdio(tmp_path: Path) -> None:
    env = {**os.environ, "OPSGATE_STATE_DIR": str(tmp_path)}
    _check(_roundtrip("stdio", sys.executable, "-m", "opsgate", "serve", "runbooks", env=env))
    outcomes = [r.record["outcome"] for r in AuditLog(tmp_path / "audit.db").records()]
    assert outcomes == ["ok", "invalid"]


async def test_typescript_client_over_http(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path,
        http=HttpSettings(
            port=free_port(), api_keys=[ApiKey(sha256=hash_key(KEY), subject="ts@ci", roles=["responder"])]
        ),
    )
    app = build_app(settings, ["runbooks"], http=True)
    with serve_http(app, settings) as url:
        _check(_roundtrip("http", url, KEY))
    records = [r.record for r in app.gate.audit.records()]
    assert [r["outcome"] for r in records] == ["ok", "invalid"]
    assert records[0]["caller"]["subject"] == "ts@ci" and records[0]["caller"]["client"] == "ts-sdk-roundtrip"
    await app.aclose()
