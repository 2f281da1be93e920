"""Size and time of the workloads tools' default answers on a busy namespace.

The loopback Kubernetes API emulation holds namespace `shop` with 50 pods (five Deployments of ten
replicas: one mid-rollout to a crash-looping revision, one with OOMKilled restarts on half its pods,
one whose readiness flaps) and 2,000 events (the controllers' and kubelets' own, topped up with
aggregated warnings). Each tool is called through a real opsgate app (policy, audit, limits) with an
in-process MCP client, with its default arguments; printed: the bytes of the structured answer and of
the text content, and the wall time (median of `--repeats`).

Run: ``python bench/bench_workloads.py [--repeats 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from mcp import Client

from opsgate.config import Settings
from opsgate.sandbox.kube_api import (
    DEPLOYMENTS,
    EVENTS,
    PODS,
    ControllerConfig,
    DeploymentSeed,
    KubeApiServer,
    KubeCluster,
    PodBehavior,
    seed_namespace,
)
from opsgate.server import build_app

BUDGET_BYTES = 8 * 1024


def busy_cluster(pods: int = 50, events: int = 2000) -> KubeCluster:
    cluster = KubeCluster(ControllerConfig(ready_after_ticks=1, progress_deadline_seconds=3600, max_events=events))
    names = ["checkout", "payments", "inventory", "frontend", "search"]
    per = pods // len(names)
    seed_namespace(cluster, "shop", [DeploymentSeed(n, revisions=4, replicas=per) for n in names])
    cluster.behaviors.add(
        PodBehavior(image="registry.example.com/shop/payments:v4", exits="OOMKilled", run_seconds=900, share=0.5)
    )
    cluster.behaviors.add(PodBehavior(image="registry.example.com/shop/inventory:v4", readiness="flapping"))
    cluster.faults.mark_image_bad("registry.example.com/shop/checkout:v5")
    cluster.patch_deployment(
        "shop",
        "checkout",
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "checkout", "image": "registry.example.com/shop/checkout:v5"}]}
                }
            }
        },
        "application/strategic-merge-patch+json",
    )
    cluster.tick(5)
    # top the namespace up to `events` events: warnings about pods, as a noisy cluster has them
    pod_list = cluster.list(PODS, "shop")["items"]
    now = cluster.now()
    i = 0
    while len(cluster.list(EVENTS, "shop")["items"]) < events:
        pod = {**pod_list[i % len(pod_list)], "apiVersion": "v1", "kind": "Pod"}
        cluster.record_event(
            pod,
            ["Unhealthy", "BackOff", "FailedMount", "NodeNotReady"][i % 4],
            f"synthetic warning {i} for {pod['metadata']['name']}: probe failed with statuscode 503",
            event_type="Warning",
            count=1 + i % 7,
            first=now - timedelta(minutes=50 - i % 50),
            last=now - timedelta(seconds=i % 600),
        )
        i += 1
    assert len(cluster.list(PODS, "shop")["items"]) >= pods
    cluster.get(DEPLOYMENTS, "shop", "checkout")
    return cluster


async def measure(repeats: int) -> list[tuple[str, int, int, float]]:
    cluster = busy_cluster()
    calls: list[tuple[str, dict[str, Any]]] = [
        ("workload_status", {"namespace": "shop", "name": "checkout"}),
        ("workload_status", {"namespace": "shop", "name": "payments"}),
        ("k8s_events", {"namespace": "shop"}),
        ("k8s_events", {"namespace": "shop", "name": "checkout"}),
        ("k8s_events", {"namespace": "shop", "type": "Warning"}),
    ]
    rows = []
    with KubeApiServer(cluster, tick_seconds=None) as server, tempfile.TemporaryDirectory() as state:
        settings = Settings(state_dir=Path(state), workloads={"api_url": server.url})
        settings.limits.per_tool_per_minute = 100_000
        app = build_app(settings, ["workloads"])
        try:
            async with Client(app.server) as client:
                for tool, args in calls:
                    times = []
                    result = None
                    for _ in range(repeats):
                        started = time.perf_counter()
                        result = await client.call_tool(tool, args)
                        times.append(time.perf_counter() - started)
                    assert result is not None and not result.is_error, result
                    structured = len(json.dumps(result.structured_content, separators=(",", ":")).encode())
                    text = sum(len(getattr(block, "text", "").encode()) for block in result.content)
                    rows.append((f"{tool} {json.dumps(args)}", structured, text, statistics.median(times)))
        finally:
            await app.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = asyncio.run(measure(args.repeats))
    print("namespace shop: 50 pods, 2000 events (default arguments; budget 8 KB for the structured answer)")
    print(f"{'call':<78} {'structured':>10} {'content':>8} {'median':>9}")
    for name, structured, text, seconds in rows:
        flag = "" if structured <= BUDGET_BYTES else "  OVER BUDGET"
        print(f"{name:<78} {structured:>9}B {text:>7}B {seconds * 1000:>7.1f}ms{flag}")


if __name__ == "__main__":
    main()
