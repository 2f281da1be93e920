"""Tool definitions are pinned: a contract change shows up in review like a code change.

Regenerate after an intended change with `OPSGATE_UPDATE_SNAPSHOTS=1 make test`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from opsgate.server import App

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "tools.json"
TOOLS_LIST_BUDGET_BYTES = 24_000


def _definitions(app: App) -> list[dict[str, object]]:
    tools = app.gate.list_tools().tools
    return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]


def test_tool_definitions_match_snapshot(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(("all",))
    current = _definitions(app)
    if os.environ.get("OPSGATE_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    pinned = json.loads(SNAPSHOT.read_text())
    assert [t["name"] for t in current] == [t["name"] for t in pinned]
    assert current == pinned, "tool definitions changed: review, then OPSGATE_UPDATE_SNAPSHOTS=1"


def test_tools_list_stays_within_budget(make_app) -> None:  # type: ignore[no-untyped-def]
    size = len(json.dumps(_definitions(make_app(("all",))), separators=(",", ":")))
    assert size <= TOOLS_LIST_BUDGET_BYTES, f"tools/list is {size} bytes, budget {TOOLS_LIST_BUDGET_BYTES}"
