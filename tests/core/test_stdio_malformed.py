"""Malformed JSON-RPC over stdio gets a JSON-RPC error promptly (it used to get no answer at all), the
server keeps serving, and every tools/call that reaches the gate leaves an audit record: for `opsgate serve`
and for the evaluation server (`python -m opsgate.evaluation.server`), which serve stdio the same way."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsgate.audit import AuditLog

ANSWER_WITHIN_S = 5.0
DEEP = "[" * 5000 + "]" * 5000
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}},
}


class Stdio:
    def __init__(self, proc: subprocess.Popen[bytes], state: Path) -> None:
        self.proc = proc
        self.state = state
        self.buffer = b""

    def send(self, line: str | bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((line.encode() if isinstance(line, str) else line) + b"\n")
        self.proc.stdin.flush()

    def answer(self, within_s: float = ANSWER_WITHIN_S) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([fd], [], [], within_s)
            if not ready:
                pytest.fail(f"no answer within {within_s:g}s")
            chunk = os.read(fd, 1 << 20)
            assert chunk, "the server closed stdout"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        assert len(line) < 20_000, f"an answer of {len(line)} bytes"
        return dict(json.loads(line))


def _command(server: str, folder: Path, state: Path) -> list[str]:
    if server == "serve":
        return [sys.executable, "-m", "opsgate", "serve", "runbooks"]
    # the evaluation's server process (what `opsgate eval` starts for an agent), on a minimal config
    config = folder / "eval.toml"
    config.write_text(f"state_dir = {json.dumps(str(state))}\n")
    return [
        sys.executable,
        "-m",
        "opsgate.evaluation.server",
        "--config",
        str(config),
        "--record",
        str(folder / "diagnosis.json"),
        "--usage",
        str(folder / "usage.jsonl"),
    ]


@pytest.fixture(scope="module", params=["serve", "eval"])
def stdio(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stdio]:
    """One server per kind for the module (`opsgate serve` and the evaluation server): each probe is followed
    by a ping, so a wedged server fails that probe."""
    folder = tmp_path_factory.mktemp("stdio")
    state = folder / "state"
    env = {**os.environ, "OPSGATE_STATE_DIR": str(state)}
    proc = subprocess.Popen(
        _command(str(request.param), folder, state),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    wire = Stdio(proc, state)
    try:
        wire.send(json.dumps(INITIALIZE))
        assert "result" in wire.answer(within_s=120)  # start-up, on a busy machine
        wire.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        yield wire
    finally:
        proc.kill()
        proc.wait()


PROBES: list[tuple[str, str, Any, int]] = [
    ("params as a list", '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1,2]}', 1, -32602),
    (
        "a lone surrogate",
        '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"\\ud800","arguments":{}}}',
        2,
        -32700,
    ),
    ("deep nesting", '{"jsonrpc":"2.0","id":3,"method":"ping","params":{"a":' + DEEP + "}}", None, 0),
    ("a batch array", '[{"jsonrpc":"2.0","id":4,"method":"ping"}]', None, -32600),
    ("no jsonrpc field", '{"id":5,"method":"ping"}', 5, -32600),
    ("not JSON", "{nope", None, -32700),
    ("an id and nothing else", '{"jsonrpc":"2.0","id":6}', 6, -32600),
    ("a boolean id", '{"jsonrpc":"2.0","id":true,"method":"ping"}', None, -32600),
]


@pytest.mark.parametrize(("what", "line", "request_id", "code"), PROBES, ids=[p[0] for p in PROBES])
def test_malformed_messages_get_a_json_rpc_error_promptly(
    stdio: Stdio, what: str, line: str, request_id: Any, code: int
) -> None:
    stdio.send(line)
    answer = stdio.answer()
    assert answer["jsonrpc"] == "2.0" and answer["id"] == request_id, answer
    assert "error" in answer and (code == 0 or answer["error"]["code"] == code), answer
    stdio.send(json.dumps({"jsonrpc": "2.0", "id": 99, "method": "ping"}))
    assert stdio.answer() == {"jsonrpc": "2.0", "id": 99, "result": {}}


def test_every_tools_call_that_reaches_the_gate_is_audited(stdio: Stdio) -> None:
    calls: list[Any] = [
        {"name": "runbook_search", "arguments": {"query": "5xx", "limit": True}},
        {"name": "runbook_search", "arguments": "query"},
        {"name": "runbook_search", "arguments": [1]},
        {"name": 7, "arguments": {}},
        {"name": "x" * 1_000_000, "arguments": {}},
        {"name": "no_such_tool\n\x1b[31mforged"},
        {"arguments": {}},
        {"name": "runbook_search", "arguments": {"query": "5xx"}},
    ]
    results = 0
    for i, params in enumerate(calls, start=100):
        stdio.send(json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}))
        answer = stdio.answer()
        assert answer["id"] == i and ("result" in answer or "error" in answer), answer
        if "result" in answer:
            results += 1
    assert results >= 5
    audit = AuditLog(stdio.state / "audit.db")
    try:
        records = [r.record for r in audit.records()]
    finally:
        audit.close()
    assert len(records) == results, [r.get("tool", "")[:40] for r in records]
    assert all(len(r["tool"]) <= 200 for r in records)
