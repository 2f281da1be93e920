"""What a signed approval costs: signing and verifying the statement, and the whole round trip.

    python bench/bench_approvals.py [--runs 200]

Round trip = the agent's call that gets a pending approval, the human's SSH signature (in process,
ed25519) recorded in the store, and the agent's second call that verifies the signature against
the approvers file, re-checks the plan and runs the write (testkit write, SQLite store, embedded
policy engine, in-process MCP client).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.support
from tests.support import testkit

from opsgate import sshsig
from opsgate.approvals import Approvals
from opsgate.approvers import NAMESPACE, Approvers
from opsgate.config import ApprovalSettings, LimitSettings, LocalCaller, PolicySettings, Settings
from opsgate.sandbox.approver import write_sandbox_approver
from opsgate.server import build_app

WRITE = {"namespace": "shop", "service": "checkout", "dry_run": False}


def _ms(samples: list[float]) -> str:
    p95 = sorted(samples)[int(len(samples) * 0.95)]
    return f"median {statistics.median(samples) * 1000:.3f} ms (p95 {p95 * 1000:.3f})"


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        key_path = write_sandbox_approver(state)
        key = sshsig.load_private_key(key_path)
        approvers = Approvers.load(state / "approvers.yaml")
        statement = b"opsgate approval statement v1\nid: apr_bench\n"
        signing, verifying = [], []
        for _ in range(runs):
            started = time.perf_counter()
            armored = sshsig.sign_with_key(key, statement, NAMESPACE)
            signing.append(time.perf_counter() - started)
            started = time.perf_counter()
            approvers.verify(armored, statement)
            verifying.append(time.perf_counter() - started)

        unbounded = {"target_interval_s": 0, "target_1h": 10**9, "global_1m": 10**9}
        settings = Settings(
            state_dir=state,
            caller=LocalCaller(subject="agent@bench"),
            approvals=ApprovalSettings(approvers_file=state / "approvers.yaml"),
            # every write is on a new target, and budgets are lifted: this measures approvals, not limits
            limits=LimitSettings(per_tool_per_minute=10**9),
            policy=PolicySettings(data={"opsgate_config": {"budgets": {"default": unbounded}}}),
        )
        hook = Approvals.from_settings(settings)
        app = build_app(settings, [], approvals=hook, capabilities=[testkit.build()])
        requests, grants, uses = [], [], []
        async with Client(app.server) as client:
            for value in range(runs):
                args = {**WRITE, "value": value % 1000, "service": f"svc-{value}"}
                started = time.perf_counter()
                pending = await client.call_tool("testkit_write", args)
                requests.append(time.perf_counter() - started)
                assert (pending.meta or {}).get("opsgate/outcome") == "pending_approval", pending.content
                approval_id = (pending.meta or {})["opsgate/approval"]["id"]
                started = time.perf_counter()
                row = hook.store.get(approval_id)
                proof = sshsig.sign_with_key(key, row.statement("approve"), NAMESPACE)
                hook.store.decide(
                    approval_id, status="granted", by="alice", roles=["sre"], channel="ssh-signature", proof=proof,
                    note=None,
                )  # fmt: skip
                grants.append(time.perf_counter() - started)
                started = time.perf_counter()
                done = await client.call_tool("testkit_write", {**args, "approval_id": approval_id})
                uses.append(time.perf_counter() - started)
                assert not done.is_error, done.content
        await app.aclose()
    print(f"runs={runs} (ed25519 key, SQLite store, embedded engine, in-process MCP client)")
    print(f"sign statement (SSHSIG, in process):        {_ms(signing)}")
    print(f"verify signature against approvers file:   {_ms(verifying)}")
    print(f"call -> pending approval:                  {_ms(requests)}")
    print(f"human signs and the grant is stored:       {_ms(grants)}")
    print(f"call with approval -> verified and run:    {_ms(uses)}")
    total = [a + b + c for a, b, c in zip(requests, grants, uses, strict=True)]
    print(f"round trip (all three):                    {_ms(total)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    anyio.run(main, parser.parse_args().runs)
