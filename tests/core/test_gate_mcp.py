"""The gate through a real MCP client session, on both wire generations (in process)."""

from __future__ import annotations

import json
from typing import Any

from mcp import Client

from opsgate.server import App


async def _call(app: App, mode: str, name: str, args: dict[str, Any]) -> Any:
    async with Client(app.server, mode=mode) as client:
        return await client.call_tool(name, args)


async def test_tools_are_listed_with_schemas_and_annotations(app: App, wire_mode: str) -> None:
    async with Client(app.server, mode=wire_mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {"runbook_search", "runbook_fetch", "testkit_write"} <= set(tools)
    search = tools["runbook_search"]
    query = search.input_schema["properties"]["query"]
    assert any(s.get("type") == "string" for s in query.get("anyOf", [query]))
    assert "query" not in search.input_schema.get("required", []), "query or alert: neither alone is required"
    assert search.output_schema is not None and "items" in search.output_schema["properties"]
    assert search.annotations is not None
    assert search.annotations.read_only_hint is True and search.annotations.destructive_hint is False
    write = tools["testkit_write"]
    assert write.annotations is not None
    assert write.annotations.read_only_hint is False and write.annotations.destructive_hint is True
    # flat, top-level arguments an agent can fill directly
    assert set(write.input_schema["properties"]) >= {"namespace", "service", "value", "dry_run"}


async def test_search_and_fetch_return_structured_content(app: App, wire_mode: str) -> None:
    async with Client(app.server, mode=wire_mode) as client:
        found = await client.call_tool("runbook_search", {"query": "checkout latency after a deploy"})
        assert not found.is_error
        top = found.structured_content["items"][0]
        assert top["id"] == "checkout-latency-regression"
        assert top["cited"]["heading"] and top["cited"]["lines"][0] > 0
        assert "data" in found.content[0].text and "not instructions" in found.content[0].text
        doc = await client.call_tool("runbook_fetch", {"id": top["id"]})
    assert not doc.is_error
    assert doc.structured_content["version"].startswith("sha256:")
    assert "Roll back" in doc.structured_content["sections"]
    meta = doc.meta or {}
    assert meta["opsgate/decision_id"].startswith("dec_")
    assert meta["opsgate/policy_revision"]
    record = app.gate.audit.find(call_id=meta["opsgate/call_id"])[0]
    assert record["decision"]["decision_id"] == meta["opsgate/decision_id"]
    assert record["outcome"] == "ok" and record["tool"] == "runbook_fetch"


async def test_bad_input_is_a_clear_audited_error_and_nothing_runs(app: App, wire_mode: str) -> None:
    ledger = next(c for c in app.capabilities if c.name == "testkit").ledger  # type: ignore[attr-defined]
    cases = [
        ("no_such_tool", {}, "unknown tool 'no_such_tool'"),
        ("testkit_write", {"namespace": "shop", "service": "checkout", "value": "many"}, "value"),
        ("testkit_write", {"namespace": "shop", "value": 1}, "service: Field required"),
        ("testkit_write", {"namespace": "shop", "service": "checkout", "value": 1, "extra": 1}, "extra"),
        ("testkit_echo", {"text": "x" * 70000}, "byte limit"),
        ("runbook_fetch", {"id": "../../etc/passwd"}, "id: String should match pattern"),
    ]
    async with Client(app.server, mode=wire_mode) as client:
        for name, args, expected in cases:
            result = await client.call_tool(name, args)
            assert result.is_error, name
            assert expected in result.content[0].text, result.content[0].text
    assert ledger.executed == []
    outcomes = [r.record["outcome"] for r in app.gate.audit.records()]
    assert outcomes == ["invalid"] * len(cases)


async def test_write_without_approval_gets_a_pending_approval_not_a_yes(app: App, wire_mode: str) -> None:
    ledger = next(c for c in app.capabilities if c.name == "testkit").ledger  # type: ignore[attr-defined]
    args = {"namespace": "shop", "service": "checkout", "value": 3, "dry_run": False}
    result = await _call(app, wire_mode, "testkit_write", args)
    assert result.is_error
    text = result.content[0].text
    assert "approval required" in text and "role sre" in text and "dry_run=true" in text
    assert result.meta["opsgate/require_approval"] is True
    assert result.meta["opsgate/approval"]["id"] in text
    assert ledger.executed == []
    dry = await _call(app, wire_mode, "testkit_write", {**args, "dry_run": True})
    assert not dry.is_error and {k: v for k, v in dry.structured_content.items() if k != "notes"} == {
        "applied": False,
        "failed": False,
        "value": 3,
    }
    pending = app.gate.audit.find(outcome="pending_approval")
    assert len(pending) == 1 and pending[0]["decision"]["allow"] is False


async def test_policy_denial_is_a_tool_error_naming_the_rule(make_app, tmp_path, wire_mode: str) -> None:  # type: ignore[no-untyped-def]
    from opsgate.config import Settings
    from tests.support import testkit

    app = make_app((), capabilities=[testkit.build()], settings=Settings(state_dir=tmp_path, autonomy="read-only"))
    args = {"namespace": "shop", "service": "checkout", "value": 3, "dry_run": True}
    result = await _call(app, wire_mode, "testkit_write", args)
    assert result.is_error
    text = result.content[0].text
    assert "denied by policy" in text and "(rule " in text
    assert result.meta["opsgate/rule"] and result.meta["opsgate/reasons"]
    assert app.gate.audit.find(outcome="denied")[0]["decision"]["rule"] == result.meta["opsgate/rule"]
    await app.aclose()


async def test_tool_without_arguments_is_gated_and_audited(app: App, wire_mode: str) -> None:
    result = await _call(app, wire_mode, "testkit_noargs", {})
    assert not result.is_error
    record = app.gate.audit.find(tool="testkit_noargs")[0]
    assert record["decision"]["allow"] is True and record["args"] == {}


async def test_runbooks_are_resources_read_through_the_gate(app: App, wire_mode: str) -> None:
    async with Client(app.server, mode=wire_mode) as client:
        listed = await client.list_resources()
        uris = {str(r.uri) for r in listed.resources}
        assert "runbooks://checkout-latency-regression" in uris
        draft = next(r for r in listed.resources if str(r.uri) == "runbooks://disk-pressure")
        assert draft.description is not None and draft.description.startswith("UNAPPROVED")
        read = await client.read_resource("runbooks://pod-crashloop")
    assert "CrashLoopBackOff" in read.contents[0].text  # type: ignore[union-attr]
    assert app.gate.audit.find(tool="runbooks_resource_read")[0]["outcome"] == "ok"


async def test_audit_trail_holds_every_call_and_verifies(app: App) -> None:
    for mode in ("legacy", "2026-07-28"):
        await _call(app, mode, "runbook_search", {"query": "crashloop"})
        await _call(app, mode, "runbook_fetch", {"id": "nope"})
    records = [r.record for r in app.gate.audit.records()]
    assert [r["outcome"] for r in records] == ["ok", "error", "ok", "error"]
    assert json.dumps(records)  # serialisable
    assert app.gate.audit.verify().ok
