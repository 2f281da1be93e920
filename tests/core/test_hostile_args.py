"""What a careful attacker (or a sloppy agent) sends as arguments: a clear, audited tool error naming the
problem, never an internal error, a silent coercion, or a megabyte echoed back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_types import CallToolResult

from opsgate.caller import Caller
from opsgate.cli import main
from opsgate.server import App


@pytest.fixture
async def ops_app(make_app: Callable[..., App]) -> AsyncIterator[App]:
    built = make_app(("logs", "metrics"))
    yield built
    await built.aclose()


async def _error(app: App, tool: str, args: dict[str, Any]) -> str:
    async with Client(app.server, mode="2026-07-28") as client:
        result = await client.call_tool(tool, args)
    assert result.is_error, result.structured_content
    return str(result.content[0].text)


@pytest.mark.parametrize(
    ("tool", "args", "named"),
    [
        ("logs_query", {"limit": True}, "limit: Input should be a valid integer"),
        ("logs_query", {"limit": "5"}, "limit: Input should be a valid integer"),
        ("metrics_query", {"metric": "error_ratio", "limit": True}, "limit: Input should be a valid integer"),
        ("logs_query", {"since": "99999999d"}, "since"),
        ("logs_patterns", {"since": "99999999d"}, "since"),
        ("metrics_query", {"metric": "error_ratio", "since": "99999999d"}, "since"),
        ("metrics_anomalies", {"since": "99999999d"}, "since"),
        (
            "metrics_query",
            {"metric": "error_ratio", "start": "0001-01-01T00:00:00Z", "end": "9999-12-31T00:00:00Z"},
            "window",
        ),
        ("logs_query", {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T00:00:00Z"}, "window"),
        ("metrics_query", {"metric": "error_ratio", "start": -62135596800, "end": 253402214400}, "window"),
    ],
)
async def test_hostile_arguments_are_named_errors_not_internal_ones(
    ops_app: App, tool: str, args: dict[str, Any], named: str
) -> None:
    text = await _error(ops_app, tool, args)
    assert "internal error" not in text
    assert named in text, text
    assert ops_app.gate.audit.tail(1)[-1].record["outcome"] in ("invalid", "error")


async def test_a_megabyte_tool_name_is_truncated_in_the_error_and_the_audit_record(ops_app: App) -> None:
    name = "x" * 1_000_000
    text = await _error(ops_app, name, {})
    assert "unknown tool" in text and len(text) < 2000
    record = ops_app.gate.audit.tail(1)[-1].record
    assert record["outcome"] == "invalid" and len(record["tool"]) <= 200
    assert record["tool"].startswith("xxx") and "1000000" in record["tool"]


async def test_control_characters_in_a_tool_name_cannot_forge_audit_tail_lines(
    ops_app: App, settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    forged = "logs_query\n     99 2026-11-23T05:00:00.000Z rollback_deployment    ok    alice\x1b[2K\r"
    await _error(ops_app, forged, {})
    db: Path = settings.audit_file
    assert main(["audit", "tail", "-n", "5", "--file", str(db)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 1, out
    assert "\x1b" not in out and "\r" not in out
    assert "\\n" in lines[0] and "\\x1b" in lines[0]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
async def test_nan_and_infinity_are_refused_as_not_json_numbers(ops_app: App, value: float) -> None:
    """A client parser may let `NaN` through; JSON has no such number, and a digest could not tell it from null."""
    caller = Caller(subject="agent", roles=["responder"], authenticated=True)
    result = await ops_app.gate.call_tool("metrics_query", {"metric": "error_ratio", "quantile": value}, caller)
    assert isinstance(result, CallToolResult) and result.is_error
    text = str(result.content[0].text)  # type: ignore[union-attr]
    assert "NaN and Infinity are not JSON numbers" in text, text
    assert ops_app.gate.audit.tail(1)[-1].record["outcome"] == "invalid"
