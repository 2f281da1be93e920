"""Speed of ``metrics_anomalies`` over 1,000 series of 1,440 points, next to a rolling z-score.

Each series is five days at a five-minute step with a daily cycle, noise, and (for one in five)
an injected spike, level shift or dip in the last day. The series sit on three time grids (one in
three shifted by 100 s, one in three by 200 s: different scrape phases), as series from different
sources do. Printed, in one run:

- ``metrics_anomalies`` end to end through the gate: a real opsgate app (policy, audit, limits) with
  the metrics capability over a backend serving these series, called through an in-process MCP
  client, window = the last hour; wall time and the process CPU time (this machine is shared: CPU
  time is the steadier figure);
- the detector alone (``rank_series``), new and, in the same process, the one before issue 13
  (commit ``BASELINE_COMMIT``, read with ``git show``; skipped without git history);
- the plain rolling z-score (one-day trailing mean and standard deviation, |z| > 4) over the same series.

Run: ``python bench/bench_anomaly_speed.py [--series 1000] [--points 1440] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import numpy as np
from mcp import Client
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for bench.baseline
from bench.baseline import package_at

from opsgate.config import Settings
from opsgate.metrics.anomaly import rank_series
from opsgate.metrics.backends.base import Series
from opsgate.metrics.selection import Selection
from opsgate.metrics.server import build_capability
from opsgate.metrics.settings import MetricsSettings
from opsgate.server import build_app

REPO = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "89375463c6fc33030721368e53db83772f88b7bd"  # main before issue 13's detector changes
STEP = 300.0
DAY_POINTS = int(86_400 / STEP)
T0 = 1_700_000_000.0

Named = dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]


def make_series(count: int, points: int, seed: int = 7) -> tuple[Named, set[str]]:
    rng = np.random.default_rng(seed)
    grids = [T0 + offset + STEP * np.arange(points, dtype=np.float64) for offset in (0.0, 100.0, 200.0)]
    phase = 2 * np.pi * np.arange(points) / DAY_POINTS
    out: Named = {}
    injected: set[str] = set()
    for i in range(count):
        level = rng.uniform(10, 1000)
        v: NDArray[np.float64] = level * (1 + 0.3 * np.sin(phase + rng.uniform(0, 2 * np.pi)))
        v += rng.normal(0, 0.03 * level, points)
        name = f"series-{i:04d}"
        if i % 5 == 0:
            at = int(rng.integers(points - DAY_POINTS // 2, points - 10))
            kind = i % 3
            if kind == 0:
                v[at] += 1.5 * level
            elif kind == 1:
                v[at:] += 0.8 * level
            else:
                v[at : at + 24] -= 0.7 * level
            injected.add(name)
        out[name] = (grids[i % 3], v)
    return out, injected


class FixedBackend:
    """A metrics backend that answers every range query with the given series (whatever step was asked)."""

    name = "bench"

    def __init__(self, named: Named) -> None:
        self._series = [Series({"series": name}, t, v, metric="bench_metric") for name, (t, v) in named.items()]

    async def query_range(self, selection: Selection, start: float, end: float, step: float) -> list[Series]:
        return self._series

    async def query_instant(self, selection: Selection, at: float) -> list[Series]:
        return []

    def describe(self, selection: Selection) -> str:
        return "bench series"

    async def aclose(self) -> None:
        return None


def rolling_z_flags(values: NDArray[np.float64], window: int = DAY_POINTS, limit: float = 4.0) -> int:
    """Plain rolling z-score over the previous ``window`` points; returns the count of flagged points."""
    c = np.concatenate(([0.0], np.cumsum(values)))
    c2 = np.concatenate(([0.0], np.cumsum(values * values)))
    hi = np.arange(values.size)
    lo = np.maximum(hi - window, 0)
    n = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (c[hi] - c[lo]) / n
        sd = np.sqrt(np.maximum((c2[hi] - c2[lo]) / n - mean * mean, 0.0))
        z = (values - mean) / sd
    return int(np.count_nonzero((n >= window) & (np.abs(z) > limit)))


def load_baseline() -> ModuleType | None:
    """The anomaly package at ``BASELINE_COMMIT`` as module ``baseline_anomaly``, or None without git."""
    return package_at(
        BASELINE_COMMIT,
        "metrics/anomaly",
        ("__init__", "_config", "_events", "_grid", "_model", "_robust"),
        "baseline_anomaly",
    )


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall and median process-CPU seconds of ``repeats`` runs (after one warm-up run)."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


async def through_gate(named: Named, end: float, repeats: int) -> tuple[float, float, dict[str, Any]]:
    with tempfile.TemporaryDirectory() as state:
        capability = build_capability(
            MetricsSettings(key_metrics=["bench_metric"]), FixedBackend(named), clock=lambda: end
        )
        app = build_app(Settings(state_dir=Path(state)), (), capabilities=[capability])
        args = {"since": "1h", "step": "300s", "baseline": "5d", "limit": 50}
        wall: list[float] = []
        cpu: list[float] = []
        out: dict[str, Any] = {}
        async with Client(app.server, mode="2026-07-28") as client:
            for i in range(repeats + 1):  # the first call warms caches and is not counted
                w0, c0 = time.perf_counter(), time.process_time()
                result = await client.call_tool("metrics_anomalies", args)
                if i:
                    wall.append(time.perf_counter() - w0)
                    cpu.append(time.process_time() - c0)
                assert not result.is_error, result.content
                out = result.structured_content or {}
        await app.aclose()
    return statistics.median(wall), statistics.median(cpu), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--points", type=int, default=1440)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    series, injected = make_series(args.series, args.points)
    end = max(float(t[-1]) for t, _ in series.values())
    last_hour = (end - 3600.0, end)
    last_day = (end - 86_400.0, end)

    gate_wall, gate_cpu, out = anyio.run(through_gate, series, end, args.repeats)
    new_wall, new_cpu = timed(lambda: rank_series(series, last_hour), args.repeats)
    baseline = load_baseline()
    old: tuple[float, float] | None = None
    if baseline is not None:
        old = timed(lambda: baseline.rank_series(series, last_hour), args.repeats)
    z_wall, z_cpu = timed(lambda: [rolling_z_flags(v) for _, v in series.values()], args.repeats)

    print(f"{args.series} series x {args.points} points on 3 time grids, {args.repeats} runs each (medians)")
    print(f"{'':46s} {'wall s':>8s} {'CPU s':>8s}")
    print(f"{'metrics_anomalies through the gate (MCP)':46s} {gate_wall:8.3f} {gate_cpu:8.3f}   goal < 0.5 s")
    print(f"{'detector alone (rank_series), window 1 h':46s} {new_wall:8.3f} {new_cpu:8.3f}")
    if old is not None:
        print(f"{'detector before issue 13 (' + BASELINE_COMMIT[:10] + ')':46s} {old[0]:8.3f} {old[1]:8.3f}")
    else:
        print("detector before issue 13: unavailable (no git history in this checkout)")
    print(f"{'rolling z-score (numpy)':46s} {z_wall:8.3f} {z_cpu:8.3f}")
    print(f"ratio detector / rolling z-score (CPU): {new_cpu / z_cpu:.1f}x")
    hits = {name for name, _ in rank_series(series, last_day)}
    print(
        f"injected anomalies found in the last day: {len(injected & hits)}/{len(injected)}; "
        f"series flagged without injection: {len(hits - injected)}; "
        f"through the gate: {out.get('series_scanned')} series scanned, {len(out.get('items', []))} anomalies listed"
    )


if __name__ == "__main__":
    main()
