"""The `ApprovalStore` contract, for every implementation (SQLite and PostgreSQL): conditional state
changes, so of racing deciders or consumers exactly one wins."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsgate.approvals import ApprovalError, ApprovalStore, SqliteApprovalStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApprovalStore]:
    if request.param == "postgresql":
        # the shared store replicas use (opsgate.state.approvals_pg), on a real PostgreSQL (tests/support/postgres.py)
        from opsgate.state.approvals_pg import PgApprovalStore
        from opsgate.state.postgres import PgDatabase

        db = PgDatabase(request.getfixturevalue("pg_url"))
        yield PgApprovalStore(db)
        db.close()
        return
    made = SqliteApprovalStore(tmp_path / "state")
    yield made
    made.close()


def _pending(store: ApprovalStore, **overrides: Any) -> str:
    fields: dict[str, Any] = {
        "kind": "grant",
        "tool": "testkit_write",
        "args_digest": "sha256:a",
        "args": {"value": 1},
        "target": "prod/shop/checkout",
        "requester": "agent@x",
        "call_id": "call_1",
        "reasons": ["needs approval"],
        "approvers": ["sre"],
        "plan": {"from_revision": 7, "to_revision": 6},
    }
    fields.update(overrides)
    return store.create(**fields).id


def _grant(store: ApprovalStore, approval_id: str) -> None:
    store.decide(
        approval_id, status="granted", by="alice", roles=["sre"], channel="ssh-signature", proof="sig", note=None
    )


def test_the_same_call_and_plan_reuse_the_pending_approval(store: ApprovalStore) -> None:
    first = _pending(store)
    assert _pending(store) == first
    assert _pending(store, plan={"from_revision": 8, "to_revision": 7}) != first
    assert _pending(store, requester="agent@y") != first
    approval = store.get(first)
    assert approval.status == "pending" and approval.plan == {"from_revision": 7, "to_revision": 6}
    assert approval.statement("approve") != approval.statement("deny")
    assert f"plan_digest: {approval.plan_digest}".encode() in approval.statement("approve")


def test_exactly_one_of_racing_consumers_wins(store: ApprovalStore) -> None:
    approval_id = _pending(store)
    _grant(store, approval_id)
    wins: list[str] = []
    losses: list[str] = []
    barrier = threading.Barrier(8)

    def consume(n: int) -> None:
        barrier.wait()
        try:
            store.use(approval_id, f"call_{n}")
            wins.append(f"call_{n}")
        except ApprovalError:
            losses.append(f"call_{n}")

    threads = [threading.Thread(target=consume, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7
    assert store.get(approval_id).used_by_call == wins[0]


def test_decisions_and_voids_are_conditional(store: ApprovalStore) -> None:
    approval_id = _pending(store)
    _grant(store, approval_id)
    with pytest.raises(ApprovalError, match="already granted"):
        _grant(store, approval_id)
    store.void(approval_id, "the target moved")
    assert store.get(approval_id).status == "void"
    with pytest.raises(ApprovalError):
        store.use(approval_id, "call_2")
    store.void(approval_id, "again")  # a void approval stays void, with its first reason
    assert store.get(approval_id).decision_note == "the target moved"


def test_secrets_in_arguments_are_masked_before_they_are_stored(store: ApprovalStore, tmp_path: Path) -> None:
    secret = "password=hunter2-Secret99"
    approval_id = _pending(store, args={"note": f"login with {secret}", "value": 1})
    stored = store.get(approval_id)
    assert "hunter2" not in str(stored.args) and "[REDACTED:" in stored.args["note"]
    assert stored.args["value"] == 1
    if isinstance(store, SqliteApprovalStore):
        db = tmp_path / "state" / "approvals.db"
        store.close()
        assert b"hunter2" not in db.read_bytes()
        assert db.stat().st_mode & 0o077 == 0, "approvals.db is readable by others"
