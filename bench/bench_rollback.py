"""Time from an approved `rollback_deployment` call to its reported completion, on the loopback
Kubernetes API (the emulation in `opsgate.sandbox.kube_api`, controller ticking every 20 ms, pods ready
one tick after creation), through an in-process MCP client session.

    python bench/bench_rollback.py [--runs 7] [--poll 0.05]

Each run: a fresh opsgate app (fresh limiter and audit trail) on one shared emulated cluster; the
agent's real call returns a pending approval, a human grant is recorded in the approval store, and the
timed call is the agent's call with `approval_id` (validate, facts, decide, approval check, server-side
dry run, patch, wait for the rollout, audit). Baseline in the same run: the dry-run call (everything but
the real patch and the wait). Prints the medians, and the server-side wait for the rollout.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

from opsgate import sshsig
from opsgate.approvals import Approvals
from opsgate.approvers import NAMESPACE
from opsgate.config import ApprovalSettings, Settings
from opsgate.sandbox.approver import write_sandbox_approver
from opsgate.sandbox.kube_api import ControllerConfig, DeploymentSeed, KubeApiServer, KubeCluster, seed_namespace
from opsgate.server import build_app

REF = {"namespace": "shop", "deployment": "checkout"}


async def one_run(kube: KubeApiServer, state_dir: Path, poll_s: float) -> tuple[float, float, float]:
    key = write_sandbox_approver(state_dir)  # a throwaway approver (alice, sre) and its approvers file
    settings = Settings(
        state_dir=state_dir,
        rollback={"api_url": kube.url, "wait_s": 30.0, "poll_s": poll_s},
        approvals=ApprovalSettings(approvers_file=state_dir / "approvers.yaml"),
    )
    approvals = Approvals.from_settings(settings)
    app = build_app(settings, ["rollback"], approvals=approvals)
    real = {**REF, "dry_run": False, "reason": "benchmark"}
    try:
        async with Client(app.server, mode="legacy") as client:
            started = time.perf_counter()
            dry = await client.call_tool("rollback_deployment", {**REF, "reason": "benchmark"})
            dry_s = time.perf_counter() - started
            assert not dry.is_error, getattr(dry.content[0], "text", "")
            pending = await client.call_tool("rollback_deployment", real)
            approval_id = (pending.meta or {})["opsgate/approval"]["id"]
            statement = approvals.store.get(approval_id).statement("approve")
            signature = sshsig.sign_with_key(sshsig.load_private_key(key), statement, NAMESPACE)
            approvals.store.decide(
                approval_id,
                status="granted",
                by="alice",
                roles=["sre"],
                channel="ssh-signature",
                proof=signature,
                note=None,
            )
            started = time.perf_counter()
            done = await client.call_tool("rollback_deployment", {**real, "approval_id": approval_id})
            applied_s = time.perf_counter() - started
        out = done.structured_content or {}
        assert not done.is_error and out["rollout"]["state"] == "complete", getattr(done.content[0], "text", "")
        return applied_s, dry_s, float(out["waited_s"])
    finally:
        await app.aclose()
        approvals.close()


async def main(runs: int, poll_s: float) -> None:
    cluster = KubeCluster(ControllerConfig(ready_after_ticks=1))
    seed_namespace(cluster, "shop", [DeploymentSeed("checkout", revisions=7)])
    applied, dry, waited = [], [], []
    with KubeApiServer(cluster, tick_seconds=0.02) as kube, tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            a, d, w = await one_run(kube, Path(tmp) / f"run{i}", poll_s)
            applied.append(a)
            dry.append(d)
            waited.append(w)
    med_a, med_d, med_w = (statistics.median(x) * 1000 for x in (applied, dry, waited))
    print(f"runs={runs} poll_s={poll_s} replicas=3 controller tick=20ms")
    print(
        f"approved call -> reported completion: median {med_a:.1f} ms (min {min(applied) * 1000:.1f}, "
        f"max {max(applied) * 1000:.1f})"
    )
    print(f"  of which waiting for the rollout (server side): median {med_w:.1f} ms")
    print(f"baseline dry-run call (same session): median {med_d:.1f} ms; ratio approved/dry-run {med_a / med_d:.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--poll", type=float, default=0.05, help="rollback.poll_s (status poll interval)")
    ns = parser.parse_args()
    anyio.run(main, ns.runs, ns.poll)
