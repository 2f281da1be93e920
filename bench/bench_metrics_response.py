"""Metrics budgets: default response sizes, and metrics_anomalies over 1,000 series x 1,440 points.

    python bench/bench_metrics_response.py [--runs 5]

Prints, on the sandbox backend and through the gate with an in-process MCP client:
- the text size (summary + compact JSON) of each tool's default response, against the 8 KB budget;
- metrics_anomalies end to end over 1,000 series of 1,440 points (sandbox with 50 pods per service,
  five key metrics, a 59 min window after 23 h of baseline, 60 s step): median and max of the runs,
  beside its parts in the same run (generating the series, the detector alone on the same arrays),
  so the gate and MCP overhead shows as a ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from mcp import Client
from mcp_types import TextContent

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.metrics
from tests.metrics.series_backend import SeriesBackend, SeriesSettings

from opsgate.config import Settings
from opsgate.metrics.anomaly import rank_series
from opsgate.metrics.selection import Selection, series_name
from opsgate.metrics.server import build_capability
from opsgate.metrics.settings import KEY_METRICS, MetricsSettings
from opsgate.sandbox.series import SERVICES, SandboxSeries, SandboxTimeline
from opsgate.server import build_app

TEXT_BUDGET = 8 * 1024


def _text_size(result: Any) -> int:
    return sum(len(block.text.encode()) for block in result.content if isinstance(block, TextContent))


def _capability(series: SeriesSettings) -> Any:
    """The metrics capability over the in-process series backend (no HTTP between it and the data)."""
    return build_capability(MetricsSettings(), SeriesBackend(series))


async def response_sizes(state: Path) -> bool:
    now = time.time()
    settings = Settings(state_dir=state / "sizes")
    app = build_app(settings, (), capabilities=[_capability(SeriesSettings(deploy_at=now - 1800))])
    calls: list[tuple[str, dict[str, Any]]] = [
        ("metrics_query", {"metric": "latency_p99_seconds"}),
        ("metrics_query", {"metric": "latency_p99_seconds", "namespace": "shop", "since": "24h"}),
        ("metrics_query", {"metric": "error_ratio", "instant": True}),
        ("metrics_query", {"metric": "http_requests_total", "aggregation": "rate", "by": ["service"]}),
        ("metrics_anomalies", {}),
        ("metrics_anomalies", {"namespace": "shop", "since": "6h"}),
        ("metrics_compare", {"metric": "latency_p99_seconds", "at": now - 1800}),
        ("metrics_compare", {"metric": "error_ratio", "aggregation": "max", "by": ["service"], "at": now - 1800}),
    ]
    ok = True
    print(f"-- default response sizes (text = summary + JSON), budget {TEXT_BUDGET} bytes")
    async with Client(app.server, mode="2026-07-28") as client:
        for tool, args in calls:
            result = await client.call_tool(tool, args)
            size = _text_size(result)
            verdict = "error" if result.is_error else ("ok" if size < TEXT_BUDGET else "OVER")
            ok &= verdict == "ok"
            print(f"{tool:<18} {str(args)[:70]:<72} {size:6d} B  {verdict}")
    await app.aclose()
    return ok


async def anomalies_at_scale(state: Path, runs: int) -> None:
    now = float(int(time.time() // 60) * 60)
    pods = 50
    settings = Settings(state_dir=state / "scale")
    series = SeriesSettings(pods_per_service=pods, deploy_at=now - 1800)
    app = build_app(settings, (), capabilities=[_capability(series)])
    args = {"since": "59m", "end": now, "baseline": "23h", "step": "60s"}  # 1,440 points a series
    gate_s: list[float] = []
    async with Client(app.server, mode="2026-07-28") as client:
        for _ in range(runs + 1):  # the first run warms caches and is not counted
            started = time.perf_counter()
            result = await client.call_tool("metrics_anomalies", args)
            gate_s.append(time.perf_counter() - started)
            assert not result.is_error, result.content
    out = result.structured_content or {}
    await app.aclose()
    gate_s = gate_s[1:]

    # the parts, on the same series
    timeline = SandboxTimeline(deploy_at=now - 1800)
    backend = SeriesBackend(SeriesSettings(), series=SandboxSeries(7, timeline, SERVICES, pods))
    start, end = now - 86_400 + 60, now
    fetch_s, detect_s = [], []
    named: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for _ in range(runs):
        t0 = time.perf_counter()
        named = {}
        for metric in KEY_METRICS:
            for s in await backend.query_range(Selection(metric), start, end, 60.0):
                named[series_name(s.metric, s.labels)] = (s.times, s.values)
        fetch_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rank_series(named, (now - 3600, now))
        detect_s.append(time.perf_counter() - t0)
    points = {v[0].size for v in named.values()}
    med = statistics.median(gate_s)
    print(f"-- metrics_anomalies over {out.get('series_scanned')} series x {sorted(points)} points, {runs} runs")
    print(
        f"end to end through the gate (MCP, in process)  median {med * 1e3:7.1f} ms   max {max(gate_s) * 1e3:7.1f} ms"
    )
    print(f"  sandbox series generation alone               median {statistics.median(fetch_s) * 1e3:7.1f} ms")
    print(f"  detector alone (rank_series)                  median {statistics.median(detect_s) * 1e3:7.1f} ms")
    overhead = med - statistics.median(fetch_s) - statistics.median(detect_s)
    print(f"  gate + MCP + shaping (the rest)               median {overhead * 1e3:7.1f} ms ({overhead / med:.0%})")
    print(
        f"budget 1 s: {'ok' if med < 1.0 else 'OVER'}; anomalies found {len(out.get('items', []))}, "
        f"top {out['items'][0]['series'] if out.get('items') else '-'}"
    )


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        await response_sizes(state)
        await anomalies_at_scale(state, runs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    anyio.run(main, parser.parse_args().runs)
