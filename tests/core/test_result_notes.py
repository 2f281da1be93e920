"""What a model reading only `structuredContent` learns: which fields hold monitored-system text, what
the policy capped, how many secrets were masked; and `limit` is the limit applied. Plus the attacker's
probe: a regex filter must not see what redaction hides from the caller."""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mcp import Client

from opsgate.config import Settings
from opsgate.server import App

BASE = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
SECRET = "hunter2rocks"
WINDOW = {"start": "2026-11-23T03:00:00Z", "end": "2026-11-23T06:00:00Z"}


def _logs_app(make_app: Callable[..., App], tmp_path: Path, lines: int) -> App:
    folder = tmp_path / "logs"
    folder.mkdir()
    with (folder / "checkout.jsonl").open("w") as out:
        for i in range(lines):
            stamp = (BASE + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
            msg = f"db connect failed url=postgres://app:{SECRET}@db:5432/shop attempt {i}"
            out.write(json.dumps({"ts": stamp, "level": "error", "msg": msg}) + "\n")
    section = {"backend": "files", "files": {"sources": [{"path": str(folder / "*")}]}}
    return make_app(("logs",), settings=Settings(state_dir=tmp_path / "state", logs=section))


async def _call(app: App, tool: str, args: dict[str, Any]) -> Any:
    async with Client(app.server, mode="2026-07-28") as client:
        result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    return result.structured_content


async def test_a_policy_cap_is_reported_in_limit_and_in_the_notes(make_app: Callable[..., App], tmp_path: Path) -> None:
    app = _logs_app(make_app, tmp_path, 300)
    try:
        out = await _call(app, "logs_query", {"limit": 500, **WINDOW})
        first = await _call(app, "logs_query", {"limit": 150, **WINDOW})
    finally:
        await app.aclose()
    assert len(out["items"]) == 200 and out["limit"] == 200 and out["truncated"] is True
    assert out["next_cursor"], "the cap is applied before the backend, so the next page continues after it"
    notes = out["notes"]
    assert notes["capped"] == {"items": 200}
    assert notes["redactions"] >= 200 and SECRET not in json.dumps(out)
    assert notes["untrusted_fields"] == ["items[].message", "items[].source"]
    assert first["limit"] == 150 and first["notes"]["capped"] == {}


async def test_metric_labels_and_kubernetes_messages_are_marked_untrusted(make_app: Callable[..., App]) -> None:
    app = make_app(("metrics", "rollback"))
    contracts = app.gate.contracts
    await app.aclose()
    assert "items[].labels" in contracts["metrics_query"].untrusted
    assert "items[].series" in contracts["metrics_anomalies"].untrusted
    assert "items[].series" in contracts["metrics_compare"].untrusted
    assert "conditions[].message" in contracts["rollout_status"].untrusted
    assert "items[].change_cause" in contracts["changes_recent"].untrusted


async def test_a_regex_filter_cannot_recover_a_redacted_secret(make_app: Callable[..., App], tmp_path: Path) -> None:
    """The attacker's probe: guess the masked password's first character and read match / no match.
    Filters see what the caller sees, so every guess gets the same answer (old code: only "h" matched)."""
    app = _logs_app(make_app, tmp_path, 3)
    templates = [
        lambda ch: {"text": f"app:{ch}"},
        lambda ch: {"regex": f"app:{ch}"},
        # the alternation that matches the mask, and the raw secret's prefix
        lambda ch: {"regex": rf"app:(\[REDACTED|{ch})"},
        lambda ch: {"regex": rf"app:({ch}|\[REDACTED)", "text": "app:"},
    ]
    try:
        async with Client(app.server, mode="2026-07-28") as client:
            for template in templates:
                answers = {}
                for ch in string.ascii_lowercase + string.digits:
                    result = await client.call_tool("logs_query", {**template(ch), "limit": 1, **WINDOW})
                    assert not result.is_error, result.content
                    answers[ch] = bool(result.structured_content["items"])
                told = {ch for ch, matched in answers.items() if matched != answers["z"]}
                assert not told, f"{template('?')} tells {sorted(told)} apart"
            seen = await client.call_tool("logs_query", {"regex": "db connect", "limit": 5, **WINDOW})
    finally:
        await app.aclose()
    assert len(seen.structured_content["items"]) == 3  # filters still work on what the caller sees
