"""The official MCP conformance suite against opsgate's own stack (gate, policy, audit, HTTP transport).

The fixtures the suite calls are opsgate contracts (tests/support/conformance_fixtures.py); the CLI compares
its results with a committed baseline of known failures (expected-failures-<revision>.yaml) and
fails on a new failure and on a baselined scenario that now passes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from opsgate.audit import AuditLog
from tests.support.loopback import free_port, serve_asgi

from .node_tools import HERE, node, package_bin
from .serve_fixtures import fixture_app, fixture_settings


def _summary(results: Path) -> dict[str, list[str]]:
    """scenario -> ids of its failed checks, from the CLI's per-scenario checks.json files."""
    summary: dict[str, list[str]] = {}
    for checks in sorted(results.glob("server-*/checks.json")):
        scenario = checks.parent.name.removeprefix("server-").rsplit("-", 6)[0]
        summary[scenario] = [c["id"] for c in json.loads(checks.read_text()) if c["status"] == "FAILURE"]
    return summary


@pytest.mark.parametrize("revision", ["2025-11-25", "2026-07-28"])
async def test_conformance_suite(tmp_path: Path, revision: str) -> None:
    binary = node()
    cli = package_bin("@modelcontextprotocol/conformance", "dist/index.js")
    settings = fixture_settings(tmp_path / "state", free_port())
    app, asgi = fixture_app(settings)
    url = f"http://127.0.0.1:{settings.http.port}{settings.http.path}"
    baseline = HERE / f"expected-failures-{revision}.yaml"
    with serve_asgi(asgi, settings.http.port):
        run = await anyio.to_thread.run_sync(
            lambda: subprocess.run(
                [
                    *(str(binary), str(cli), "server", "--url", url, "--requirements", revision),
                    *("--expected-failures", str(baseline), "-o", str(tmp_path / "results")),
                ],
                capture_output=True,
                text=True,
                timeout=600,
                cwd=HERE,
            )
        )
    summary = _summary(tmp_path / "results")
    report = "\n".join(f"  {s}: {'PASS' if not f else 'FAIL ' + ', '.join(f)}" for s, f in summary.items())
    tail = run.stdout[run.stdout.find("=== SUMMARY ===") :]
    assert run.returncode == 0, f"conformance {revision} differs from {baseline.name}:\n{report}\n{tail}"
    # The core scenarios pass, and they really went through the gate: each fixture call is audited.
    for scenario in ("tools-call-simple-text", "tools-call-image", "tools-call-with-progress", "resources-read-text"):
        assert summary.get(scenario) == [], f"{scenario}: {summary.get(scenario)}"
    tools = {r.record["tool"] for r in AuditLog(settings.audit_file).records()}
    assert {"test_simple_text", "test_image_content", "test_error_handling", "test_resource_read"} <= tools
    assert AuditLog(settings.audit_file).verify().ok
    await app.aclose()
