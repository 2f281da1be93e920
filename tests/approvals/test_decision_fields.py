"""The gate honours every field of a decision, through both engines (issue 9 item 3).

Probe: a policy answering `{"allow": true, "require_approval": true}`, or only `{"allow": true}`, for a
real write made the gate execute it without any approval. Each policy here is real Rego, evaluated by
the embedded engine (regorus) and by the OPA engine over the Data API (the loopback stand-in).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mcp import Client

from opsgate.config import ApprovalSettings, Settings
from opsgate.policy.engine import PolicyEngine
from opsgate.policy.loader import make_engine
from opsgate.server import App
from tests.support import testkit
from tests.support.approvers import approver, cli_approve, write_approvers

from ..policy.opa_data_api_server import serve

WRITE = {"namespace": "shop", "service": "checkout", "value": 7, "dry_run": False}


def _policy_dir(tmp_path: Path, decision: str) -> Path:
    folder = tmp_path / "policies" / "opsgate"
    folder.mkdir(parents=True)
    (folder / "decision.rego").write_text(f"package opsgate\n\ndecision := {decision}\n")
    return folder.parent


@contextmanager
def _engine(kind: str, policy_dir: Path) -> Iterator[PolicyEngine]:
    if kind == "embedded":
        yield make_engine("embedded", policy_dir=policy_dir)
        return
    with serve(policy_dir) as (url, _):
        yield make_engine("opa", url=url, timeout_s=5, retries=0)


async def _write(app: App, arguments: dict[str, object]) -> tuple[bool, str, str]:
    async with Client(app.server) as client:
        result = await client.call_tool("testkit_write", arguments)
    outcome = str((result.meta or {}).get("opsgate/outcome", "ok"))
    return bool(result.is_error), outcome, result.content[0].text  # type: ignore[union-attr]


ENGINES = ["embedded", "opa"]


@pytest.mark.parametrize("kind", ENGINES)
async def test_require_approval_wins_over_allow(make_app: Callable[..., App], tmp_path: Path, kind: str) -> None:
    ledger = testkit.Ledger()
    with _engine(kind, _policy_dir(tmp_path, '{"allow": true, "require_approval": true}')) as engine:
        app = make_app((), capabilities=[testkit.build(ledger)], engine=engine)
        is_error, outcome, text = await _write(app, WRITE)
        await app.aclose()
    assert is_error, text
    assert outcome == "pending_approval", text
    assert ledger.executed == []


@pytest.mark.parametrize("kind", ENGINES)
async def test_require_approval_with_a_valid_approval_attached_still_does_not_execute(
    make_app: Callable[..., App], settings: Settings, tmp_path: Path, kind: str
) -> None:
    """A decision that keeps requiring approval after a real, signed one was presented is never a yes."""
    alice = approver(tmp_path / "humans", "alice@example.com", ["sre"])
    settings.approvals = ApprovalSettings(approvers_file=write_approvers(tmp_path / "approvers.yaml", [alice]))
    ledger = testkit.Ledger()
    with _engine(kind, _policy_dir(tmp_path, '{"allow": true, "require_approval": true}')) as engine:
        app = make_app((), capabilities=[testkit.build(ledger)], engine=engine)
        async with Client(app.server) as client:
            pending = await client.call_tool("testkit_write", WRITE)
            approval_id = (pending.meta or {})["opsgate/approval"]["id"]
            assert cli_approve(settings.state_dir, settings.approvers_file, approval_id, alice.key) == 0
            again = await client.call_tool("testkit_write", {**WRITE, "approval_id": approval_id})
        records = [r.record for r in app.gate.audit.records()]
        await app.aclose()
    assert again.is_error and (again.meta or {})["opsgate/outcome"] == "pending_approval"
    assert records[-1]["approval"]["id"] != approval_id  # a new request: the policy still wants one
    assert ledger.executed == []


@pytest.mark.parametrize("kind", ENGINES)
@pytest.mark.parametrize(
    ("decision", "missing"),
    [('{"allow": true}', "require_approval"), ('{"require_approval": false, "reasons": []}', "allow")],
)
async def test_decision_missing_a_field_the_gate_needs_denies_a_write(
    make_app: Callable[..., App], tmp_path: Path, kind: str, decision: str, missing: str
) -> None:
    ledger = testkit.Ledger()
    with _engine(kind, _policy_dir(tmp_path, decision)) as engine:
        app = make_app((), capabilities=[testkit.build(ledger)], engine=engine)
        is_error, outcome, text = await _write(app, WRITE)
        records = [r.record for r in app.gate.audit.records()]
        await app.aclose()
    assert is_error and outcome == "denied", text
    assert "fail closed" in text and "malformed" in text and missing in text, text
    assert ledger.executed == []
    assert records[-1]["decision"]["allow"] is False


@pytest.mark.parametrize("kind", ENGINES)
async def test_read_decision_with_only_allow_still_serves_reads(
    make_app: Callable[..., App], tmp_path: Path, kind: str
) -> None:
    """`require_approval` is a field the gate needs for writes; a read needs only `allow`."""
    with _engine(kind, _policy_dir(tmp_path, '{"allow": true}')) as engine:
        app = make_app((), capabilities=[testkit.build()], engine=engine)
        async with Client(app.server) as client:
            result = await client.call_tool("testkit_echo", {"text": "hi"})
        await app.aclose()
    assert not result.is_error
