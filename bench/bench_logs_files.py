"""Files backend: text-filter scan throughput and time-window seeks on a 1 GB JSON-lines file.

    python bench/bench_logs_files.py [--size-mb 1024] [--path /tmp/opsgate-bench-logs.jsonl] [--windows 20]
                                     [--against OTHER_CHECKOUT]

Generates (once, then reuses) a time-ordered JSON-lines file of about `--size-mb` MB covering 24 h of a
service's logs, then prints, in one run:
- a case-insensitive text filter for a rare and a common term (newest 100) with the file marked
  `time_ordered = false`, beside ripgrep counting every match in the same file (`rg -c -i`): the first
  query on a backend just constructed with no stored index (the backend starts building the file's block
  time index in the background at construction, reading every byte; the query searches the file itself
  meanwhile, the build pausing for it: Hyperscan, or RE2 without it, over 8 MB reads, the times of the
  matching lines read with whole-array operations, only the lines kept parsed), the first
  query after a restart (a new backend loads the index the first one stored in its index directory),
  and the next ones (blocks read newest first, stopping once no unread block can hold a newer match);
- a 5-minute window query (newest 100 lines, and errors only) answered by binary search on byte
  offsets: median and worst over `--windows` random windows, through `LogsService` and once through
  an MCP client session;
- the same 5-minute window answered by a full scan (`time_ordered = false`), and the ratio.

`--against DIR` (another checkout, e.g. `git worktree add /tmp/old <commit>`) first runs that checkout's own
copy of this benchmark on the same file, with its code, and prints its figures above these: the old
beside the new in one run (the same ripgrep, the same page cache).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from opsgate.config import Settings
from opsgate.logs.backends.files import FilesBackend
from opsgate.logs.contracts import QueryInput
from opsgate.logs.service import LogsService
from opsgate.logs.settings import load
from opsgate.server import build_app

START = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
SPAN = timedelta(hours=24)
RARE = "quota-exceeded-7f3a"


def generate(path: Path, size_mb: int, seed: int = 11) -> None:
    """A time-ordered JSON-lines file of about `size_mb` MB spread evenly over SPAN."""
    rng = random.Random(seed)
    target = size_mb << 20
    approx_lines = target // 190
    step_us = SPAN / timedelta(microseconds=1) / approx_lines
    messages = [
        ("info", "order placed", 'order_id":"ord-{n}","duration_ms":{d}'),
        ("info", "payment authorized", 'request_id":"req-{n:x}","amount_cents":{d}'),
        ("debug", "cart loaded", 'request_id":"req-{n:x}","items":{d}'),
        ("warn", "slow downstream call", 'target":"inventory","duration_ms":{d}'),
        ("error", "connection timeout to payments after 5000ms", 'request_id":"req-{n:x}","attempt":{d}'),
    ]
    weights = [50, 30, 12, 5, 3]
    written, n = 0, 0
    t = START
    with path.open("w", buffering=1 << 22) as out:
        while written < target:
            batch = []
            for _ in range(10000):
                level, msg, extra = rng.choices(messages, weights)[0]
                if rng.random() < 0.0001:
                    level, msg = "error", f"payment declined: {RARE}"
                n += 1
                t += timedelta(microseconds=step_us)
                stamp = t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                fields = extra.format(n=n * 7919 % 1_000_003, d=rng.randint(1, 5000))
                batch.append(f'{{"ts":"{stamp}","level":"{level}","service":"checkout","msg":"{msg}","{fields}}}\n')
            chunk = "".join(batch)
            out.write(chunk)
            written += len(chunk)


def ripgrep_count(path: Path, term: str, repeats: int = 3) -> float | None:
    """Best time of `rg -c -i TERM FILE` (every match counted, case-insensitive like the text filter)."""
    rg = shutil.which("rg")
    if rg is None:
        return None
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([rg, "-c", "-i", "--fixed-strings", term, str(path)], check=False, capture_output=True)
        best = min(best, time.perf_counter() - started)
    return best


def service(path: Path, time_ordered: bool, index_dir: Path | None = None) -> LogsService:
    config = load(
        {
            "files": {"sources": [{"path": str(path), "time_ordered": time_ordered}]},
            "max_window": "2d",
            "timeout_s": 300,
            "now": (START + SPAN).isoformat(),
        }
    )
    return LogsService(config, FilesBackend(config.files, index_dir=index_dir))


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


async def timed(svc: LogsService, **args: Any) -> tuple[float, int]:
    started = time.perf_counter()
    out = await svc.query(QueryInput(**args))
    return time.perf_counter() - started, len(out.items)


def prepare(path: Path, size_mb: int) -> float:
    """Generate the file unless one of about the right size is there; its size in MB."""
    if not path.exists() or abs(path.stat().st_size - (size_mb << 20)) > (8 << 20):
        started = time.perf_counter()
        generate(path, size_mb)
        print(f"generated {path} ({path.stat().st_size / 2**20:.0f} MB) in {time.perf_counter() - started:.1f}s")
    return path.stat().st_size / 2**20


async def main(args: argparse.Namespace, size_mb: float) -> None:
    path = Path(args.path)
    whole = {"start": _iso(START - timedelta(minutes=1)), "end": _iso(START + SPAN + timedelta(minutes=1))}
    seek = service(path, True)
    print(f"file: {path}, {size_mb:.0f} MB, machine: {os.cpu_count()} cores")

    print("\ntext filter, newest 100, file marked time_ordered = false, beside ripgrep's full count (rg -c -i):")
    print(
        f"  {'term':22} {'rg -c -i':>9} {'first query':>12} {'after restart':>14} {'next query':>11}"
        "   (ratios to rg: first, after restart, next)"
    )
    with tempfile.TemporaryDirectory(prefix="opsgate-bench-index-") as index_dir:
        started = time.perf_counter()
        alone = service(path, False, Path(index_dir))
        assert isinstance(alone.backend, FilesBackend) and alone.backend.wait_for_indexes(300)
        built = time.perf_counter() - started
        print(f"  (the block time index alone, built in the background from construction: {built:.3f}s)")
        await alone.backend.aclose()
    for term in (RARE, "timeout to payments"):
        with tempfile.TemporaryDirectory(prefix="opsgate-bench-index-") as index_dir:
            fresh = service(path, False, Path(index_dir))  # no stored index: it starts building it now
            first, found = await timed(fresh, text=term, limit=100, **whole)
            assert isinstance(fresh.backend, FilesBackend) and fresh.backend.wait_for_indexes(300)
            await fresh.backend.aclose()
            restarted = service(path, False, Path(index_dir))  # a new process would load the stored index
            after_restart, found_again = await timed(restarted, text=term, limit=100, **whole)
            again = min([(await timed(restarted, text=term, limit=100, **whole))[0] for _ in range(3)])
            await restarted.backend.aclose()
        assert found == found_again
        rg = ripgrep_count(path, term)
        rg_text = f"{rg:8.3f}s" if rg is not None else "   (no rg)"
        ratios = f"   {first / rg:5.1f}x {after_restart / rg:5.1f}x {again / rg:5.1f}x" if rg else ""
        print(
            f"  {term[:22]:22} {rg_text} {first:11.3f}s {after_restart:13.3f}s {again:10.3f}s{ratios}  ({found} lines)"
        )

    from opsgate.logs.backends.files_search import LineFinder

    print(f"  (a query before the index exists searched with {LineFinder(b'x').engine})")

    rng = random.Random(3)
    windows = [START + timedelta(seconds=rng.uniform(0, SPAN.total_seconds() - 300)) for _ in range(args.windows)]
    print(f"\n5-minute windows by binary search ({len(windows)} random windows):")
    for label, extra in (("newest 100 lines", {}), ("errors only, newest 100", {"min_severity": "error"})):
        samples = []
        for w in windows:
            seconds, found = await timed(seek, start=_iso(w), end=_iso(w + timedelta(minutes=5)), limit=100, **extra)
            samples.append(seconds)
        print(f"  {label:26} median {statistics.median(samples) * 1000:7.1f} ms   worst {max(samples) * 1000:7.1f} ms")
    oldest_samples = []
    for w in windows:
        seconds, _ = await timed(
            seek, start=_iso(w), end=_iso(w + timedelta(minutes=5)), limit=500, order="oldest", text="timeout"
        )
        oldest_samples.append(seconds)
    print(
        f"  {'text=timeout, oldest 500':26} median {statistics.median(oldest_samples) * 1000:7.1f} ms   "
        f"worst {max(oldest_samples) * 1000:7.1f} ms"
    )

    w = windows[0]
    window = {"start": _iso(w), "end": _iso(w + timedelta(minutes=5)), "limit": 100}
    settings = Settings(
        state_dir=Path(args.path).parent / "opsgate-bench-state",
        logs={"files": {"sources": [{"path": str(path)}]}, "max_window": "2d"},
    )
    app = build_app(settings, ("logs",))
    async with Client(app.server, mode="legacy") as client:
        await client.call_tool("logs_query", {**window, "start": _iso(windows[-1])})  # warm the policy engine
        started = time.perf_counter()
        result = await client.call_tool("logs_query", window)
        mcp_seconds = time.perf_counter() - started
    await app.aclose()
    assert not result.is_error, result.content
    print(f"  through an MCP client session (gate, policy, audit included): {mcp_seconds * 1000:.1f} ms")

    seek_seconds, seek_found = await timed(seek, **window)
    scan_seconds, scan_found = await timed(service(path, False), **window)  # reads it all: the time index
    assert seek_found == scan_found
    print(
        f"\nsame 5-minute window, newest 100: seek {seek_seconds * 1000:.1f} ms vs full scan {scan_seconds:.1f} s "
        f"-> {scan_seconds / seek_seconds:,.0f}x"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--path", default="/tmp/opsgate-bench-logs.jsonl")
    parser.add_argument("--windows", type=int, default=20)
    parser.add_argument("--against", type=Path, default=None, help="another checkout: its own run of this first")
    parsed = parser.parse_args()
    size = prepare(Path(parsed.path), parsed.size_mb)
    if parsed.against is not None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for bench.baseline
        from bench.baseline import in_tree

        other = parsed.against.resolve()
        flags = ["--size-mb", str(parsed.size_mb), "--path", parsed.path, "--windows", str(parsed.windows)]
        print(f"== {other} (its own bench/bench_logs_files.py, its code) ==")
        print(in_tree(other, other / "bench" / "bench_logs_files.py", flags))
        print("== this tree ==")
    anyio.run(main, parsed, size)
