"""Scenario library: time to build and replay each scenario, and to run the whole library through the
baseline investigator with `opsgate eval`'s runner.

    python bench/bench_scenarios.py [--runs 3] [--no-eval]

Per scenario: `load` (parse and check the YAML), `build` (seed the emulated cluster: every revision rolled
out through the deployment controller, pod statuses and events written, both loopback APIs started),
and `replay`, one full read of the world as the tools see it: every pod's log over the last hour
through the Kubernetes API, and a one-hour range query of every metric (every series, one-minute step)
through the Prometheus-compatible API. Medians over `--runs`. Then the eval: each scenario's world, the
evaluation server over stdio, the baseline's calls and the scoring, wall time per scenario and in total.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx

from opsgate.evaluation.report import table
from opsgate.evaluation.runner import baseline, run_eval
from opsgate.sandbox.engine import METRIC_NAMES
from opsgate.sandbox.scenario import load_scenario, scenario_names
from opsgate.sandbox.world import SandboxWorld


def replay(world: SandboxWorld, client: httpx.Client) -> tuple[int, int]:
    lines = points = 0
    for namespace in world.scenario.namespaces:
        pods = client.get(f"{world.api_url}/api/v1/namespaces/{namespace}/pods").json()["items"]
        for pod in pods:
            name = pod["metadata"]["name"]
            text = client.get(
                f"{world.api_url}/api/v1/namespaces/{namespace}/pods/{name}/log", params={"sinceSeconds": 3600}
            ).text
            lines += text.count("\n")
    end = world.anchor
    for metric in METRIC_NAMES:
        body = client.post(
            f"{world.prometheus_url}/api/v1/query_range",
            data={"query": metric, "start": str(end - 3600), "end": str(end), "step": "60"},
        ).json()
        points += sum(len(r["values"]) for r in body["data"]["result"])
    return lines, points


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-eval", action="store_true")
    args = parser.parse_args()
    names = scenario_names()
    print(f"-- build and replay, {len(names)} scenarios, median of {args.runs} runs")
    print(f"{'scenario':<36} {'load ms':>8} {'build ms':>9} {'replay ms':>10} {'log lines':>10} {'points':>7}")
    totals = [0.0, 0.0, 0.0]
    with httpx.Client(timeout=30) as client:
        for name in names:
            load_s, build_s, replay_s = [], [], []
            lines = points = 0
            for _ in range(args.runs):
                t0 = time.perf_counter()
                scenario = load_scenario(name)
                t1 = time.perf_counter()
                world = SandboxWorld(scenario, mode="frozen").start()
                t2 = time.perf_counter()
                try:
                    lines, points = replay(world, client)
                finally:
                    t3 = time.perf_counter()
                    world.stop()
                load_s.append(t1 - t0)
                build_s.append(t2 - t1)
                replay_s.append(t3 - t2)
            medians = [statistics.median(x) * 1e3 for x in (load_s, build_s, replay_s)]
            totals = [a + b for a, b in zip(totals, medians, strict=True)]
            print(f"{name:<36} {medians[0]:8.1f} {medians[1]:9.1f} {medians[2]:10.1f} {lines:10d} {points:7d}")
    print(f"{'total':<36} {totals[0]:8.1f} {totals[1]:9.1f} {totals[2]:10.1f}")
    if args.no_eval:
        return 0
    print(f"\n-- the whole library through the baseline investigator (opsgate eval), {len(names)} scenarios")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        scores = anyio.run(
            lambda: run_eval(names, baseline, workdir=Path(work), progress=lambda line: print(line, file=sys.stderr))
        )
    elapsed = time.perf_counter() - started
    print(table(scores))
    print(f"eval wall time: {elapsed:.1f} s total, {elapsed / len(names):.1f} s per scenario")
    return 0


if __name__ == "__main__":
    sys.exit(main())
