"""The approval instruction a write's result gives is a command a human can run as written, from any
folder, against the server's own state dir: the tool result carries it (clients hide stderr)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
from mcp import Client

from opsgate import cli
from opsgate.server import App
from tests.support import testkit

ARGS = {"namespace": "shop", "service": "checkout", "value": 3, "dry_run": False}


async def test_the_approval_command_in_the_result_works_as_written(
    make_app: Callable[..., App], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app((), capabilities=[testkit.build()])
    try:
        async with Client(app.server, mode="2026-07-28") as client:
            pending = await client.call_tool("testkit_write", ARGS)
            assert pending.is_error
            text = str(pending.content[0].text)
            approval_id = (pending.meta or {})["opsgate/approval"]["id"]
            commands = [c for c in re.findall(r"`([^`]+)`", text) if " approvals approve " in f" {c} "]
            assert len(commands) == 1, text
            command = commands[0]
            assert "<" not in command, f"placeholders are not a command: {command}"
            words = shlex.split(command)
            assert Path(words[0]).name == "opsgate" and approval_id in words
            # a human, in another folder, with no configuration in the environment, runs it as written
            elsewhere = tmp_path / "elsewhere"
            elsewhere.mkdir()
            monkeypatch.chdir(elsewhere)
            for var in ("OPSGATE_CONFIG", "OPSGATE_STATE_DIR"):
                monkeypatch.delenv(var, raising=False)
            monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "some-other-default"))
            monkeypatch.setenv("USER", "alice")
            assert cli.main(words[1:]) == 0
            done = await client.call_tool("testkit_write", {**ARGS, "approval_id": approval_id})
        assert not done.is_error, done.content
    finally:
        await app.aclose()
