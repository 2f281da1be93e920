"""Limits are reserved before a write runs: concurrent real rollbacks of one Deployment cannot outrun
"one per target per interval", in autonomous mode (issue 9's probe: all three applied)."""

from __future__ import annotations

import asyncio

from opsgate.caller import Caller
from opsgate.sandbox.kube_api import KubeApiServer

from .conftest import MakeApp, text

REAL = {"namespace": "shop", "deployment": "checkout", "dry_run": False, "reason": "bad deploy"}
AGENT = Caller(subject="agent", roles=["responder"], client="pytest", authenticated=True)


async def test_three_concurrent_rollbacks_of_one_deployment_apply_exactly_once(
    make_rollback_app: MakeApp, kube_api: KubeApiServer
) -> None:
    app = make_rollback_app(autonomy="autonomous")

    async def rollback(delay: float) -> object:
        await asyncio.sleep(delay)  # started 100 ms apart, as in the probe (an order, not a timing assertion)
        return await app.gate.call_tool("rollback_deployment", REAL, AGENT)

    results = await asyncio.gather(*(rollback(0.1 * i) for i in range(3)))
    applied = [r for r in results if not r.is_error and r.structured_content["applied"]]  # type: ignore[attr-defined]
    refused = [r for r in results if r.is_error]  # type: ignore[attr-defined]
    assert len(applied) == 1, [text(r) for r in results]
    assert len(refused) == 2
    for r in refused:
        # refused by the policy (it sees the running write in its counts) or, when both were allowed on
        # the same counts, by the reservation
        assert (r.meta or {})["opsgate/outcome"] in ("denied", "rate_limited")  # type: ignore[attr-defined]
        assert "budget" in text(r)
    started = [r.record for r in app.gate.audit.records() if r.record["outcome"] == "started"]
    assert len(started) == 1
    assert app.gate.audit.verify().ok
