"""The rollback story through an MCP client session: history, dry run with diff, approval required,
a human approves with the CLI, the agent applies it, the rollout completes; then the budget holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from opsgate import cli
from opsgate.sandbox.kube_api import DEPLOYMENTS, KubeApiServer
from opsgate.server import App
from tests.support.approvers import ApproverKey

from .conftest import MakeApp, approve, text

IMAGE = "registry.example.com/shop/checkout:v{}"
REF = {"namespace": "shop", "deployment": "checkout"}


def running_image(kube_api: KubeApiServer) -> str:
    deployment = kube_api.cluster.get(DEPLOYMENTS, "shop", "checkout")
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


async def test_history_dry_run_approval_apply_and_budget(
    rollback_app: App,
    wire_mode: str,
    state_dir: Path,
    kube_api: KubeApiServer,
    alice: ApproverKey,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with Client(rollback_app.server, mode=wire_mode) as client:
        history = await client.call_tool("rollout_history", REF)
        assert not history.is_error, text(history)
        items = history.structured_content["items"]
        assert [i["revision"] for i in items] == [7, 6, 5, 4, 3, 2, 1]
        assert items[0]["current"] and items[0]["images"] == {"checkout": IMAGE.format(7)}
        assert items[1]["change_cause"] == "release v6 of checkout"

        dry = await client.call_tool("rollback_deployment", {**REF, "reason": "latency after v7"})
        assert not dry.is_error, text(dry)
        out = dry.structured_content
        assert (out["from_revision"], out["to_revision"], out["dry_run"], out["applied"]) == (7, 6, True, False)
        assert out["image_changes"] == [{"container": "checkout", "before": IMAGE.format(7), "after": IMAGE.format(6)}]
        assert out["server_dry_run"]["ok"] is True
        assert running_image(kube_api) == IMAGE.format(7)

        real = {**REF, "dry_run": False, "reason": "latency after v7"}
        pending = await client.call_tool("rollback_deployment", real)
        assert pending.is_error
        meta: dict[str, Any] = pending.meta or {}
        assert meta["opsgate/outcome"] == "pending_approval"
        approval_id = meta["opsgate/approval"]["id"]
        assert approval_id in text(pending) and "opsgate approvals approve" in text(pending)
        assert running_image(kube_api) == IMAGE.format(7)

        assert approve(state_dir, approval_id, alice) == 0
        done = await client.call_tool(
            "rollback_deployment", {**real, "approval_id": approval_id}, progress_callback=on_progress
        )
        assert not done.is_error, text(done)
        result = done.structured_content
        assert result["applied"] is True and result["failed"] is False
        assert result["rollout"]["state"] == "complete" and result["rollout"]["revision"] == 8
        assert result["rollout"]["images"] == {"checkout": IMAGE.format(6)}
        assert "the rollout completed" in text(done)
        assert running_image(kube_api) == IMAGE.format(6)

        status = await client.call_tool("rollout_status", REF)
        assert status.structured_content["state"] == "complete"
        assert status.structured_content["images"] == {"checkout": IMAGE.format(6)}

        changes = await client.call_tool("changes_recent", {"namespace": "shop", "since_minutes": 5})
        newest = changes.structured_content["items"][0]
        assert (newest["deployment"], newest["revision"], newest["current"]) == ("checkout", 8, True)

        # a second rollback inside the budget window is denied by the policy's budget (policy data, the
        # one place budgets are set), before any human is asked to approve it
        second = {**REF, "dry_run": False, "reason": "again", "to_revision": 5}
        budget = await client.call_tool("rollback_deployment", second)
        assert budget.is_error and "(rule write.budget.target_interval)" in text(budget)
        assert "the budget allows one every 600 s" in text(budget)
        assert (budget.meta or {})["opsgate/outcome"] == "denied"
        assert "opsgate/approval" not in (budget.meta or {})
    assert running_image(kube_api) == IMAGE.format(6)
    if wire_mode == "legacy":
        assert seen and seen[-1][0] == seen[-1][1] == 3.0
    outcomes = [r.record["outcome"] for r in rollback_app.gate.audit.records()]
    # the approved real rollback leaves a durable "started" record before it patches, then its outcome
    assert outcomes == ["ok", "ok", "pending_approval", "started", "ok", "ok", "ok", "denied"]
    capsys.readouterr()
    assert cli.main(["audit", "verify", "--file", str(rollback_app.gate.audit.path)]) == 0
    assert "hash chain intact" in capsys.readouterr().out


async def test_rollback_to_the_running_template_is_a_noop(rollback_app: App, wire_mode: str) -> None:
    async with Client(rollback_app.server, mode=wire_mode) as client:
        result = await client.call_tool("rollback_deployment", {**REF, "to_revision": 7})
    assert not result.is_error
    out = result.structured_content
    assert out["noop"] is True and out["applied"] is False and out["image_changes"] == []
    assert "already matches revision 7" in out["next_step"]


async def test_past_the_wait_limit_it_returns_the_applied_state(
    make_rollback_app: MakeApp, kube_api: KubeApiServer, wire_mode: str
) -> None:
    app = make_rollback_app(autonomy="autonomous", rollback={"wait_s": 0})
    async with Client(app.server, mode=wire_mode) as client:
        result = await client.call_tool("rollback_deployment", {**REF, "dry_run": False, "reason": "slow"})
        out = result.structured_content
        assert out["applied"] is True and out["failed"] is False
        assert out["rollout"]["state"] == "progressing" and "rollout_status" in out["next_step"]
        for _ in range(200):
            status = (await client.call_tool("rollout_status", REF)).structured_content
            if status["state"] == "complete":
                break
    assert status["state"] == "complete" and status["images"] == {"checkout": IMAGE.format(6)}
