"""examples/: every client config parses, names a command line that really serves opsgate (started
over stdio with the official MCP client), and allow-lists only real tools; the Foundry script sends
the request body it documents (to a loopback endpoint, through the real Azure SDK); the custom agent
handles a real approval."""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from opsgate import cli
from opsgate.approvals import SqliteApprovalStore
from opsgate.config import ApiKey, HttpSettings, Settings
from opsgate.http_auth import hash_key
from opsgate.sandbox.approver import write_sandbox_approver
from opsgate.sandbox.demo import demo_config
from opsgate.sandbox.world import SandboxWorld
from opsgate.server import build_app
from tests.support.loopback import free_port, serve_http

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
BIN = Path(sys.executable).parent

sys.path.insert(0, str(EXAMPLES / "foundry"))
import register_toolbox  # noqa: E402


def _json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def _expand(value: str, env: dict[str, str]) -> str:
    """Claude Code / Copilot style `${VAR}` and `${VAR:-default}` expansion."""

    def sub(m: re.Match[str]) -> str:
        return env.get(m.group(1)) or (m.group(3) or "")

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(:-([^}]*))?\}", sub, value)


def _stdio_params(entry: dict[str, Any], state_dir: Path) -> StdioServerParameters:
    """The exact command line of a config entry, with `opsgate` resolved the way a shell on PATH would."""
    base_env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "OPSGATE_STATE_DIR": str(state_dir),
    }
    env = {**base_env, **{k: _expand(v, base_env) for k, v in (entry.get("env") or {}).items()}}
    command = shutil.which(entry["command"], path=env["PATH"])
    assert command, f"{entry['command']!r} is not on PATH"
    return StdioServerParameters(command=command, args=list(entry["args"]), env=env)


async def _tools_over_stdio(params: StdioServerParameters) -> dict[str, Any]:
    async with Client(params) as client:
        return {t.name: t for t in (await client.list_tools()).tools}


@pytest.fixture(scope="module")
def live_tools(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`tools/list` of `opsgate serve all`, started over stdio exactly as Claude Code's config says."""
    entry = _json(EXAMPLES / "claude-code" / ".mcp.json")["mcpServers"]["opsgate"]
    return anyio.run(_tools_over_stdio, _stdio_params(entry, tmp_path_factory.mktemp("examples-state")))


# -- Claude Code ---------------------------------------------------------------------------------------


def test_claude_code_config_serves_every_capability(live_tools: dict[str, Any]) -> None:
    entry = _json(EXAMPLES / "claude-code" / ".mcp.json")["mcpServers"]["opsgate"]
    assert entry["type"] == "stdio"
    assert {"runbook_search", "logs_query", "metrics_anomalies", "rollback_deployment"} <= set(live_tools)
    assert len(live_tools) >= 11


def test_the_claude_mcp_add_line_writes_the_same_config() -> None:
    readme = (EXAMPLES / "README.md").read_text()
    (line,) = [
        ln.strip() for ln in readme.splitlines() if ln.strip().startswith("claude mcp add --scope project opsgate")
    ]
    words = shlex.split(line)
    name, command = words[words.index("--") - 1], words[words.index("--") + 1 :]
    entry = _json(EXAMPLES / "claude-code" / ".mcp.json")["mcpServers"][name]
    assert [entry["command"], *entry["args"]] == command
    hosted = [ln.strip() for ln in readme.splitlines() if "--transport http" in ln]
    assert hosted and all(shlex.split(h)[-3].endswith(Settings().http.path) for h in hosted)


def test_the_hosted_claude_mcp_add_line_keeps_the_key_out_of_the_config() -> None:
    """Double quotes let the shell expand the key into a shared .mcp.json; single quotes keep `${VAR}`,
    which Claude Code expands when it connects."""
    readme = (EXAMPLES / "README.md").read_text()
    hosted = [ln.strip() for ln in readme.splitlines() if ln.strip().startswith("claude mcp add") and "--header" in ln]
    assert hosted
    for line in hosted:
        words = shlex.split(line)  # what the shell hands to `claude`
        header = words[words.index("--header") + 1]
        assert header == "Authorization: Bearer ${OPSGATE_API_KEY}", header
        assert "'Authorization: Bearer ${OPSGATE_API_KEY}'" in line


@pytest.mark.parametrize("value", ["", "${OPSGATE_CONFIG:-}", "${OPSGATE_CONFIG}"])
async def test_an_empty_or_unexpanded_config_variable_does_not_kill_the_server(tmp_path: Path, value: str) -> None:
    """Claude Code expands `${OPSGATE_CONFIG:-}` in .mcp.json; other clients pass it literally."""
    entry = _json(EXAMPLES / "claude-code" / ".mcp.json")["mcpServers"]["opsgate"]
    params = _stdio_params({**entry, "env": {}}, tmp_path)
    params.env = {**(params.env or {}), "OPSGATE_CONFIG": value}
    with anyio.fail_after(60):
        tools = await _tools_over_stdio(params)
    assert "logs_query" in tools


# -- Copilot CLI ---------------------------------------------------------------------------------------


async def test_copilot_cli_config_starts_and_its_allow_list_names_real_tools(
    tmp_path: Path, live_tools: dict[str, Any]
) -> None:
    entry = _json(EXAMPLES / "copilot-cli" / "mcp-config.json")["mcpServers"]["opsgate"]
    assert entry["type"] == "local"
    tools = await _tools_over_stdio(_stdio_params(entry, tmp_path))
    allowed = entry["tools"]
    assert len(allowed) == len(set(allowed))
    assert set(allowed) <= set(tools), f"not served: {set(allowed) - set(tools)}"
    assert set(allowed) == set(live_tools)


# -- VS Code -------------------------------------------------------------------------------------------


async def test_vscode_stdio_entry_starts(tmp_path: Path) -> None:
    entry = _json(EXAMPLES / "vscode" / "mcp.json")["servers"]["opsgate"]
    assert entry["type"] == "stdio"
    tools = await _tools_over_stdio(_stdio_params(entry, tmp_path))
    assert "rollout_status" in tools


async def test_vscode_hosted_entry_authenticates_with_its_prompted_key(tmp_path: Path) -> None:
    config = _json(EXAMPLES / "vscode" / "mcp.json")
    entry = config["servers"]["opsgate-hosted"]
    inputs = {i["id"]: i for i in config["inputs"]}
    header = entry["headers"]["Authorization"]
    (input_id,) = re.findall(r"\$\{input:([^}]+)\}", header)
    assert inputs[input_id]["password"] is True
    assert entry["type"] == "http" and entry["url"].endswith(Settings().http.path)

    key = "ogk_vscode-example-key"
    settings = Settings(
        state_dir=tmp_path,
        http=HttpSettings(
            port=free_port(), api_keys=[ApiKey(sha256=hash_key(key), subject="dev@vscode", roles=["responder"])]
        ),
    )
    app = build_app(settings, ["runbooks"], http=True)
    with serve_http(app, settings) as url:
        headers = {"Authorization": header.replace(f"${{input:{input_id}}}", key)}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            assert "runbook_search" in {t.name for t in (await client.list_tools()).tools}
    await app.aclose()


# -- Foundry Toolbox -------------------------------------------------------------------------------------


class _Capture(http.server.BaseHTTPRequestHandler):
    requests: list[tuple[str, str, dict[str, str], bytes]] = []

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.requests.append((self.command, self.path, dict(self.headers), body))
        reply = json.dumps(
            {
                "object": "toolbox.version",
                "id": "tbv_1",
                "name": "opsgate",
                "version": "3",
                "tools": [],
                "created_at": 0,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_POST = do_PATCH = do_GET = _answer

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def foundry_endpoint() -> Iterator[str]:
    _Capture.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/projects/demo"
    server.shutdown()


def _plan(*argv: str) -> register_toolbox.Plan:
    return register_toolbox.make_plan(register_toolbox.parse_args(list(argv)))


def test_foundry_plan_refuses_bad_endpoints_and_unknown_tools() -> None:
    base = ("--auth", "entra", "--connection", "opsgate-entra")
    with pytest.raises(register_toolbox.RegistrationError, match="must be https"):
        _plan("--server-url", "http://opsgate.example.com/mcp", *base)
    with pytest.raises(register_toolbox.RegistrationError, match="ending in /mcp"):
        _plan("--server-url", "https://opsgate.example.com/", *base)
    with pytest.raises(register_toolbox.RegistrationError, match="unknown tool"):
        _plan("--server-url", "https://opsgate.example.com/mcp", "--tools", "logs_query,logs_tail", *base)
    with pytest.raises(SystemExit):
        _plan("--server-url", "https://opsgate.example.com/mcp", "--auth", "password", "--connection", "x")
    assert _plan("--server-url", "https://opsgate.example.com/mcp", "--tools", "read", *base).write_tools == []


def test_foundry_tool_lists_match_the_server(live_tools: dict[str, Any]) -> None:
    known = set(register_toolbox.READ_TOOLS + register_toolbox.WRITE_TOOLS)
    assert known == set(live_tools)
    writes = {name for name, tool in live_tools.items() if tool.annotations and not tool.annotations.read_only_hint}
    assert writes == set(register_toolbox.WRITE_TOOLS)


def test_foundry_call_limit_check_uses_the_servers_own_timeouts(tmp_path: Path) -> None:
    config = tmp_path / "hosted.toml"
    config.write_text(
        f'state_dir = "{tmp_path}"\n[rollback]\napi_url = "http://127.0.0.1:9"\nwait_s = 30\nrequest_timeout_s = 8\n'
    )
    timeouts = register_toolbox.local_timeouts(str(config))
    assert set(timeouts) == set(register_toolbox.READ_TOOLS + register_toolbox.WRITE_TOOLS)
    assert register_toolbox.check_call_limits(list(timeouts), timeouts) == []
    long = {**timeouts, "rollback_deployment": 120.0}
    (problem,) = register_toolbox.check_call_limits(["rollback_deployment"], long)
    assert "rollback_deployment may run 120s" in problem


def test_foundry_registration_sends_the_documented_body(foundry_endpoint: str, live_tools: dict[str, Any]) -> None:
    from azure.ai.projects import AIProjectClient
    from azure.core.credentials import AccessToken

    class StaticToken:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            assert scopes == ("https://ai.azure.com/.default",)
            return AccessToken("test-token", int(time.time()) + 3600)

    plan = _plan("--server-url", "https://opsgate.example.com/mcp", "--auth", "oauth", "--connection", "opsgate-oauth")
    connection_id = (
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/a/projects/p"
        "/connections/opsgate-oauth"
    )
    with AIProjectClient(foundry_endpoint, StaticToken()) as client:
        created = register_toolbox.register(client, plan, connection_id, enforce_https=False)
    assert created.version == "3"
    (post, patch) = _Capture.requests
    method, path, headers, body = post
    assert (method, path.split("?")[0]) == ("POST", "/api/projects/demo/toolboxes/opsgate/versions")
    assert "api-version=v1" in path and headers["Authorization"] == "Bearer test-token"
    sent = json.loads(body)
    assert sent == register_toolbox.request_body(plan, connection_id)
    (tool,) = sent["tools"]
    assert tool["type"] == "mcp" and tool["server_url"] == "https://opsgate.example.com/mcp"
    assert tool["project_connection_id"] == connection_id
    assert set(tool["allowed_tools"]) == set(live_tools)
    assert tool["require_approval"]["always"]["tool_names"] == ["rollback_deployment", "alert_silence"]
    assert patch[0] == "PATCH" and json.loads(patch[3]) == {"default_version": "3"}


def test_foundry_print_body_runs_without_azure(tmp_path: Path) -> None:
    config = tmp_path / "hosted.toml"
    config.write_text(
        f'state_dir = "{tmp_path}"\n[rollback]\napi_url = "http://127.0.0.1:9"\nwait_s = 30\nrequest_timeout_s = 8\n'
    )
    script = EXAMPLES / "foundry" / "register_toolbox.py"
    args = ["--server-url", "https://opsgate.example.com/mcp", "--auth", "key", "--connection", "opsgate-key"]
    done = subprocess.run(
        [sys.executable, str(script), *args, "--opsgate-config", str(config), "--print-body"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tools"][0]["server_label"] == "opsgate"


# -- the custom agent ------------------------------------------------------------------------------------


def test_custom_agent_waits_for_a_human_approval_then_rolls_back(tmp_path: Path) -> None:
    with SandboxWorld() as world:
        kubeconfig = world.write_kubeconfig(tmp_path / "kubeconfig")
        config = tmp_path / "opsgate.toml"
        config.write_text(demo_config(tmp_path, world, kubeconfig))
        human_key = write_sandbox_approver(tmp_path)
        server = f"{sys.executable} -m opsgate --config {config} serve all"
        agent = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "custom-agent" / "agent.py"), "--namespace", "shop", "--service",
             "checkout", "--apply", "--server-command", server, "--approval-poll", "0.2", "--approval-wait", "60"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        store = SqliteApprovalStore(tmp_path)
        try:
            deadline = time.monotonic() + 60
            while not (pending := store.find(status="pending")) and time.monotonic() < deadline:
                assert agent.poll() is None, agent.communicate()
                time.sleep(0.1)
            (approval,) = pending
            assert approval.tool == "rollback_deployment" and approval.requester == "agent@opsgate-demo"
            time.sleep(0.5)
            assert not world.recovered(), "nothing may change before the human approves"
            approvers = str(tmp_path / "approvers.yaml")
            signed = ["approvals", "approve", approval.id, "--key", str(human_key), "--in-process"]
            assert cli.main([*signed, "--state-dir", str(tmp_path), "--approvers", approvers]) == 0
            out, err = agent.communicate(timeout=60)
        finally:
            store.close()
            if agent.poll() is None:
                agent.kill()
        assert agent.returncode == 0, out + err
        assert "APPROVAL NEEDED" in out and "rolled back and the rollout completed" in out
        assert world.recovered()
        assert store_status(tmp_path, approval.id) == "used"


def store_status(state_dir: Path, approval_id: str) -> str:
    store = SqliteApprovalStore(state_dir)
    try:
        return store.get(approval_id).status
    finally:
        store.close()
