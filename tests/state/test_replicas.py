"""Three `opsgate serve --transport http` processes sharing one PostgreSQL (issue 9, "Real components"):
one audit chain with every call in it, limits and breakers that hold across replicas and against
concurrent writes, and a replica killed with SIGKILL in the middle of a real rollback."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from opsgate import cli
from opsgate.audit_keys import JsonlSink
from opsgate.sandbox.kube_api import ControllerConfig, KubeApiServer, KubeCluster, seed_namespace
from opsgate.state import open_audit
from tests.support.approvers import approver, write_approvers
from tests.support.kube import KUBE_TEST_SEEDS
from tests.support.replicas import Replica, client, replicas, settings_of

pytestmark = pytest.mark.slow
REF = {"namespace": "shop", "deployment": "checkout"}
REAL = {**REF, "dry_run": False, "reason": "bad deploy"}


def _text(result: Any) -> str:
    return str(getattr(result.content[0], "text", ""))


def _verify(group: list[Replica]) -> Any:
    log = open_audit(settings_of(group[0]), check_anchor=False)
    exports = [JsonlSink(settings_of(r).audit_export_file) for r in group]
    report = log.verify(exports)
    records = [r.record for r in log.records()]
    log.close()
    return report, records


async def test_concurrent_calls_on_three_replicas_leave_one_verifiable_chain(
    tmp_path: Path, pg_url: str, kube_api: KubeApiServer
) -> None:
    with replicas(tmp_path, pg_url, kube_api.url) as group:

        async def burst(replica: Replica) -> list[str]:
            async with client(replica) as mcp:
                results = await asyncio.gather(
                    *(mcp.call_tool("runbook_search", {"query": f"checkout latency {i}"}) for i in range(300))
                )
            assert not any(r.is_error for r in results), [_text(r) for r in results if r.is_error][:3]
            return [str((r.meta or {})["opsgate/call_id"]) for r in results]

        call_ids = [c for ids in await asyncio.gather(*(burst(r) for r in group)) for c in ids]

        # concurrent real rollbacks of one Deployment, one per replica: exactly one applies
        async def rollback(replica: Replica) -> Any:
            async with client(replica) as mcp:
                return await mcp.call_tool("rollback_deployment", REAL)

        results = await asyncio.gather(*(rollback(r) for r in group))
        applied = [r for r in results if not r.is_error and r.structured_content["applied"]]
        refused = [r for r in results if r.is_error]
        assert len(applied) == 1 and len(refused) == 2, [_text(r) for r in results]
        assert all("budget" in _text(r) for r in refused)

        report, records = _verify(group)
    assert report.ok, report.problems
    assert len(call_ids) == 900 and set(call_ids) <= {r["call_id"] for r in records}
    assert report.records == len(records) == 900 + 1 + 3  # reads, one started record, three rollback outcomes
    assert report.exported >= 1


async def test_a_breaker_opened_on_one_replica_holds_on_the_others(
    tmp_path: Path, pg_url: str, kube_api: KubeApiServer
) -> None:
    for revision in (6, 5):
        kube_api.cluster.faults.mark_image_bad(f"registry.example.com/shop/checkout:v{revision}")
    limits = {"breaker_failures": 2}
    budgets = {"rollback_deployment": {"target_interval_s": 0}}
    with replicas(tmp_path, pg_url, kube_api.url, n=2, limits=limits, budgets=budgets) as (a, b):
        async with client(a) as mcp:
            for revision in (6, 5):
                failed = await mcp.call_tool("rollback_deployment", {**REAL, "to_revision": revision})
                assert failed.structured_content["failed"] is True, _text(failed)
        async with client(b) as mcp:
            stopped = await mcp.call_tool("rollback_deployment", {**REAL, "to_revision": 4})
            status = await mcp.call_tool("rollout_status", REF)
        assert stopped.is_error and "circuit breaker open" in _text(stopped)
        assert not status.is_error  # reads are never locked out by the breaker
        report, _ = _verify([a, b])
    assert report.ok, report.problems


async def test_kill_9_in_the_middle_of_a_real_rollback_leaves_its_started_record(tmp_path: Path, pg_url: str) -> None:
    # rollouts that never finish: the rollback waits for its rollout until the replica is killed
    cluster = KubeCluster(ControllerConfig(ready_after_ticks=1, progress_deadline_seconds=600))
    seed_namespace(cluster, "shop", KUBE_TEST_SEEDS)
    cluster.faults.mark_image_bad("registry.example.com/shop/checkout:v6")
    with (
        KubeApiServer(cluster, tick_seconds=0.02) as kube,
        replicas(tmp_path, pg_url, kube.url, n=2, wait_s=60) as (a, b),
    ):

        async def doomed() -> None:
            async with client(a) as mcp:
                await mcp.call_tool("rollback_deployment", REAL)

        call = asyncio.ensure_future(doomed())
        started = await _wait_for_started(pg_url)
        a.kill9()
        done, _ = await asyncio.wait({call}, timeout=30)
        assert done and call.exception() is not None  # the client saw its server vanish
        async with client(b) as mcp:
            again = await mcp.call_tool("rollback_deployment", REAL)
        report, records = _verify([a, b])
    assert report.ok, report.problems
    mine = [r for r in records if r["call_id"] == started]
    assert [r["outcome"] for r in mine] == ["started"]  # its outcome never came: visible as unfinished
    # the killed write's reservation stays taken: the interval holds on the other replica
    assert again.is_error and "budget" in _text(again)


async def _wait_for_started(pg_url: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with psycopg.connect(pg_url) as conn:
            row = conn.execute("SELECT call_id FROM audit WHERE outcome = 'started' ORDER BY seq LIMIT 1").fetchone()
        if row:
            return str(row[0])
        await asyncio.sleep(0.02)
    raise AssertionError("no started record within 30 s")


async def test_an_approval_requested_on_one_replica_is_granted_once_and_consumed_once(
    tmp_path: Path, pg_url: str, kube_api: KubeApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    alice = approver(tmp_path / "keys", "alice@example.com", ["sre"])
    approvers = write_approvers(tmp_path / "policy" / "approvers.yaml", [alice])
    with replicas(tmp_path, pg_url, kube_api.url, autonomy="approved", approvers=approvers) as (a, b, c):

        async def call(replica: Replica, args: dict[str, Any]) -> Any:
            async with client(replica) as mcp:
                return await mcp.call_tool("rollback_deployment", args)

        async def requested(deployment: str) -> str:
            pending = await call(a, {**REAL, "deployment": deployment})
            assert (pending.meta or {})["opsgate/outcome"] == "pending_approval", _text(pending)
            approval_id = str((pending.meta or {})["opsgate/approval"]["id"])
            # the human signs with their own key; the CLI finds the shared store through the configuration
            argv = ["--config", str(a.config), "approvals", "approve", approval_id, "--key", str(alice.key)]
            assert cli.main([*argv, "--in-process"]) == 0, capsys.readouterr()
            return approval_id

        # requested on A, granted with the CLI, consumed on B
        first = await requested("checkout")
        done = await call(b, {**REAL, "approval_id": first})
        assert not done.is_error and done.structured_content["applied"] is True, _text(done)

        # requested on A, granted, then B and C race to use it: exactly one write runs
        second = await requested("payments")
        raced = await asyncio.gather(
            *(call(r, {**REAL, "deployment": "payments", "approval_id": second}) for r in (b, c))
        )
        winners = [r for r in raced if not r.is_error and r.structured_content["applied"]]
        assert len(winners) == 1, [_text(r) for r in raced]
        report, records = _verify([a, b, c])
    assert report.ok, report.problems
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT id, status, used_by_call FROM approvals ORDER BY created_at").fetchall()
    assert [(r[0], r[1]) for r in rows] == [(first, "used"), (second, "used")]
    assert rows[1][2] == (winners[0].meta or {})["opsgate/call_id"]
    applied = [r for r in records if r["tool"] == "rollback_deployment" and r.get("applied")]
    assert len(applied) == 2
