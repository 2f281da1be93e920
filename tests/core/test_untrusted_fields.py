"""Provenance by field path: every tool names, in `items[].field` notation, the fields of its output that
hold text from the monitored system (its results carry them in `notes.untrusted_fields`). Never "*": a
model reading only `structuredContent` must learn *which* fields are data, not instructions.

Checked over every registered tool (the app built with every capability): each declared path exists in
the tool's output schema, and each tool names at least the fields known to hold monitored-system text
(a new tool must be added to EXPECTED, a deliberate decision), including every field whose schema
description says it is such text."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from opsgate.contracts import Contract, ToolOutput
from opsgate.server import App

# Per tool, the fields that certainly hold text from the monitored system (the contract may name more).
EXPECTED: dict[str, set[str]] = {
    "runbook_search": {"items[].title", "items[].cited.excerpt"},
    "runbook_fetch": {"body"},
    "logs_query": {"items[].message"},
    "logs_patterns": {"items[].template", "items[].sample"},
    "metrics_query": {"items[].labels"},
    "metrics_anomalies": {"items[].series"},
    "metrics_compare": {"items[].series"},
    "rollout_history": {"items[].change_cause", "items[].images"},
    "rollout_status": {"message", "conditions[].message", "images"},
    "changes_recent": {"items[].change_cause", "items[].images"},
    "rollback_deployment": {
        "images_before",
        "images_after",
        "env_changes[].before",
        "env_changes[].after",
        "server_dry_run.message",
        "rollout.conditions[].message",
    },
    "workload_status": {
        "summary",
        "conditions[].message",
        "revisions[].change_cause",
        "revisions[].containers[].image",
        "pods[].containers[].message",
    },
    "k8s_events": {"items[].message", "items[].reason"},
    "alerts_list": {
        "items[].labels",
        "items[].summary",
        "items[].description",
        "items[].runbook_url",
        "next_step",
    },
    "alert_silence": {"matched"},
    "incident_triage": {
        "summary",
        "items[].explanation",
        "items[].supporting",
        "items[].contradicting",
        "items[].change.change_cause",
        "items[].change.image_diff",
        "items[].new_templates",
        "next_step.sentence",
        "evidence_missing",
    },
}

# A field whose description says so holds monitored-system text and must be named.
_MARKED = re.compile(r"monitored system|not instructions", re.IGNORECASE)


def _deref(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref`s and `anyOf [X, null]` to the one schema a value of this field has."""
    while True:
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
            continue
        options = [o for o in node.get("anyOf", []) if o != {"type": "null"}]
        if len(options) == 1:
            node = options[0]
            continue
        return node


def resolve(schema: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The schema of `path` (`a.b[].c`) in the output schema, or None when it names nothing there."""
    node = schema
    for segment in path.split("."):
        name, arrays = segment.rstrip("[]"), segment.count("[]")
        if segment != name + "[]" * arrays or not name:
            return None
        node = _deref(schema, node)
        properties = node.get("properties")
        if not isinstance(properties, dict) or name not in properties:
            return None
        node = properties[name]
        for _ in range(arrays):
            node = _deref(schema, node)
            if node.get("type") != "array" or "items" not in node:
                return None
            node = node["items"]
    return _deref(schema, node)


def described_paths(schema: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Every (path, description) of the output schema's fields, through nested objects and arrays."""

    def walk(node: dict[str, Any], prefix: str, depth: int) -> Iterator[tuple[str, str]]:
        node = _deref(schema, node)
        for name, sub in (node.get("properties") or {}).items():
            path = f"{prefix}{name}"
            if isinstance(sub, dict) and isinstance(sub.get("description"), str):
                yield path, sub["description"]
            inner = _deref(schema, sub)
            suffix = ""
            while inner.get("type") == "array" and isinstance(inner.get("items"), dict):
                suffix += "[]"
                inner = _deref(schema, inner["items"])
            if depth < 6 and "properties" in inner:
                yield from walk(inner, f"{path}{suffix}.", depth + 1)

    yield from walk(schema, "", 0)


def _covered(path: str, declared: list[str]) -> bool:
    return any(path == d or path.startswith(d + ".") or path.startswith(d + "[]") for d in declared)


@pytest.fixture
async def every_tool(make_app: Callable[..., App]) -> AsyncIterator[dict[str, Contract[Any, Any]]]:
    app = make_app(("all",))
    try:
        yield dict(app.gate.contracts)
    finally:
        await app.aclose()


def test_every_registered_tool_is_in_the_table(every_tool: dict[str, Contract[Any, Any]]) -> None:
    assert set(every_tool) == set(EXPECTED), "a tool was added or removed: decide which of its fields are untrusted"


def test_no_tool_says_star_and_every_declared_path_is_in_its_output_schema(
    every_tool: dict[str, Contract[Any, Any]],
) -> None:
    for name, contract in every_tool.items():
        declared = contract.untrusted
        assert "*" not in declared, f"{name}: name the fields, not '*'"
        assert len(declared) == len(set(declared)), f"{name}: a path is declared twice"
        schema = contract.output_schema()
        missing = [p for p in declared if resolve(schema, p) is None]
        assert not missing, f"{name}: {missing} are not fields of its output schema"


def test_tools_with_monitored_system_text_name_those_fields(every_tool: dict[str, Contract[Any, Any]]) -> None:
    for name, contract in every_tool.items():
        declared = contract.untrusted
        absent = sorted(EXPECTED[name] - set(declared))
        assert not absent, f"{name}: {absent} hold monitored-system text but are not declared untrusted"
        marked = [
            p
            for p, text in described_paths(contract.output_schema())
            if p not in ("notes", "untrusted_fields") and _MARKED.search(text)  # these two list paths, not text
        ]
        unnamed = [p for p in marked if not _covered(p, declared)]
        assert not unnamed, f"{name}: {unnamed} say they hold monitored-system text but are not declared"


def test_untrusted_output_without_named_fields_is_refused() -> None:
    class Out(ToolOutput):
        message: str

    async def handler(args: Any, ctx: Any) -> Out:
        return Out(message="x")

    common: dict[str, Any] = {
        "name": "demo_read",
        "capability": "demo",
        "purpose": "demo",
        "input_model": ToolOutput,
        "output_model": Out,
        "scope": "read",
        "risk": "low",
        "handler": handler,
    }
    with pytest.raises(ValueError, match="untrusted"):
        Contract(**common, untrusted_output=True)
    assert Contract(**common, untrusted_output=True, untrusted_fields=("message",)).untrusted == ["message"]


def test_the_path_resolver_finds_nested_fields_and_refuses_others(every_tool: dict[str, Contract[Any, Any]]) -> None:
    status = every_tool["workload_status"].output_schema()
    assert resolve(status, "pods[].containers[].message") is not None
    assert resolve(status, "pods[].containers.message") is None
    assert resolve(status, "pods[].nope") is None
    assert resolve(status, "summary[]") is None
    paths = dict(described_paths(status))
    assert "pods[].containers[].message" in paths
