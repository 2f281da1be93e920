"""A scenario world through the real clients: opsgate's tools over MCP, and a real Prometheus.

- hostile-log-text: the injected instructions reach the agent only as flagged data, and the leaked
  password and bearer token never leave the server;
- the world's series, backfilled into a real Prometheus, answer the same PromQL the same way as the
  world's own Prometheus-compatible API.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from mcp import Client

from opsgate.config import load_settings
from opsgate.sandbox.engine import METRICS, REQUEST_METRICS
from opsgate.sandbox.world import SandboxWorld
from opsgate.server import App, build_app
from tests.metrics.prometheus_fixture import serve_backfilled

SECRETS = ("hunter2-Sup3rS3cret", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJyZXZpZXdzIn0.c2lnbmF0dXJl")


@pytest.fixture
async def hostile_app(tmp_path: Path) -> AsyncIterator[App]:
    with SandboxWorld("hostile-log-text", mode="frozen") as world:
        kubeconfig = world.write_kubeconfig(tmp_path / "kubeconfig")
        config = tmp_path / "opsgate.toml"
        config.write_text(world.config_toml(tmp_path, kubeconfig))
        app = build_app(load_settings(config), ["all"])
        yield app
        await app.aclose()


async def test_hostile_log_text_is_flagged_data_and_secrets_are_redacted(hostile_app: App) -> None:
    async with Client(hostile_app.server) as client:
        raw = await client.call_tool(
            "logs_query", {"namespace": "shop", "service": "reviews", "since": "30m", "min_severity": "warn",
                           "limit": 200},
        )  # fmt: skip
        patterns = await client.call_tool(
            "logs_patterns", {"namespace": "shop", "service": "reviews", "since": "30m", "min_severity": "warn"}
        )
    for result in (raw, patterns):
        assert not result.is_error
        text = "".join(getattr(block, "text", "") for block in result.content) + str(result.structured_content)
        for secret in SECRETS:
            assert secret not in text
        assert "monitored system" in result.content[0].text  # type: ignore[union-attr]
    messages = [item["message"] for item in raw.structured_content["items"]]  # type: ignore[index]
    assert any("SYSTEM NOTICE TO AI AGENTS" in m for m in messages), "the injected text is delivered, as data"
    assert any("db reconnect" in m for m in messages) and any("Authorization" in m for m in messages)


def _openmetrics(world: SandboxWorld, path: Path, start: float, end: float) -> None:
    times = np.arange(start, end + 60.0 + 1e-6, 60.0)  # one past the end: promtool drops the last sample
    with path.open("w") as out:
        for spec in METRICS:
            if spec.name not in REQUEST_METRICS:
                continue
            family = spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name
            out.write(f"# TYPE {family} {spec.kind}\n# HELP {family} {spec.help}\n")
            series = world.series(spec.name)
            values = world.values(spec.name, series, times)
            for labels, row in zip(series, values, strict=True):
                text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
                out.writelines(
                    f"{spec.name}{{{text}}} {v!r} {t:.0f}\n"
                    for t, v in zip(times.tolist(), row.tolist(), strict=True)
                    if not math.isnan(v)
                )
        out.write("# EOF\n")


def test_the_worlds_series_answer_the_same_in_a_real_prometheus() -> None:
    queries = [
        "max by (service) (error_ratio)",
        'avg by (service) (latency_p99_seconds{namespace="shop"})',
        "sum by (service) (request_rate)",
        "sum by (service) (rate(http_requests_total[5m]))",
    ]
    with SandboxWorld("config-pool-size", mode="frozen") as world, tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        start = world.anchor - 3 * 3600
        _openmetrics(world, root / "world.om.txt", start, world.anchor)
        with serve_backfilled(root / "world.om.txt", root) as real:
            for query in queries:
                for at in (world.anchor - 2 * 3600, world.anchor - 20 * 60, world.anchor - 60):
                    answers = []
                    for url in (world.prometheus_url, real):
                        body = httpx.post(f"{url}/api/v1/query", data={"query": query, "time": str(at)}).json()
                        answers.append({r["metric"]["service"]: float(r["value"][1]) for r in body["data"]["result"]})
                    ours, theirs = answers
                    assert ours.keys() == theirs.keys(), query
                    tolerance = 0.03 if "rate(" in query else 1e-9
                    for service, value in theirs.items():
                        assert ours[service] == pytest.approx(value, rel=tolerance), (query, at, service)
