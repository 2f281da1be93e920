"""Form-mode elicitation: a client confirmation counts where the policy allows it (non-production),
never as the approval of a production write; declining or a client without elicitation gets a
pending approval, never a silent yes."""

from __future__ import annotations

from typing import Any

import mcp_types
from mcp import Client
from mcp.client.session import ClientRequestContext

from opsgate.approvals import Approvals
from opsgate.audit import digest
from opsgate.sandbox.kube_api import DEPLOYMENTS, DeploymentSeed, KubeApiServer, seed_namespace
from opsgate.server import App

from .conftest import MakeApp, text


class ClickingClient:
    """An elicitation callback that answers every form with `action`."""

    def __init__(self, action: str = "accept") -> None:
        self.action = action
        self.asked: list[str] = []

    async def __call__(self, context: ClientRequestContext, params: mcp_types.ElicitRequestParams) -> Any:
        self.asked.append(params.message)
        content = {"confirm": True} if self.action == "accept" else None
        return mcp_types.ElicitResult(action=self.action, content=content)  # type: ignore[arg-type]


def _image(kube_api: KubeApiServer, namespace: str) -> str:
    deployment = kube_api.cluster.get(DEPLOYMENTS, namespace, "checkout")
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


async def test_confirmation_applies_a_staging_rollback(
    make_rollback_app: MakeApp, kube_api: KubeApiServer, wire_mode: str
) -> None:
    seed_namespace(kube_api.cluster, "staging", [DeploymentSeed("checkout", revisions=3)])
    app = make_rollback_app()
    clicker = ClickingClient("accept")
    args = {"namespace": "staging", "deployment": "checkout", "dry_run": False, "reason": "bad v3 in staging"}
    async with Client(app.server, mode=wire_mode, elicitation_callback=clicker) as client:
        result = await client.call_tool("rollback_deployment", args)
    assert not result.is_error, text(result)
    assert len(clicker.asked) == 1 and "rollback_deployment" in clicker.asked[0]
    assert result.structured_content["applied"] is True
    assert _image(kube_api, "staging").endswith(":v2")
    records = [r.record for r in app.gate.audit.records()]
    final = records[-1]
    assert final["outcome"] == "ok" and final["approval"]["kind"] == "confirmation"
    assert final["decision"]["rule"] == "write.confirmed"
    assert records[-2]["outcome"] == "started" and records[-2]["call_id"] == final["call_id"]
    if wire_mode != "legacy":  # two tools/call rounds, joined by the sealed request state
        assert records[-3]["outcome"] == "input_required"
        assert final["approval"]["continues_call"] == records[-3]["call_id"]
    assert app.gate.audit.verify().ok


async def test_declined_confirmation_leaves_a_pending_approval(
    make_rollback_app: MakeApp, kube_api: KubeApiServer, wire_mode: str
) -> None:
    seed_namespace(kube_api.cluster, "staging", [DeploymentSeed("checkout", revisions=3)])
    app = make_rollback_app()
    clicker = ClickingClient("decline")
    args = {"namespace": "staging", "deployment": "checkout", "dry_run": False, "reason": "bad v3 in staging"}
    async with Client(app.server, mode=wire_mode, elicitation_callback=clicker) as client:
        result = await client.call_tool("rollback_deployment", args)
    assert result.is_error and (result.meta or {})["opsgate/outcome"] == "pending_approval"
    assert clicker.asked
    assert _image(kube_api, "staging").endswith(":v3")


async def test_client_without_elicitation_gets_a_pending_approval(
    make_rollback_app: MakeApp, kube_api: KubeApiServer, wire_mode: str
) -> None:
    seed_namespace(kube_api.cluster, "staging", [DeploymentSeed("checkout", revisions=3)])
    app = make_rollback_app()
    args = {"namespace": "staging", "deployment": "checkout", "dry_run": False, "reason": "bad v3 in staging"}
    async with Client(app.server, mode=wire_mode) as client:
        result = await client.call_tool("rollback_deployment", args)
    assert result.is_error and (result.meta or {})["opsgate/outcome"] == "pending_approval"
    assert _image(kube_api, "staging").endswith(":v3")


async def test_confirmation_is_never_a_production_approval(
    rollback_app: App, kube_api: KubeApiServer, wire_mode: str
) -> None:
    clicker = ClickingClient("accept")
    args = {"namespace": "shop", "deployment": "checkout", "dry_run": False, "reason": "latency after v7"}
    async with Client(rollback_app.server, mode=wire_mode, elicitation_callback=clicker) as client:
        result = await client.call_tool("rollback_deployment", args)
        assert result.is_error and (result.meta or {})["opsgate/outcome"] == "pending_approval"
        assert clicker.asked == []  # production: not even asked, a click cannot count
        # a confirmation row bound to this exact production call, presented as an approval, is refused
        hook = rollback_app.gate.approvals
        assert isinstance(hook, Approvals)
        store = hook.store
        pending = store.find(status="pending")[0]
        forged = store.create(
            kind="confirmation",
            tool=pending.tool,
            args_digest=digest({"tool": pending.tool, "args": pending.args}),
            args=pending.args,
            target=pending.target,
            requester=pending.requester,
            call_id="call_x",
            reasons=[],
            approvers=[],
            plan=pending.plan,
        )
        store.decide(
            forged.id,
            status="granted",
            by="client-confirmation:test",
            roles=[],
            channel="confirmation",
            proof=None,
            note="clicked",
        )
        refused = await client.call_tool("rollback_deployment", {**args, "approval_id": forged.id})
    assert refused.is_error
    assert "confirmation counts only inside the call that asked for it" in text(refused)
    assert _image(kube_api, "shop").endswith(":v7")
