"""The `[metrics]` section: the default serves the sandbox; a bad section is a clear config error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mcp import Client

from opsgate.config import ConfigError, Settings
from opsgate.metrics.server import build
from opsgate.server import App


async def test_default_configuration_serves_the_sandbox(make_app: Callable[..., App]) -> None:
    app = make_app(("metrics",))
    try:
        async with Client(app.server, mode="2026-07-28") as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("metrics_query", {"metric": "request_rate", "instant": True})
    finally:
        await app.aclose()
    assert {"metrics_query", "metrics_anomalies", "metrics_compare"} <= tools
    assert not result.is_error and result.structured_content is not None
    assert result.structured_content["backend"] == "sandbox" and len(result.structured_content["items"]) == 4


def test_a_bad_metrics_section_names_the_keys(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, metrics={"backend": "influx", "prometheus": {"urll": "x"}})
    with pytest.raises(ConfigError, match=r"backend: Input should be .*prometheus\.urll: unknown key"):
        build(settings)
