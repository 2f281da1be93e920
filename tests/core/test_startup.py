"""Start-up: `opsgate serve` answers `initialize` before it builds the gate, the sandbox world and the
capabilities (clients time their handshake), and builds them on the first request that needs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from opsgate.config import Settings
from opsgate.launch import DeferredApp
from opsgate.server import App, build_app


async def test_initialize_builds_nothing_and_the_first_tools_list_builds_once(tmp_path: Path) -> None:
    built: list[App] = []

    def build() -> App:
        app = build_app(Settings(state_dir=tmp_path), ["runbooks"])
        built.append(app)
        return app

    deferred = DeferredApp(build)
    async with Client(deferred.server, mode="legacy") as client:
        assert built == []  # the handshake is answered without building anything
        tools = {t.name for t in (await client.list_tools()).tools}
        assert tools == {"runbook_search", "runbook_fetch"} and len(built) == 1
        hit = await client.call_tool("runbook_search", {"query": "database connection pool"})
        assert not hit.is_error and len(built) == 1  # built once, and every call passes its gate
    assert built[0].gate.audit.find(tool="runbook_search")
    await deferred.aclose()


@pytest.mark.parametrize("config", [None, '[logs]\nbackend = "loki"\n[metrics]\nbackend = "azure"\n'])
def test_serving_imports_no_heavy_module_before_the_first_request(tmp_path: Path, config: str | None) -> None:
    """What `opsgate serve all` imports before it can answer `initialize`: no capability, backend client,
    gate or sandbox (each costs start-up time a client's handshake probe is waiting on)."""
    probe = (
        "import sys\n"
        "from opsgate import cli, stdio\n"
        "async def serve(server):\n"
        "    print('SERVING', ' '.join(sorted(sys.modules)))\n"
        "stdio.serve_stdio = serve\n"
        f"cli.main({['serve', 'all'] if config is None else ['--config', str(tmp_path / 'c.toml'), 'serve', 'all']})\n"
    )
    if config is not None:
        (tmp_path / "c.toml").write_text(config)  # checked before serving, without importing the backends
    env: dict[str, Any] = {"OPSGATE_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    repo = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = str(repo / "servers")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    assert out.startswith("SERVING "), out  # the server got as far as serving
    loaded = set(out.split())
    heavy = {"kubernetes", "azure", "numpy", "jwt", "opsgate.sandbox.world", "opsgate.server", "opsgate.approvals"}
    heavy |= {f"opsgate.{c}.server" for c in ("logs", "metrics", "rollback", "runbooks")}
    assert not heavy & loaded, sorted(heavy & loaded)


async def test_a_build_that_fails_answers_with_the_reason(tmp_path: Path) -> None:
    from mcp.shared.exceptions import MCPError

    from opsgate.config import ConfigError

    def build() -> App:
        raise ConfigError("[rollback] cannot reach the configured cluster: no such context")

    async with Client(DeferredApp(build).server, mode="legacy") as client:
        with pytest.raises(MCPError, match="cannot reach the configured cluster"):
            await client.list_tools()
