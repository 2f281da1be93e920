"""A scenario world through the real clients: opsgate's tools over MCP, and a real Prometheus.

- hostile-log-text: the injected instructions reach the agent only as flagged data, and the leaked
  password and bearer token never leave the server;
- the world's series, backfilled into a real Prometheus, answer the same PromQL the same way as the
  world's own Prometheus-compatible API.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import numpy as np
import pytest
from mcp import Client

from opsgate.config import load_settings
from opsgate.sandbox.engine import METRICS, REQUEST_METRICS
from opsgate.sandbox.scenario import load_scenario
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


async def _tool_outputs(name: str, tmp_path: Path) -> list[str]:
    scenario = load_scenario(name)
    ns, service = scenario.alert.namespace, scenario.alert.service or scenario.services[0].name
    calls = [
        ("changes_recent", {"namespace": ns, "since_minutes": 180}),
        ("metrics_anomalies", {"namespace": ns, "since": "1h"}),
        ("metrics_query", {"metric": "error_ratio", "namespace": ns, "instant": True}),
        ("metrics_query", {"metric": "latency_p99_seconds", "namespace": ns, "since": "1h", "points": 20}),
        ("metrics_query", {"metric": "memory_usage_bytes", "namespace": ns, "service": service, "since": "3h"}),
        ("rollout_history", {"namespace": ns, "deployment": service}),
        ("rollout_status", {"namespace": ns, "deployment": service}),
        ("logs_patterns", {"namespace": ns, "service": service, "since": "30m"}),
        ("logs_query", {"namespace": ns, "service": service, "since": "30m", "min_severity": "warn"}),
        ("workload_status", {"namespace": ns, "name": service}),
        ("k8s_events", {"namespace": ns, "since": "6h"}),
    ]
    outputs = []
    await anyio.Path(tmp_path).mkdir(parents=True)
    with SandboxWorld(name, mode="frozen") as world:
        kubeconfig = world.write_kubeconfig(tmp_path / "kubeconfig")
        config = tmp_path / "opsgate.toml"
        config.write_text(world.config_toml(tmp_path, kubeconfig))
        app = build_app(load_settings(config), ["all"])
        async with Client(app.server) as client:
            for tool, args in calls:
                result = await client.call_tool(tool, args)
                assert not result.is_error, (tool, result.content)
                outputs.append(_modulo_ids_and_times(json.dumps(result.structured_content, sort_keys=True)))
        await app.aclose()
    return outputs


def _modulo_ids_and_times(text: str) -> str:
    text = re.sub(r'"(next_cursor|cursor)": "[^"]*"', r'"\1": "<cursor>"', text)  # encodes times
    text = re.sub(r'"(\w*age_s|\w*_ago_s)": [\d.]+', r'"\1": "<elapsed>"', text)  # ages grow with the clock
    text = re.sub(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?", "<time>", text)
    text = re.sub(r"\b1[789]\d{8}(\.\d+)?\b", "<time>", text)  # unix seconds
    return re.sub(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<uid>", text)


@pytest.mark.parametrize("name", ["checkout-bad-deploy", "memory-leak-late", "image-pull-error"])
async def test_a_scenario_run_twice_gives_identical_tool_outputs(name: str, tmp_path: Path) -> None:
    first = await _tool_outputs(name, tmp_path / "a")
    second = await _tool_outputs(name, tmp_path / "b")
    for a, b in zip(first, second, strict=True):
        assert a == b
    assert '"items": []' not in first[0], "the story has a change to show"


async def test_the_alert_fires_until_the_rollback_and_then_resolves(tmp_path: Path) -> None:
    with SandboxWorld("checkout-bad-deploy", mode="frozen") as world:
        http = httpx.AsyncClient(base_url=world.prometheus_url)
        firing = (await http.get("/api/v2/alerts")).json()
        assert [a["labels"]["alertname"] for a in firing] == ["CheckoutHighLatency"]
        assert firing[0]["annotations"]["runbook_url"] == "runbook://checkout-latency-regression"
        kubeconfig = world.write_kubeconfig(tmp_path / "kubeconfig")
        config = tmp_path / "opsgate.toml"
        config.write_text(world.config_toml(tmp_path, kubeconfig, autonomy="autonomous"))
        app = build_app(load_settings(config), ["rollback"])
        async with Client(app.server) as client:
            done = await client.call_tool(
                "rollback_deployment",
                {"namespace": "shop", "deployment": "checkout", "dry_run": False, "reason": "v8 is slow"},
            )
            assert not done.is_error, done.content
        await app.aclose()
        assert world.recovered()
        assert (await http.get("/api/v2/alerts")).json() == []
        assert (await http.get("/api/v1/alerts")).json()["data"]["alerts"] == []
        await http.aclose()
