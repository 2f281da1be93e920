"""What a model pays for the tool definitions, every turn, and what every result tells it.

Token estimate: characters / 4 of the compact JSON of what a model is shown for each tool (name, title,
description, input schema; clients keep the output schema to validate results). tiktoken would need
its encoding files from the network, which the suite must not rely on; for JSON schemas chars/4 is
within about 15% of the tokenizers of current models.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from opsgate.server import App

TOKENS_PER_TOOL_BUDGET = 270
CHARS_PER_TOKEN = 4


def model_view(tool: dict[str, Any]) -> dict[str, Any]:
    return {k: tool[k] for k in ("name", "title", "description", "inputSchema") if k in tool}


def estimated_tokens(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False)) // CHARS_PER_TOKEN


async def _tools(make_app: Callable[..., App]) -> list[dict[str, Any]]:
    app = make_app(("all",))
    try:
        return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in app.gate.list_tools().tools]
    finally:
        await app.aclose()


async def test_tool_definitions_stay_within_the_token_budget(make_app: Callable[..., App]) -> None:
    tools = await _tools(make_app)
    per_tool = {t["name"]: estimated_tokens(model_view(t)) for t in tools}
    average = sum(per_tool.values()) / len(per_tool)
    assert average <= TOKENS_PER_TOOL_BUDGET, f"{average:.0f} tokens per tool on average: {per_tool}"


async def test_input_schemas_carry_no_boilerplate_but_keep_their_meaning(make_app: Callable[..., App]) -> None:
    tools = {t["name"]: t for t in await _tools(make_app)}
    text = json.dumps([t["inputSchema"] for t in tools.values()])
    assert '"maxLength"' not in text and '{"type": "null"}' not in text and '"default": null' not in text
    query = tools["logs_query"]["inputSchema"]["properties"]
    assert query["limit"]["maximum"] == 500 and query["limit"]["default"] == 20
    assert query["min_severity"].get("enum") or query["min_severity"].get("$ref")
    assert "description" in query["since"] and query["since"]["type"] == "string"
    start = tools["metrics_query"]["inputSchema"]["properties"]["start"]
    assert {"type": "string", "format": "date-time"} in start["anyOf"] and {"type": "number"} in start["anyOf"]


async def test_every_output_schema_declares_the_notes_envelope(make_app: Callable[..., App]) -> None:
    for tool in await _tools(make_app):
        schema = tool["outputSchema"]
        assert "notes" in schema["properties"] and "notes" in schema["required"], tool["name"]
        notes = schema["properties"]["notes"]["properties"]
        assert set(notes) == {"untrusted_fields", "capped", "redactions"}
