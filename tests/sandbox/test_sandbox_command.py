"""`opsgate sandbox`: every tool over stdio against one live incident, as a real agent would wire it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp import Client, StdioServerParameters


async def test_sandbox_serves_one_coherent_incident(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "opsgate", "sandbox", "--state-dir", str(tmp_path)],
        env={**os.environ},
    )
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"rollback_deployment", "metrics_anomalies", "logs_patterns", "runbook_search"} <= names
        changes = await client.call_tool("changes_recent", {"namespace": "shop", "since_minutes": 120})
        newest = changes.structured_content["items"][0]
        assert newest["deployment"] == "checkout"
        anomalies = await client.call_tool("metrics_anomalies", {"namespace": "shop", "since": "1h"})
        assert 'service="checkout"' in anomalies.structured_content["items"][0]["series"]
        errors = await client.call_tool(
            "logs_query", {"service": "checkout", "namespace": "shop", "min_severity": "error"}
        )
        assert errors.structured_content["items"], "the bad revision's pods log errors"
        rollback = await client.call_tool(
            "rollback_deployment",
            {"namespace": "shop", "deployment": "checkout", "dry_run": False, "reason": "v8 raised p99 latency"},
        )
        assert rollback.is_error and "approval" in rollback.content[0].text
    assert (tmp_path / "audit.db").exists() and (tmp_path / "approvals.db").exists()


async def test_serve_with_no_config_tells_one_incident_on_one_clock(tmp_path: Path) -> None:
    """No config file at all: every capability reads the default scenario's world, at the same times."""
    from datetime import datetime

    env = {k: v for k, v in os.environ.items() if k != "OPSGATE_CONFIG"}
    env["XDG_STATE_HOME"] = str(tmp_path)
    params = StdioServerParameters(command=sys.executable, args=["-m", "opsgate", "serve", "all"], env=env)
    async with Client(params) as client:
        changes = await client.call_tool("changes_recent", {"namespace": "shop", "since_minutes": 60})
        newest = changes.structured_content["items"][0]
        assert (newest["deployment"], newest["revision"]) == ("checkout", 8)
        deployed = datetime.fromisoformat(newest["created"].replace("Z", "+00:00"))
        anomalies = await client.call_tool("metrics_anomalies", {"namespace": "shop", "since": "1h"})
        top = anomalies.structured_content["items"][0]
        assert 'service="checkout"' in top["series"]
        started = datetime.fromisoformat(top["start"].replace("Z", "+00:00"))
        assert abs((started - deployed).total_seconds()) <= 180, "metrics and the cluster share one clock"
        errors = await client.call_tool(
            "logs_query", {"service": "checkout", "namespace": "shop", "since": "30m", "min_severity": "error"}
        )
        items = errors.structured_content["items"]
        assert items, "the bad revision's pods log errors now"
        first = min(datetime.fromisoformat(i["time"].replace("Z", "+00:00")) for i in items)
        assert first >= deployed, "no error line predates the deploy that causes it"
