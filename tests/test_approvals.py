"""Approvals for every write tool (here the testkit write): signed, single-use grants bound to the
exact arguments, target and requester, with an expiry; nobody approves their own request."""

from __future__ import annotations

import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from opsgate import cli
from opsgate.approvals import KEY_FILE, Approvals, ApprovalStore, load_or_create_key, sign
from opsgate.config import LocalCaller, Settings
from opsgate.server import App, build_app
from tests.support import testkit


def text(result: Any) -> str:
    """The first text block of a tool result (its summary or error message)."""
    block = result.content[0]
    return str(getattr(block, "text", ""))


ARGS = {"namespace": "shop", "service": "checkout", "value": 3, "dry_run": False}


class Clock:
    def __init__(self) -> None:
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def build(settings: Settings, clock: Clock) -> AsyncIterator[Callable[..., App]]:
    built: list[App] = []

    def make(subject: str | None = None) -> App:
        # another caller on the same approvals, with its own audit trail (one writer per audit file)
        s = settings
        if subject is not None:
            other = {"caller": LocalCaller(subject=subject), "audit_path": settings.state_dir / f"audit-{subject}.db"}
            s = settings.model_copy(update=other)
        hook = Approvals(ApprovalStore(s.state_dir, clock=clock))
        app = build_app(s, (), approvals=hook, capabilities=[testkit.build()])
        built.append(app)
        return app

    yield make
    for app in built:
        await app.aclose()


def _ledger(app: App) -> list[dict[str, Any]]:
    executed: list[dict[str, Any]] = next(c for c in app.capabilities if c.name == "testkit").ledger.executed  # type: ignore[attr-defined]
    return executed


def _cli(settings: Settings, *argv: str) -> int:
    return cli.main(["approvals", argv[0], "--state-dir", str(settings.state_dir), *argv[1:]])


async def _call(app: App, mode: str, args: dict[str, Any]) -> Any:
    async with Client(app.server, mode=mode) as client:
        return await client.call_tool("testkit_write", args)


async def _pending(app: App, mode: str, args: dict[str, Any] = ARGS) -> str:
    result = await _call(app, mode, args)
    assert result.is_error and (result.meta or {})["opsgate/outcome"] == "pending_approval"
    return str((result.meta or {})["opsgate/approval"]["id"])


async def test_grant_is_single_use_and_recorded(
    build: Callable[..., App], settings: Settings, wire_mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app = build()
    approval_id = await _pending(app, wire_mode)
    assert approval_id == await _pending(app, wire_mode), "the same call reuses its pending approval"
    assert _cli(settings, "list") == 0 and approval_id in capsys.readouterr().out
    assert _cli(settings, "approve", approval_id, "--as", "alice", "--role", "sre") == 0
    done = await _call(app, wire_mode, {**ARGS, "approval_id": approval_id})
    assert not done.is_error, text(done)
    assert _ledger(app) == [{"tool": "testkit_write", "value": 3, "dry_run": False}]
    record = app.gate.audit.tail(1)[0].record
    assert record["approval"]["granted_by"] == "alice" and record["approval"]["roles"] == ["sre"]
    again = await _call(app, wire_mode, {**ARGS, "approval_id": approval_id})
    assert again.is_error and "already used" in text(again)
    assert len(_ledger(app)) == 1
    assert stat.S_IMODE((settings.state_dir / KEY_FILE).stat().st_mode) == 0o600
    assert app.gate.audit.verify().ok


async def test_unusable_approvals_are_refused_audited_and_run_nothing(
    build: Callable[..., App], settings: Settings, clock: Clock, wire_mode: str
) -> None:
    app = build()
    requester = settings.caller.subject

    # still pending
    pending = await _pending(app, wire_mode)
    refused = [(await _call(app, wire_mode, {**ARGS, "approval_id": pending}), "still pending")]

    # denied
    assert _cli(settings, "deny", pending, "--as", "bob", "--note", "not now") == 0
    refused.append((await _call(app, wire_mode, {**ARGS, "approval_id": pending}), "denied by bob (not now)"))

    # for different arguments
    other = await _pending(app, wire_mode, {**ARGS, "value": 4})
    assert _cli(settings, "approve", other, "--as", "alice", "--role", "sre") == 0
    refused.append((await _call(app, wire_mode, {**ARGS, "approval_id": other}), "different arguments"))

    # requested by someone else
    mallory = build(subject="local:mallory")
    refused.append((await _call(mallory, wire_mode, {**ARGS, "value": 4, "approval_id": other}), "requested by"))

    # self-approval: the CLI refuses it, and a forged self-approval (valid signature) is refused too
    selfish = await _pending(app, wire_mode, {**ARGS, "value": 5})
    assert _cli(settings, "approve", selfish, "--as", requester, "--role", "sre") == 1
    store = ApprovalStore(settings.state_dir)
    row = store.get(selfish)
    store.close()
    forged = row.__class__(
        **{
            **row.__dict__,
            "status": "granted",
            "decided_by": requester,
            "decided_roles": ["sre"],
            "decided_at": time.time(),
        }
    )
    key = load_or_create_key(settings.state_dir)
    with sqlite3.connect(settings.state_dir / "approvals.db") as db:
        db.execute(
            "UPDATE approvals SET status='granted', decided_by=?, decided_roles='[\"sre\"]', decided_at=?,"
            " signature=? WHERE id=?",
            (requester, forged.decided_at, sign(key, forged.signed_fields()), selfish),
        )
    refused.append((await _call(app, wire_mode, {**ARGS, "value": 5, "approval_id": selfish}), "own requester"))

    # tampered: a role edited in the database without the key
    tampered = await _pending(app, wire_mode, {**ARGS, "value": 6})
    assert _cli(settings, "approve", tampered, "--as", "alice", "--role", "dev") == 0
    with sqlite3.connect(settings.state_dir / "approvals.db") as db:
        db.execute("UPDATE approvals SET decided_roles='[\"sre\"]' WHERE id=?", (tampered,))
    refused.append((await _call(app, wire_mode, {**ARGS, "value": 6, "approval_id": tampered}), "signature"))

    # a role the policy does not accept as approver
    junior = await _pending(app, wire_mode, {**ARGS, "value": 7})
    assert _cli(settings, "approve", junior, "--as", "carol", "--role", "dev") == 0
    refused.append((await _call(app, wire_mode, {**ARGS, "value": 7, "approval_id": junior}), "it needs one of"))

    # expired
    late = await _pending(app, wire_mode, {**ARGS, "value": 8})
    assert _cli(settings, "approve", late, "--as", "alice", "--role", "sre") == 0
    clock.shift = 3600 * 24
    refused.append((await _call(app, wire_mode, {**ARGS, "value": 8, "approval_id": late}), "expired"))

    for result, expected in refused:
        assert result.is_error and expected in text(result), text(result)
        assert (result.meta or {})["opsgate/outcome"] == "denied"
    assert _ledger(app) == [] and _ledger(mallory) == []
    assert app.gate.audit.verify().ok


async def test_unknown_approval_id_is_refused(build: Callable[..., App], wire_mode: str) -> None:
    app = build()
    result = await _call(app, wire_mode, {**ARGS, "approval_id": "apr_00000000000000000000"})
    assert result.is_error and "no approval with id" in text(result)
    assert _ledger(app) == []


def test_cli_reports_unknown_ids_and_decided_approvals(
    settings: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert _cli(settings, "approve", "apr_nope", "--as", "alice", "--role", "sre") == 1
    assert "no approval with id" in capsys.readouterr().err
    assert _cli(settings, "list", "--all", "--json") == 0
    assert capsys.readouterr().out.strip() == "[]"
