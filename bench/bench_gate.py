"""What the gate costs: a trivial read tool call with and without the gate, in one run.

    python bench/bench_gate.py [--n 3000]

Prints median and p99 of:
- an in-process MCP call of a trivial tool on a bare SDK `MCPServer` (no gate), the tool written as a
  coroutine and as a plain function (which the SDK runs in a worker thread; issue 10's baseline),
- the same trivial tool through opsgate's gate (validate, decide, limit, execute, shape, audit), the
  two timed call by call in turn so that machine load falls on both alike (goal: at most +120 µs),
- the gate alone (`Gate.call_tool`, no MCP framing) and the bare handler, to isolate the gate,
- one policy decision on the embedded engine,
- one audit append, normal and durable (a write call's record is fsynced before its result returns).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from mcp import Client
from mcp.server.mcpserver import MCPServer

from opsgate.audit import AuditLog
from opsgate.caller import Caller
from opsgate.config import LimitSettings, Settings
from opsgate.server import build_app

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.support
from tests.support import testkit
from tests.support.testkit import EchoInput


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e6, ordered[int(len(ordered) * 0.99) - 1] * 1e6


async def _time(fn: Callable[[], Awaitable[object]], n: int) -> list[float]:
    for _ in range(min(200, n)):
        await fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t0)
    return out


async def _time_round(calls: list[Callable[[], Awaitable[object]]], n: int) -> list[list[float]]:
    """Each call timed in turn, round after round, so machine load falls on all alike."""
    for _ in range(min(200, n)):
        for call in calls:
            await call()
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(n):
        for call, out in zip(calls, samples, strict=True):
            t0 = time.perf_counter()
            await call()
            out.append(time.perf_counter() - t0)
    return samples


def _row(name: str, samples: list[float], base: float | None = None) -> float:
    med, p99 = _stats(samples)
    extra = f"  (+{med - base:7.1f} µs over bare)" if base is not None else ""
    print(f"{name:<52} median {med:8.1f} µs   p99 {p99:8.1f} µs{extra}")
    return med


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # Limits high enough that every timed call runs the whole pipeline (not a rate-limit refusal).
        settings = Settings(state_dir=Path(tmp), limits=LimitSettings(per_tool_per_minute=10**9))
        app = build_app(settings, [], capabilities=[testkit.build()])
        bare = MCPServer("bare")  # the tool as a coroutine: no thread hop

        @bare.tool(name="testkit_echo")
        async def testkit_echo_async(text: str = "ping") -> dict[str, str]:
            return {"text": text}

        bare_sync = MCPServer("bare-sync")  # a plain function: the SDK runs it in a worker thread

        @bare_sync.tool()
        def testkit_echo(text: str = "ping") -> dict[str, str]:
            return {"text": text}

        caller = Caller(subject="bench", roles=["responder"], client="bench", authenticated=True)
        contract = app.gate.contracts["testkit_echo"]
        print(f"gate benchmark, n={n}, policy engine {app.gate.engine.name} rev {app.gate.engine.revision}")
        probe = await app.gate.call_tool("testkit_echo", {"text": "hi"}, caller)
        assert not probe.is_error, probe.content
        for mode in ("2026-07-28", "legacy"):
            async with (
                Client(bare, mode=mode) as c_bare,
                Client(bare_sync, mode=mode) as c_sync,
                Client(app.server, mode=mode) as c_gate,
            ):
                print(f"-- in-process MCP client, wire {mode} (the three calls alternate)")
                samples = await _time_round(
                    [
                        lambda c=c_bare: c.call_tool("testkit_echo", {"text": "hi"}),
                        lambda c=c_sync: c.call_tool("testkit_echo", {"text": "hi"}),
                        lambda c=c_gate: c.call_tool("testkit_echo", {"text": "hi"}),
                    ],
                    n,
                )
                base = _row("trivial read tool, bare SDK server, async tool", samples[0])
                base_sync = _row("same, plain-function tool (SDK thread hop)", samples[1])
                gated = _row("same tool through the opsgate gate", samples[2], base)
                print(f"{'':52} (+{gated - base_sync:7.1f} µs over the plain-function tool, as issue 10 measured)")
        print("-- the gate alone")
        args = EchoInput(text="hi")
        base = _row("bare handler", await _time(lambda: contract.handler(args, None), n))  # type: ignore[arg-type]
        _row(
            "Gate.call_tool (read, audit included)",
            await _time(lambda: app.gate.call_tool("testkit_echo", {"text": "hi"}, caller), n),
            base,
        )
        _row(
            "Gate.call_tool (write dry run, durable audit)",
            await _time(
                lambda: app.gate.call_tool(
                    "testkit_write", {"namespace": "dev", "service": "x", "value": 1, "dry_run": True}, caller
                ),
                max(200, n // 10),
            ),
            base,
        )
        policy_input = {
            "tool": "testkit_echo",
            "capability": "testkit",
            "scope": "read",
            "risk": "low",
            "args": {"text": "hi"},
            "target": {"environment": "prod", "namespace": None, "service": None},
            "facts": {},
            "caller": caller.model_dump(),
            "approval": None,
            "context": {"now": "2026-11-23T05:00:00Z", "autonomy": "approved", "recent": {}},
        }
        print("-- parts")
        _row("one embedded policy decision (read)", await _time(lambda: app.gate.engine.decide(policy_input), n))
        log = AuditLog(Path(tmp) / "parts.db")
        record = {"tool": "testkit_echo", "outcome": "ok", "args": {"text": "hi"}, "caller": caller.model_dump()}

        async def append(durable: bool) -> None:
            log.append(record, durable=durable)

        _row("audit append (read record, WAL synchronous=NORMAL)", await _time(lambda: append(False), n))
        _row("audit append (write record, durable: synchronous=FULL)", await _time(lambda: append(True), 300))
        await app.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    anyio.run(main, parser.parse_args().n)
