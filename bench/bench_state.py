"""State costs on SQLite and PostgreSQL: an approval's round trip in its store, durable audit append,
checkpoint, limit reservation, and gate calls per second with 1 and 3 gate instances sharing one store.

    python bench/bench_state.py [--n 300]

PostgreSQL is started from Debian's packages on loopback (fsync on) like the tests do; without its
binaries only SQLite is measured. The "replicas" here are gate instances in one process, each with its
own pool, audit key export and limiter, sharing the database (not separate HTTP servers).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import testkit
from tests.support.kube import new_emulated_cluster
from tests.support.postgres import pg_bin, start_postgres
from tests.support.replicas import Replica, client, replicas

from opsgate.approvals import SqliteApprovalStore
from opsgate.caller import Caller
from opsgate.config import LimitSettings, Settings
from opsgate.sandbox.kube_api import KubeApiServer
from opsgate.server import App, build_app
from opsgate.state import open_audit, open_state
from opsgate.state.base import Counter

CALLER = Caller(subject="bench", roles=["responder"], client="bench", authenticated=True)


def _median_us(fn: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def _settings(root: Path, url: str | None, name: str) -> Settings:
    big = LimitSettings(per_tool_per_minute=10**9, global_per_minute=10**9)
    return Settings(
        state_dir=root / name,
        state_url=url,
        limits=big,
        audit={"signing_key": root / "key" / "ed25519.pem"},  # type: ignore[arg-type]
    )


async def _calls_per_second(apps: list[App], total: int) -> float:
    async def one(i: int) -> None:
        result = await apps[i % len(apps)].gate.call_tool("testkit_echo", {"text": "x"}, CALLER)
        assert not result.is_error

    t = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(total)))
    return total / (time.perf_counter() - t)


def measure(label: str, root: Path, url: str | None, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    log = open_audit(_settings(root, url, "a"))
    rec = {"tool": "t", "outcome": "ok", "caller": {"subject": "bench"}, "args": {"x": 1}}
    out["audit append (us)"] = _median_us(lambda: log.append(rec), n)
    log.cp.every = 10**9 if log.cp else 0  # type: ignore[union-attr]
    out["durable audit append + checkpoint (us)"] = _median_us(lambda: log.append(rec, durable=True), n)
    out["checkpoint alone (us)"] = _median_us(log.checkpoint, n)
    log.close()
    state = open_state(_settings(root, url, "l"))
    counters = [Counter("write:k", 3600), Counter("write:*", 60, 10**9)]
    i = iter(range(10**9))

    def reserve_release() -> None:
        rid = f"r{next(i)}"
        state.limits.reserve(counters, rid, time.time())
        state.limits.release(rid)

    out["limit reserve + release (us)"] = _median_us(reserve_release, n)
    approvals = state.approvals or SqliteApprovalStore(root / "l", ttl_s=3600)
    k = iter(range(10**9))

    def approval_round_trip() -> None:
        # requested (pending), granted by a human (the signature is checked elsewhere), used once
        i = next(k)
        approval = approvals.create(
            kind="grant",
            tool="rollback_deployment",
            args_digest=f"sha256:{i}",
            args={"deployment": "checkout", "dry_run": False},
            target="prod/shop/checkout",
            requester="agent",
            call_id=f"call_{i}",
            reasons=["prod write needs approval"],
            approvers=["sre"],
            plan={"from_revision": 7, "to_revision": 6},
        )
        approvals.decide(
            approval.id, status="granted", by="alice", roles=["sre"], channel="ssh-signature", proof="sig", note=None
        )
        approvals.use(approval.id, f"call_{i}b")

    out["approval round trip: create, grant, use (us)"] = _median_us(approval_round_trip, n)
    if state.approvals is None:
        approvals.close()
    state.close()
    for gates in (1, 3):
        apps = [
            build_app(_settings(root, url, f"r{gates}-{k}"), [], capabilities=[testkit.build()]) for k in range(gates)
        ]
        out[f"read calls/s, {gates} gate(s)"] = asyncio.run(_calls_per_second(apps, 3 * n))
        for app in apps:
            asyncio.run(app.aclose())
    print(f"\n{label}")
    for k, v in out.items():
        print(f"  {k:<42} {v:>10.0f}")
    return out


async def _http_calls_per_second(group: list[Replica], total: int) -> float:
    async def burst(replica: Replica, count: int) -> None:
        # 64 calls in flight per replica (each replica bounds its open connections)
        gate = asyncio.Semaphore(64)
        async with client(replica) as mcp:

            async def one(i: int) -> bool:
                async with gate:
                    result = await mcp.call_tool("runbook_search", {"query": f"checkout latency {i}"})
                return bool(result.is_error)

            errors = await asyncio.gather(*(one(i) for i in range(count)))
        assert not any(errors)

    t = time.perf_counter()
    await asyncio.gather(*(burst(r, total // len(group)) for r in group))
    return total / (time.perf_counter() - t)


def measure_replicas(root: Path, url: str, total: int) -> None:
    """`opsgate serve --transport http` processes sharing the database: calls/s with 1 and 3 of them."""
    print(f"\nHTTP replicas on PostgreSQL ({total} runbook_search calls split over the replicas, 64 in flight each)")
    with KubeApiServer(new_emulated_cluster(), tick_seconds=0.02) as kube:
        for n in (1, 3):
            with replicas(root / f"http{n}", url, kube.url, n=n) as group:
                rate = asyncio.run(_http_calls_per_second(group, total))
            print(f"  calls/s with {n} replica(s){'':<20} {rate:>10.0f}")


def main() -> None:
    for name in ("httpx", "httpx2", "httpcore", "httpcore2", "mcp"):
        logging.getLogger(name).setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--http-calls", type=int, default=900, help="calls for the HTTP replica figures (0: skip)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-state-"))
    try:
        measure("SQLite (state_dir)", root / "sqlite", None, args.n)
        if pg_bin() is None:
            print("\nPostgreSQL: binaries not installed, skipped")
            return
        server = start_postgres(fsync=True)
        try:
            measure("PostgreSQL 15 on loopback (fsync on)", root / "pg", server.create_database("bench"), args.n)
            if args.http_calls:
                (root / "http1").mkdir()
                (root / "http3").mkdir()
                measure_replicas(root, server.create_database("bench_http"), args.http_calls)
        finally:
            server.stop()
            shutil.rmtree(server.root, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
