"""What the gate costs: a trivial read tool call with and without the gate, in one run.

    python bench/bench_gate.py [--n 3000] [--against OTHER_CHECKOUT [--rounds 3]]

Prints median and p99 of:
- an in-process MCP call of a trivial tool on a bare SDK `MCPServer` (no gate), the tool written as a
  coroutine and as a plain function (which the SDK runs in a worker thread; issue 10's baseline),
- the same trivial tool through opsgate's gate (validate, decide, limit, execute, shape, audit), the
  two timed call by call in turn so that machine load falls on both alike (goal: at most +120 µs),
- the gate alone (`Gate.call_tool`, no MCP framing) and the bare handler, to isolate the gate,
- one policy decision on the embedded engine,
- one audit append, normal and durable (a write call's record is fsynced before its result returns).

`--against DIR` (another checkout of this repository, e.g. `git worktree add /tmp/old <commit>`) runs the
MCP rows of this benchmark in processes of both trees, alternating, `--rounds` times each, and prints the
median of each row per tree side by side: the old figures beside the new in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult

# the repository root, for tests.support (under --against, the other tree's: OPSGATE_BENCH_ROOT)
ROOT = Path(os.environ.get("OPSGATE_BENCH_ROOT") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "servers"))

from tests.support import testkit  # noqa: E402
from tests.support.testkit import EchoInput  # noqa: E402

from opsgate.audit import AuditLog  # noqa: E402
from opsgate.caller import Caller  # noqa: E402
from opsgate.config import LimitSettings, Settings  # noqa: E402
from opsgate.server import build_app  # noqa: E402

# Limits high enough that every timed call runs the whole pipeline (before, the global ceiling of 6,000 calls a
# minute refused the later calls, so part of the figures timed a refusal)
_UNLIMITED = LimitSettings(per_tool_per_minute=10**9, global_per_minute=10**9)
MCP_ROWS = ("bare SDK server, async tool", "bare SDK server, plain-function tool", "through the opsgate gate")


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e6, ordered[int(len(ordered) * 0.99) - 1] * 1e6


def _ran(result: object) -> None:
    """A timed call must have run the whole pipeline: a refusal (a rate limit, say) would time another path."""
    if isinstance(result, CallToolResult) and result.is_error:
        raise SystemExit(f"benchmark call refused, figures would be wrong: {result.content}")


async def _time(fn: Callable[[], Awaitable[object]], n: int) -> list[float]:
    for _ in range(min(200, n)):
        _ran(await fn())
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        result = await fn()
        out.append(time.perf_counter() - t0)
        _ran(result)
    return out


async def _time_round(calls: list[Callable[[], Awaitable[object]]], n: int) -> list[list[float]]:
    """Each call timed in turn, round after round, so machine load falls on all alike."""
    for _ in range(min(200, n)):
        for call in calls:
            _ran(await call())
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(n):
        for call, out in zip(calls, samples, strict=True):
            t0 = time.perf_counter()
            result = await call()
            out.append(time.perf_counter() - t0)
            _ran(result)
    return samples


def _row(name: str, samples: list[float], base: float | None = None) -> float:
    med, p99 = _stats(samples)
    extra = f"  (+{med - base:7.1f} µs over bare)" if base is not None else ""
    print(f"{name:<52} median {med:8.1f} µs   p99 {p99:8.1f} µs{extra}")
    return med


async def mcp_medians(n: int) -> dict[str, dict[str, float]]:
    """The MCP rows only (medians in µs per wire generation): what `--against` compares across trees."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(state_dir=Path(tmp), limits=_UNLIMITED)
        app = build_app(settings, [], capabilities=[testkit.build()])
        bare, bare_sync = _bare_servers()
        out: dict[str, dict[str, float]] = {}
        for mode in ("2026-07-28", "legacy"):
            async with (
                Client(bare, mode=mode) as c_bare,
                Client(bare_sync, mode=mode) as c_sync,
                Client(app.server, mode=mode) as c_gate,
            ):
                samples = await _time_round([_echo(c) for c in (c_bare, c_sync, c_gate)], n)
                out[mode] = {row: _stats(s)[0] for row, s in zip(MCP_ROWS, samples, strict=True)}
        await app.aclose()
    return out


def _echo(client: Client) -> Callable[[], Awaitable[object]]:
    return lambda: client.call_tool("testkit_echo", {"text": "hi"})


def _bare_servers() -> tuple[MCPServer, MCPServer]:
    bare = MCPServer("bare")  # the tool as a coroutine: no thread hop

    @bare.tool(name="testkit_echo")
    async def testkit_echo_async(text: str = "ping") -> dict[str, str]:
        return {"text": text}

    bare_sync = MCPServer("bare-sync")  # a plain function: the SDK runs it in a worker thread

    @bare_sync.tool()
    def testkit_echo(text: str = "ping") -> dict[str, str]:
        return {"text": text}

    return bare, bare_sync


def compare(other: Path, n: int, rounds: int) -> None:
    """This tree and `other`, each in its own processes, alternating: median of each row per tree."""
    from bench.baseline import in_tree  # this tree's (under OPSGATE_BENCH_ROOT the other tree is on the path)

    trees = {"this tree": Path(__file__).resolve().parents[1], str(other): other.resolve()}
    runs: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, root in trees.items():
            out = in_tree(root, Path(__file__), ["--n", str(n), "--json"])
            runs[name].append(json.loads(out.splitlines()[-1]))
    print(f"gate benchmark, this tree against {other}, n={n}, {rounds} alternating processes each (median of medians)")
    for mode in ("2026-07-28", "legacy"):
        print(f"-- wire {mode}: median µs ({', '.join(trees)}); + is over the async bare tool, in the same process")
        for row in MCP_ROWS:
            cells = [statistics.median(r[mode][row] for r in runs[name]) for name in trees]
            print(f"{row:<40} " + "  ".join(f"{c:9.1f}" for c in cells))
        for name in trees:
            extra = statistics.median(r[mode][MCP_ROWS[2]] - r[mode][MCP_ROWS[0]] for r in runs[name])
            extra_sync = statistics.median(r[mode][MCP_ROWS[2]] - r[mode][MCP_ROWS[1]] for r in runs[name])
            print(f"  gate adds, {name}: +{extra:.1f} µs over the async tool, +{extra_sync:.1f} over the plain one")


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(state_dir=Path(tmp), limits=_UNLIMITED)
        app = build_app(settings, [], capabilities=[testkit.build()])
        bare, bare_sync = _bare_servers()

        caller = Caller(subject="bench", roles=["responder"], client="bench", authenticated=True)
        contract = app.gate.contracts["testkit_echo"]
        print(f"gate benchmark, n={n}, policy engine {app.gate.engine.name} rev {app.gate.engine.revision}")
        probe = await app.gate.call_tool("testkit_echo", {"text": "hi"}, caller)
        assert isinstance(probe, CallToolResult) and not probe.is_error, probe
        for mode in ("2026-07-28", "legacy"):
            async with (
                Client(bare, mode=mode) as c_bare,
                Client(bare_sync, mode=mode) as c_sync,
                Client(app.server, mode=mode) as c_gate,
            ):
                print(f"-- in-process MCP client, wire {mode} (the three calls alternate)")
                samples = await _time_round([_echo(c) for c in (c_bare, c_sync, c_gate)], n)
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
    parser.add_argument("--against", type=Path, default=None, help="another checkout: its figures beside these")
    parser.add_argument("--rounds", type=int, default=3, help="with --against: processes per tree, alternating")
    parser.add_argument("--json", action="store_true", help="print only the MCP rows' medians as JSON")
    cli = parser.parse_args()
    if cli.against is not None:
        compare(cli.against, cli.n, cli.rounds)
    elif cli.json:
        print(json.dumps(anyio.run(mcp_medians, cli.n)))
    else:
        anyio.run(main, cli.n)
