"""Tool definitions are pinned: a contract change shows up in review like a code change.

Regenerate after an intended change with `OPSGATE_UPDATE_SNAPSHOTS=1 make test`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from opsgate.server import App

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "tools.json"
# Agents pay for every tool definition in every turn: ~3.5 KB a tool on average, schemas included
# (workload_status and k8s_events added ~9 KB, incident_triage ~6 KB, alerts_list and alert_silence ~6 KB).
TOOLS_LIST_BUDGET_BYTES = 62_000


async def _definitions(make_app: Callable[..., App]) -> list[dict[str, object]]:
    app = make_app(("all",))
    tools = app.gate.list_tools().tools
    await app.aclose()
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]


async def test_tool_definitions_match_snapshot(make_app: Callable[..., App]) -> None:
    current = await _definitions(make_app)
    if os.environ.get("OPSGATE_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    pinned = json.loads(SNAPSHOT.read_text())
    assert [t["name"] for t in current] == [t["name"] for t in pinned]
    assert current == pinned, "tool definitions changed: review, then OPSGATE_UPDATE_SNAPSHOTS=1"


async def test_tools_list_stays_within_budget(make_app: Callable[..., App]) -> None:
    size = len(json.dumps(await _definitions(make_app), separators=(",", ":")))
    assert size <= TOOLS_LIST_BUDGET_BYTES, f"tools/list is {size} bytes, budget {TOOLS_LIST_BUDGET_BYTES}"
