"""metrics_compare by revision: a canary whose bad pods are one in ten shows up as the bad revision
against the good one, while the aggregate barely moves. The series are served over HTTP by the
sandbox's Prometheus-compatible API and read by the metrics capability's ordinary Prometheus backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from mcp import Client

from opsgate.config import Settings
from opsgate.sandbox.promapi import PromApiServer
from opsgate.server import build_app

AT = 1_795_000_000.0  # a fixed moment: no dependence on the wall clock
GOOD, BAD = "6d9f7c8b5", "7c4b9d6f8"


class CanarySource:
    """Ten pods of `checkout`: nine on the good revision, one canary pod on the bad one after AT."""

    def __init__(self) -> None:
        self.pods = [
            {
                "namespace": "shop",
                "service": "checkout",
                "pod": f"checkout-{i}",
                "pod_template_hash": GOOD if i else BAD,
            }
            for i in range(10)
        ]

    def metric_names(self) -> Sequence[str]:
        return ["error_ratio"]

    def series(self, metric: str) -> list[dict[str, str]]:
        return [dict(p) for p in self.pods] if metric == "error_ratio" else []

    def values(self, metric: str, series: Sequence[dict[str, str]], times: np.ndarray) -> np.ndarray:
        rows = []
        for labels in series:
            noise = 0.0004 * np.sin(times / 97.0 + int(labels["pod"].rsplit("-", 1)[1]))
            row = 0.002 + noise
            if labels["pod_template_hash"] == BAD:
                row = np.where(times >= AT, 0.25 + noise, np.nan)  # the canary pod exists only after AT
            rows.append(row)
        return np.array(rows, dtype=np.float64)

    def alerts(self) -> list[dict[str, Any]]:
        return []


async def test_the_bad_revision_stands_out_though_the_aggregate_barely_moves(tmp_path: Path) -> None:
    with PromApiServer(CanarySource(), clock=lambda: AT + 1800) as prometheus:
        settings = Settings(
            state_dir=tmp_path / "state", metrics={"backend": "prometheus", "prometheus": {"url": prometheus.url}}
        )
        app = build_app(settings, ["metrics"])
        try:
            async with Client(app.server) as client:
                split = await client.call_tool(
                    "metrics_compare",
                    {"metric": "error_ratio", "service": "checkout", "at": AT, "by_revision": "pod_template_hash"},
                )
                aggregate = await client.call_tool(
                    "metrics_compare",
                    {
                        "metric": "error_ratio",
                        "service": "checkout",
                        "at": AT,
                        "aggregation": "quantile",
                        "quantile": 0.5,
                    },
                )
                missing = await client.call_tool(
                    "metrics_compare",
                    {"metric": "error_ratio", "at": AT, "aggregation": "avg", "by_revision": "pod_template_hash"},
                )
        finally:
            await app.aclose()
    assert not split.is_error, split.content
    revisions = split.structured_content["revisions"]
    assert [r["revision"] for r in revisions] == [BAD, GOOD]
    bad = revisions[0]
    assert bad["pods"] == 1 and bad["direction"] == "up" and bad["after"] > 0.2 and bad["others"] < 0.003
    assert revisions[1]["pods"] == 9 and revisions[1]["change_pct"] < 0
    assert BAD in split.content[0].text
    median = aggregate.structured_content["items"][0]
    assert median["direction"] == "flat", median
    assert missing.is_error and "pod_template_hash" in missing.content[0].text
