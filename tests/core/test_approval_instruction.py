"""The approval instruction a write's result gives is a command a human can run as written, from any
folder, against the server's own state dir and approvers file: the tool result carries it (clients hide
stderr). Here with the sandbox's throwaway approver, whose key the server knows."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
from mcp import Client

from opsgate import cli
from opsgate.approvals import Approvals
from opsgate.config import Settings
from opsgate.sandbox.approver import APPROVERS_FILE, write_sandbox_approver
from opsgate.server import App
from tests.support import testkit

ARGS = {"namespace": "shop", "service": "checkout", "value": 3, "dry_run": False}


async def test_the_approval_command_in_the_result_works_as_written(
    make_app: Callable[..., App], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "sandbox-state"
    state.mkdir()
    key = write_sandbox_approver(state)
    settings = Settings(state_dir=state, approvals={"approvers_file": state / APPROVERS_FILE})
    hook = Approvals.from_settings(settings)
    hook.approver_key = str(key)
    app = make_app((), capabilities=[testkit.build()], settings=settings, approvals=hook)
    try:
        async with Client(app.server, mode="2026-07-28") as client:
            pending = await client.call_tool("testkit_write", ARGS)
            assert pending.is_error
            text = str(pending.content[0].text)
            approval = (pending.meta or {})["opsgate/approval"]
            commands = [c for c in re.findall(r"`([^`]+)`", text) if " approvals approve " in f" {c} "]
            assert commands == [approval["approve_command"]], text
            command = commands[0]
            assert "<" not in command, f"placeholders are not a command: {command}"
            words = shlex.split(command)
            assert Path(words[0]).name == "opsgate" and approval["id"] in words
            # a human, in another folder, with no configuration in the environment, runs it as written
            elsewhere = tmp_path / "elsewhere"
            elsewhere.mkdir()
            monkeypatch.chdir(elsewhere)
            for var in ("OPSGATE_CONFIG", "OPSGATE_STATE_DIR"):
                monkeypatch.delenv(var, raising=False)
            monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "some-other-default"))
            assert cli.main(words[1:]) == 0
            done = await client.call_tool("testkit_write", {**ARGS, "approval_id": approval["id"]})
        assert not done.is_error, done.content
    finally:
        await app.aclose()


def test_a_real_servers_instruction_names_its_state_dir_and_approvers_and_leaves_the_key_to_the_human(
    tmp_path: Path,
) -> None:
    settings = Settings(state_dir=tmp_path / "state", approvals={"approvers_file": tmp_path / "approvers.yaml"})
    hook = Approvals.from_settings(settings)
    try:
        words = shlex.split(hook.approve_command("apr_123"))
    finally:
        hook.close()
    assert words[1:5] == ["approvals", "approve", "apr_123", "--key"] and words[5] == "~/.ssh/id_ed25519"
    assert words[words.index("--state-dir") + 1] == str((tmp_path / "state").resolve())
    assert words[words.index("--approvers") + 1] == str((tmp_path / "approvers.yaml").resolve())
