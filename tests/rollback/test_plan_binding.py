"""An approval binds to the resolved plan the human saw, not just the arguments (issue 9 item 2).

Probe: `rollback_deployment` with `to_revision` unset was approved while the plan was revision 7 -> 6;
then the Deployment moved (a new rollout to revision 8); the same approval rolled back 8 -> 7, a
change nobody approved. Now the approval is void, the agent is told to ask again, nothing changes,
and the refusal is in the audit trail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp import Client

from opsgate.sandbox.kube_api import DEPLOYMENTS, KubeApiServer
from tests.support.approvers import ApproverKey

from .conftest import MakeApp, approve, text

REF = {"namespace": "shop", "deployment": "checkout"}
REAL = {**REF, "dry_run": False, "reason": "latency after v7"}
IMAGE = "registry.example.com/shop/checkout:v{}"


def _image(kube_api: KubeApiServer) -> str:
    deployment = kube_api.cluster.get(DEPLOYMENTS, "shop", "checkout")
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def _set_image(kube_api: KubeApiServer, image: str) -> None:
    """Someone else rolls the Deployment out meanwhile (a new revision)."""
    patch = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image}]
    kube_api.cluster.patch_deployment("shop", "checkout", patch, "application/json-patch+json")
    kube_api.cluster.settle("shop", "checkout")


async def _request(client: Any) -> tuple[str, str]:
    pending = await client.call_tool("rollback_deployment", REAL)
    meta: dict[str, Any] = pending.meta or {}
    assert meta.get("opsgate/outcome") == "pending_approval", text(pending)
    return str(meta["opsgate/approval"]["id"]), text(pending)


async def test_probe_approval_for_a_plan_that_changed_is_void(
    make_rollback_app: MakeApp, kube_api: KubeApiServer, state_dir: Path, alice: ApproverKey
) -> None:
    app = make_rollback_app()
    async with Client(app.server) as client:
        approval_id, message = await _request(client)
        assert "revision 7 -> 6" in message  # the plan the human is asked about
        assert approve(state_dir, approval_id, alice) == 0

        _set_image(kube_api, IMAGE.format(8))  # the target moved: revision 8 now, rollback would go to 7
        moved = await client.call_tool("rollback_deployment", {**REAL, "approval_id": approval_id})
        assert moved.is_error and (moved.meta or {})["opsgate/outcome"] == "denied"
        assert "void" in text(moved) and "target changed" in text(moved), text(moved)
        assert "revision 7 -> 6" in text(moved) and "revision 8 -> 7" in text(moved)
        assert "request a new approval" in text(moved)
        assert _image(kube_api) == IMAGE.format(8)

        # void for good, even if the Deployment goes back to the approved plan's starting point
        again = await client.call_tool("rollback_deployment", {**REAL, "approval_id": approval_id})
        assert again.is_error and "void" in text(again)

        # asking again gives a new approval for the current plan, and that one works
        fresh, message = await _request(client)
        assert fresh != approval_id and "revision 8 -> 7" in message
        assert approve(state_dir, fresh, alice) == 0
        done = await client.call_tool("rollback_deployment", {**REAL, "approval_id": fresh})
        assert not done.is_error, text(done)
    assert _image(kube_api) == IMAGE.format(7)
    records = [r.record for r in app.gate.audit.records()]
    void = [r for r in records if r.get("outcome") == "denied" and "void" in r.get("error", "")]
    assert len(void) == 2 and void[0]["facts"]["from_revision"] == 8
    assert app.gate.audit.verify().ok


async def test_a_pending_approval_is_not_reused_for_a_different_plan(
    make_rollback_app: MakeApp, kube_api: KubeApiServer
) -> None:
    app = make_rollback_app()
    async with Client(app.server) as client:
        first, _ = await _request(client)
        assert (await _request(client))[0] == first
        _set_image(kube_api, IMAGE.format(8))
        second, message = await _request(client)
    assert second != first and "revision 8 -> 7" in message
