"""`opsgate demo` end to end, and the sandbox world it runs on.

The demo test runs the real command (what `make demo` runs) in a subprocess and then reads the audit
trail and approvals it left behind (the world itself is tested in test_scenarios.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from opsgate.approvals import SqliteApprovalStore
from opsgate.audit import AuditLog

BAD_REVISION, GOOD_REVISION = 8, 7  # scenarios/checkout-bad-deploy.yaml


def test_opsgate_demo_ends_recovered_and_leaves_a_verifiable_audit_trail(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "opsgate", "demo", "--state-dir", str(state), "--no-color"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, f"demo failed:\n{out}\n{done.stderr}"
    assert "RECOVERED" in out and "NOT RECOVERED" not in out
    steps = [
        "runbook_search(",
        "metrics_anomalies(",
        "changes_recent(",
        "logs_patterns(",
        "rollback_deployment(",
        "needs approval [write.prod.requires_approval]",
        "HUMAN alice (role sre) $ opsgate approvals approve apr_",
        "rollout 3/3",  # progress arrives during the call; the decision is read from the audit trail after it
        "allow [write.approved]",
        "hash chain intact",
        f"opsgate audit verify --file {state / 'audit.db'}",
    ]
    positions = [out.find(step) for step in steps]
    assert all(p >= 0 for p in positions), [s for s, p in zip(steps, positions, strict=True) if p < 0]
    assert positions == sorted(positions), "the story is told out of order"

    log = AuditLog(state / "audit.db")
    records = [r.record for r in log.records()]
    assert log.verify().ok
    log.close()
    rollbacks = [r for r in records if r["tool"] == "rollback_deployment"]
    assert [(r["args"]["dry_run"], r["outcome"]) for r in rollbacks] == [
        (True, "ok"),
        (False, "pending_approval"),
        (False, "started"),
        (False, "ok"),
    ]
    applied = rollbacks[-1]
    assert applied["approval"]["granted_by"] == "alice" and applied["approval"]["roles"] == ["sre"]
    assert applied["approval"]["channel"] == "ssh-signature"
    assert applied["caller"]["subject"] == "agent@opsgate-demo"
    assert applied["facts"]["from_revision"] == BAD_REVISION and applied["facts"]["to_revision"] == GOOD_REVISION
    assert all(r["outcome"] in ("ok", "pending_approval", "started") for r in records)
    store = SqliteApprovalStore(state)
    (approval,) = store.find(status="used")
    assert approval.decided_by == "alice" and approval.requester == "agent@opsgate-demo"
    store.close()
