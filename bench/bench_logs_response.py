"""Response budgets of the logs tools, through an MCP client session (gate, policy, audit included).

    python bench/bench_logs_response.py [--lines 100000]

Prints the text size (summary + JSON, as a client receives it) of:
- default `logs_query` and `logs_patterns` calls over the bundled example logs (budget: under 8 KB);
- `logs_patterns` over a generated file of `--lines` lines (default 100,000) of mixed services and
  message shapes: the answer must fit one screen (under 8 KB, at most the default 10 templates)
  and how long it takes; `logs_query` over the same file for comparison.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from opsgate.config import Settings
from opsgate.server import App, build_app

BUDGET = 8 * 1024
START = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def text_bytes(result: Any) -> int:
    return sum(len(part.text.encode()) for part in result.content if getattr(part, "text", None))


def generate(path: Path, lines: int, seed: int = 5) -> None:
    rng = random.Random(seed)
    shapes = [
        ("info", "order {id} placed by user {user} in {ms}ms"),
        ("info", "GET /api/v1/items/{id} 200 {ms}ms"),
        ("debug", "cache hit for key cart:{user}"),
        ("warn", "slow query on table orders took {ms}ms"),
        ("error", "connection timeout to payments-{n}.shop.svc:8443 after {ms}ms"),
        ("error", "payment {id} declined: insufficient funds"),
        ("info", "worker {n} finished batch {id} ({n} items)"),
        ("warn", "retrying request {id} (attempt {n}/3)"),
        ("fatal", "out of memory in pool {n}"),
        ("info", "user {user} logged in from 10.0.{n}.{n}"),
    ]
    step = timedelta(hours=1) / lines
    with path.open("w") as out:
        for i in range(lines):
            level, shape = rng.choices(shapes, [30, 30, 15, 8, 5, 3, 4, 3, 0.1, 2])[0]
            msg = shape.format(
                id=rng.randint(1, 10**7), user=f"u{rng.randint(1, 5000)}", ms=rng.randint(1, 9000), n=rng.randint(1, 9)
            )
            stamp = (START + step * i).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            service = rng.choice(["checkout", "payments", "inventory"])
            out.write(json.dumps({"ts": stamp, "level": level, "service": service, "msg": msg}) + "\n")


async def call(app: App, tool: str, args: dict[str, Any]) -> tuple[Any, float]:
    async with Client(app.server, mode="legacy") as client:
        started = time.perf_counter()
        result = await client.call_tool(tool, args)
        elapsed = time.perf_counter() - started
    assert not result.is_error, result.content
    return result, elapsed


def report(label: str, result: Any, seconds: float) -> None:
    size = text_bytes(result)
    verdict = "ok" if size <= BUDGET else "OVER BUDGET"
    items = len(result.structured_content["items"])
    print(f"  {label:44} {size:6d} bytes ({verdict}), {items:3d} items, {seconds * 1000:7.1f} ms")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        examples = build_app(Settings(state_dir=Path(tmp) / "a"), ("logs",))
        print(f"default responses over the bundled example logs (budget {BUDGET} bytes of text):")
        for label, tool, call_args in [
            ("logs_query {}", "logs_query", {}),
            (
                "logs_query service=checkout min_severity=error",
                "logs_query",
                {"service": "checkout", "min_severity": "error"},
            ),
            ("logs_patterns {}", "logs_patterns", {}),
            ("logs_patterns since=3h", "logs_patterns", {"since": "3h"}),
        ]:
            result, seconds = await call(examples, tool, call_args)
            report(label, result, seconds)
        await examples.aclose()

        path = Path(tmp) / "big.jsonl"
        generate(path, args.lines)
        section = {"files": {"sources": [{"path": str(path)}]}, "now": (START + timedelta(hours=1)).isoformat()}
        big = build_app(Settings(state_dir=Path(tmp) / "b", logs=section), ("logs",))
        print(f"\nover {args.lines:,} generated lines ({path.stat().st_size / 2**20:.1f} MB):")
        result, seconds = await call(big, "logs_patterns", {})
        report("logs_patterns {}", result, seconds)
        out = result.structured_content
        print(
            f"    lines mined: {out['lines_scanned']:,}, templates found: {out['templates_total']}, "
            f"capped: {out['lines_capped']}"
        )
        for item in out["items"]:
            print(f"    {item['count']:6d}  {','.join(item['levels']):12} {item['template'][:80]}")
        result, seconds = await call(big, "logs_patterns", {"min_severity": "warn", "limit": 5})
        report("logs_patterns min_severity=warn limit=5", result, seconds)
        result, seconds = await call(big, "logs_query", {})
        report("logs_query {}", result, seconds)
        await big.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000)
    anyio.run(main, parser.parse_args())
