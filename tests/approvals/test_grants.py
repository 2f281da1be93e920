"""Approvals for every write tool (here the testkit write): single-use grants bound to the exact
arguments, target, requester and plan, with an expiry, proven by the approver's own SSH key.

The attacker in these tests is the agent itself, with a shell as the server's user: it can run
`opsgate`, read and write the state dir, and hold keys of its own; it cannot use an approver's key.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from opsgate import cli, sshsig
from opsgate.approvals import Approvals, ApproverDirectory, SqliteApprovalStore
from opsgate.approvers import NAMESPACE
from opsgate.config import ApprovalSettings, LocalCaller, Settings
from opsgate.server import App, build_app
from tests.support import testkit
from tests.support.approvers import ApproverKey, approver, cli_approve, make_key, write_approvers

ARGS = {"namespace": "shop", "service": "checkout", "value": 3, "dry_run": False}
AGENT = "agent@claude-code"


def text(result: Any) -> str:
    block = result.content[0]
    return str(getattr(block, "text", ""))


class Clock:
    def __init__(self) -> None:
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, ApproverKey]:
    folder = tmp_path / "humans"
    return {
        "alice": approver(folder, "alice@example.com", ["sre"], aliases=["local:alice"]),
        "carol": approver(folder, "carol@example.com", ["developer"]),
    }


@pytest.fixture
def settings(tmp_path: Path, keys: dict[str, ApproverKey]) -> Settings:
    approvers = write_approvers(tmp_path / "policy" / "approvers.yaml", list(keys.values()))
    return Settings(
        state_dir=tmp_path / "state",
        caller=LocalCaller(subject=AGENT),
        approvals=ApprovalSettings(approvers_file=approvers),
    )


@pytest.fixture
async def build(settings: Settings, clock: Clock) -> AsyncIterator[Callable[..., App]]:
    built: list[App] = []

    def make(subject: str | None = None) -> App:
        # another caller on the same approvals, with its own audit trail (one writer per audit file)
        s = settings
        if subject is not None:
            name = subject.encode().hex()
            other = {"caller": LocalCaller(subject=subject), "audit_path": settings.state_dir / f"audit-{name}.db"}
            s = settings.model_copy(update=other)
        hook = Approvals(SqliteApprovalStore(s.state_dir, clock=clock), approvers=ApproverDirectory(s.approvers_file))
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
    common = ["--state-dir", str(settings.state_dir), "--approvers", str(settings.approvers_file)]
    return cli.main(["approvals", argv[0], *common, *argv[1:]])


def _approve(settings: Settings, approval_id: str, who: ApproverKey) -> int:
    return cli_approve(settings.state_dir, settings.approvers_file, approval_id, who.key)


async def _call(app: App, args: dict[str, Any], mode: str = "2026-07-28") -> Any:
    async with Client(app.server, mode=mode) as client:
        return await client.call_tool("testkit_write", args)


async def _pending(app: App, args: dict[str, Any] = ARGS, mode: str = "2026-07-28") -> str:
    result = await _call(app, args, mode)
    assert result.is_error and (result.meta or {})["opsgate/outcome"] == "pending_approval", text(result)
    return str((result.meta or {})["opsgate/approval"]["id"])


def _db(settings: Settings, sql: str, params: tuple[Any, ...]) -> None:
    with sqlite3.connect(settings.state_dir / "approvals.db") as db:
        db.execute(sql, params)


async def test_signed_grant_is_single_use_and_recorded(
    build: Callable[..., App],
    settings: Settings,
    keys: dict[str, ApproverKey],
    wire_mode: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = build()
    approval_id = await _pending(app, mode=wire_mode)
    assert approval_id == await _pending(app, mode=wire_mode), "the same call reuses its pending approval"
    assert _cli(settings, "list") == 0 and approval_id in capsys.readouterr().out
    assert _approve(settings, approval_id, keys["alice"]) == 0
    out = capsys.readouterr().out
    assert "approved" in out and "alice@example.com" in out and "SHA256:" in out
    done = await _call(app, {**ARGS, "approval_id": approval_id}, wire_mode)
    assert not done.is_error, text(done)
    assert _ledger(app) == [{"tool": "testkit_write", "value": 3, "dry_run": False}]
    record = app.gate.audit.tail(1)[0].record
    approval = record["approval"]
    assert approval["granted_by"] == "alice@example.com" and approval["roles"] == ["sre"]
    assert approval["channel"] == "ssh-signature" and approval["proof"].startswith("ssh-ed25519 SHA256:")
    again = await _call(app, {**ARGS, "approval_id": approval_id}, wire_mode)
    assert again.is_error and "already used" in text(again)
    assert len(_ledger(app)) == 1
    assert not (settings.state_dir / "approvals.key").exists(), "no shared secret is proof of anything"
    assert app.gate.audit.verify().ok


@pytest.mark.parametrize("as_name", [AGENT, AGENT + " ", AGENT + "\u200b", "alice@example.com"])
async def test_probe_self_approval_with_as_flag_executes_nothing(
    build: Callable[..., App], settings: Settings, as_name: str
) -> None:
    """Probe: the agent runs `opsgate approvals approve ID --as <name> --role sre` itself.

    On the old code any `--as` other than the exact requester (a trailing space, a zero-width space,
    a real approver's name) granted the approval and the write ran."""
    app = build()
    approval_id = await _pending(app)
    with contextlib.suppress(SystemExit):  # `--as` is no option any more: argparse refuses it
        _cli(settings, "approve", approval_id, "--as", as_name, "--role", "sre")
    result = await _call(app, {**ARGS, "approval_id": approval_id})
    assert result.is_error, text(result)
    assert _ledger(app) == []


@pytest.mark.parametrize("subject", ["local:alice", "local:alice ", " local:alice", "local:al\u200bice", "LOCAL:ALICE"])
async def test_self_approval_is_judged_on_the_verified_identity(
    build: Callable[..., App], settings: Settings, keys: dict[str, ApproverKey], subject: str
) -> None:
    """alice's agent runs as `local:alice` (her alias) with an invisible or cosmetic difference: alice's
    own signature does not approve its request, neither through the CLI nor written into the store."""
    agent = build(subject=subject)
    approval_id = await _pending(agent)
    assert _approve(settings, approval_id, keys["alice"]) == 1
    store = SqliteApprovalStore(settings.state_dir)
    statement = store.get(approval_id).statement("approve")
    signature = sshsig.sign_with_key(sshsig.load_private_key(keys["alice"].key), statement, NAMESPACE)
    store.decide(
        approval_id, status="granted", by="bob", roles=["sre"], channel="ssh-signature", proof=signature, note=None
    )
    store.close()
    result = await _call(agent, {**ARGS, "approval_id": approval_id})
    assert result.is_error and "nobody approves their own request" in text(result), text(result)
    assert (result.meta or {})["opsgate/outcome"] == "denied"
    assert _ledger(agent) == []


def test_an_identity_with_invisible_characters_is_refused_in_the_approvers_file(tmp_path: Path) -> None:
    from opsgate.approvers import Approvers, ApproversError

    _, public = make_key(tmp_path, "x")
    for bad in ["alice\u200b", "alice ", "ali\u0007ce", "\u202ealice"]:
        with pytest.raises(ApproversError, match="identity"):
            Approvers.parse({"approvers": [{"identity": bad, "roles": ["sre"], "ssh_keys": [public]}]})


async def test_probe_forged_grants_in_the_state_dir_are_refused(
    build: Callable[..., App], settings: Settings, keys: dict[str, ApproverKey], tmp_path: Path
) -> None:
    """Probe: with write access to the state dir, the agent writes the grant itself.

    On the old code it read `approvals.key` beside the database and signed the row with the HMAC;
    here it also tries its own SSH key, a signature over another statement, and an unsigned row."""
    import hashlib
    import hmac

    app = build()
    refused = []

    # 1. the old HMAC forgery: a key file beside the database signs the row
    first = await _pending(app, {**ARGS, "value": 11})
    key_file = settings.state_dir / "approvals.key"
    if not key_file.exists():
        key_file.write_bytes(b"k" * 32)
    store = SqliteApprovalStore(settings.state_dir)
    row = store.get(first)
    store.close()
    fields = {
        "id": row.id,
        "kind": "grant",
        "tool": row.tool,
        "args_digest": row.args_digest,
        "target": row.target,
        "requester": row.requester,
        "expires_at": row.expires_at,
        "granted_by": "alice",
        "roles": ["sre"],
        "granted_at": 1.0,
    }
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    mac = hmac.new(key_file.read_bytes(), body.encode(), hashlib.sha256).hexdigest()
    _db(
        settings,
        "UPDATE approvals SET status='granted', decided_by='alice', decided_roles='[\"sre\"]', decided_at=1.0,"
        " channel='ssh-signature', proof=? WHERE id=?",
        (mac, first),
    )
    refused.append(await _call(app, {**ARGS, "value": 11, "approval_id": first}))

    # 2. signed with the agent's own key (not in the approvers file)
    second = await _pending(app, {**ARGS, "value": 12})
    own_key, _ = make_key(tmp_path / "agent", "agent")
    store = SqliteApprovalStore(settings.state_dir)
    statement = store.get(second).statement("approve")
    store.decide(
        second,
        status="granted",
        by="alice@example.com",
        roles=["sre"],
        channel="ssh-signature",
        proof=sshsig.sign_with_key(sshsig.load_private_key(own_key), statement, NAMESPACE),
        note=None,
    )
    # 3. alice's real signature of another approval, replayed onto this one
    third = await _pending(app, {**ARGS, "value": 13})
    assert _approve(settings, third, keys["alice"]) == 0
    fourth = await _pending(app, {**ARGS, "value": 14})
    stolen = store.get(third).proof
    store.decide(
        fourth,
        status="granted",
        by="alice@example.com",
        roles=["sre"],
        channel="ssh-signature",
        proof=stolen,
        note=None,
    )
    # 4. a row claiming the approval page's login, with no ID token
    fifth = await _pending(app, {**ARGS, "value": 15})
    store.decide(fifth, status="granted", by="alice", roles=["sre"], channel="oidc", proof="x.y.z", note=None)
    store.close()
    refused.append(await _call(app, {**ARGS, "value": 12, "approval_id": second}))
    refused.append(await _call(app, {**ARGS, "value": 14, "approval_id": fourth}))
    refused.append(await _call(app, {**ARGS, "value": 15, "approval_id": fifth}))
    for result in refused:
        assert result.is_error and "proof does not hold" in text(result), text(result)
        assert (result.meta or {})["opsgate/outcome"] == "denied"
    assert _ledger(app) == []
    assert app.gate.audit.verify().ok


async def test_probe_a_used_grant_flipped_back_in_the_store_is_not_replayed(
    build: Callable[..., App], settings: Settings, keys: dict[str, ApproverKey]
) -> None:
    app = build()
    approval_id = await _pending(app)
    assert _approve(settings, approval_id, keys["alice"]) == 0
    assert not (await _call(app, {**ARGS, "approval_id": approval_id})).is_error
    _db(settings, "UPDATE approvals SET status='granted', used_at=NULL, used_by_call=NULL WHERE id=?", (approval_id,))
    again = await _call(app, {**ARGS, "approval_id": approval_id})
    assert again.is_error and "already used" in text(again)
    assert len(_ledger(app)) == 1


async def test_unusable_approvals_are_refused_audited_and_run_nothing(
    build: Callable[..., App], settings: Settings, keys: dict[str, ApproverKey], clock: Clock
) -> None:
    app = build()
    refused = []

    # still pending
    pending = await _pending(app)
    refused.append((await _call(app, {**ARGS, "approval_id": pending}), "still pending"))

    # denied (unsigned denials are accepted: a denial only stops a write)
    assert _cli(settings, "deny", pending, "--note", "not now") == 0
    refused.append((await _call(app, {**ARGS, "approval_id": pending}), "(not now)"))

    # for different arguments
    other = await _pending(app, {**ARGS, "value": 4})
    assert _approve(settings, other, keys["alice"]) == 0
    refused.append((await _call(app, {**ARGS, "approval_id": other}), "different arguments"))

    # requested by someone else
    mallory = build(subject="local:mallory")
    refused.append((await _call(mallory, {**ARGS, "value": 4, "approval_id": other}), "requested by"))

    # a tampered row: roles edited in the database count for nothing (roles come from the approvers file)
    junior = await _pending(app, {**ARGS, "value": 7})
    assert _approve(settings, junior, keys["carol"]) == 0
    _db(settings, "UPDATE approvals SET decided_roles='[\"sre\"]', decided_by='alice' WHERE id=?", (junior,))
    refused.append((await _call(app, {**ARGS, "value": 7, "approval_id": junior}), "it needs one of"))

    # an expiry moved in the database breaks the signature
    moved = await _pending(app, {**ARGS, "value": 9})
    assert _approve(settings, moved, keys["alice"]) == 0
    _db(settings, "UPDATE approvals SET expires_at = expires_at + 86400 WHERE id=?", (moved,))
    refused.append((await _call(app, {**ARGS, "value": 9, "approval_id": moved}), "proof does not hold"))

    # expired
    late = await _pending(app, {**ARGS, "value": 8})
    assert _approve(settings, late, keys["alice"]) == 0
    clock.shift = 3600 * 24
    refused.append((await _call(app, {**ARGS, "value": 8, "approval_id": late}), "expired"))

    for result, expected in refused:
        assert result.is_error and expected in text(result), text(result)
        assert (result.meta or {})["opsgate/outcome"] == "denied"
    assert _ledger(app) == [] and _ledger(mallory) == []
    assert app.gate.audit.verify().ok


async def test_unknown_approval_id_is_refused(build: Callable[..., App]) -> None:
    app = build()
    result = await _call(app, {**ARGS, "approval_id": "apr_00000000000000000000"})
    assert result.is_error and "no approval with id" in text(result)
    assert _ledger(app) == []


def test_cli_reports_unknown_ids_and_unlisted_keys(
    settings: Settings, keys: dict[str, ApproverKey], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert _approve(settings, "apr_nope", keys["alice"]) == 1
    assert "no approval with id" in capsys.readouterr().err
    assert _cli(settings, "list", "--all", "--json") == 0
    assert capsys.readouterr().out.strip() == "[]"
    assert _cli(settings, "allowed-signers") == 0
    allowed = capsys.readouterr().out
    assert allowed.startswith('alice@example.com namespaces="opsgate-approval" ssh-ed25519 ')


async def test_cli_refuses_a_key_that_is_not_an_approvers(
    build: Callable[..., App], settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = build()
    approval_id = await _pending(app)
    own_key, _ = make_key(tmp_path / "agent", "agent")
    assert cli_approve(settings.state_dir, settings.approvers_file, approval_id, own_key) == 1
    assert "not an approver's key" in capsys.readouterr().err
    result = await _call(app, {**ARGS, "approval_id": approval_id})
    assert result.is_error and "still pending" in text(result)


def test_approval_channels_in_policy_data_are_validated() -> None:
    from opsgate.policy.data_schema import validate_policy_data
    from opsgate.policy.decision import PolicyError

    data = json.loads((Path(__file__).resolve().parents[2] / "policies" / "data.json").read_text())
    config = data["opsgate_config"]
    config["approval_channels"] = {"production": ["oidc"], "other": ["ssh-signature", "confirmation"]}
    validate_policy_data(data, "data.json")
    config["approval_channels"] = {"production": ["hmac"], "other": []}
    with pytest.raises(PolicyError, match=r"approval_channels\.production"):
        validate_policy_data(data, "data.json")
