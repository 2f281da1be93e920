"""The `[metrics]` section: the default is Prometheus; a bad section is a clear config error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mcp import Client

from opsgate.config import ConfigError, Settings
from opsgate.metrics.server import build
from opsgate.server import App


async def test_default_configuration_is_prometheus_and_an_unreachable_one_is_a_clear_error(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    """The capability knows no sandbox: its default backend is Prometheus (a sandbox is wired by config)."""
    from tests.support.loopback import free_port

    settings = Settings(state_dir=tmp_path, metrics={"prometheus": {"url": f"http://127.0.0.1:{free_port()}"}})
    app = make_app(("metrics",), settings=settings)
    try:
        async with Client(app.server, mode="2026-07-28") as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("metrics_query", {"metric": "request_rate", "instant": True})
    finally:
        await app.aclose()
    assert {"metrics_query", "metrics_anomalies", "metrics_compare"} <= tools
    assert result.is_error and "unreachable" in result.content[0].text  # type: ignore[union-attr]


def test_a_bad_metrics_section_names_the_keys(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, metrics={"backend": "influx", "prometheus": {"urll": "x"}})
    with pytest.raises(ConfigError, match=r"backend: Input should be .*prometheus\.urll: unknown key"):
        build(settings)
