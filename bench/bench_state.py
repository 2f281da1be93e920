"""State costs on SQLite and PostgreSQL: durable audit append, checkpoint, limit reservation, and gate
calls per second with 1 and 3 gate instances sharing one store.

    python bench/bench_state.py [--n 300]

PostgreSQL is started from Debian's packages on loopback (fsync on) like the tests do; without its
binaries only SQLite is measured. The "replicas" here are gate instances in one process, each with its
own pool, audit key export and limiter, sharing the database (not separate HTTP servers).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import testkit
from tests.support.postgres import pg_bin, start_postgres

from opsgate.caller import Caller
from opsgate.config import LimitSettings, Settings
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
    state.close()
    for replicas in (1, 3):
        apps = [
            build_app(_settings(root, url, f"r{replicas}-{k}"), [], capabilities=[testkit.build()])
            for k in range(replicas)
        ]
        out[f"read calls/s, {replicas} gate(s)"] = asyncio.run(_calls_per_second(apps, 3 * n))
        for app in apps:
            asyncio.run(app.aclose())
    print(f"\n{label}")
    for k, v in out.items():
        print(f"  {k:<42} {v:>10.0f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
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
        finally:
            server.stop()
            shutil.rmtree(server.root, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
