"""A contract's handler asks the client for input (2026-07-28 InputRequiredResult) through the gate.

In-process with the SDK client, which answers the embedded requests and retries: the rounds are one
logical call in the audit (`continues_call`), the state the client echoes is sealed, a capability the
client did not declare is -32021, and a handshake-era client gets a clear tool error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import mcp_types
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import MCPError

from opsgate.server import App
from tests.support import conformance_fixtures

MODERN = "2026-07-28"


@pytest.fixture
async def app(make_app: Callable[..., App]) -> AsyncIterator[App]:
    built = make_app((), capabilities=[conformance_fixtures.build()])
    yield built
    await built.aclose()


class Answers:
    """Client callbacks that answer every elicitation from `forms` (in order) and record what was asked."""

    def __init__(self, *forms: dict[str, Any]) -> None:
        self.forms = list(forms)
        self.asked: list[str] = []

    async def elicit(self, context: ClientRequestContext, params: mcp_types.ElicitRequestParams) -> Any:
        self.asked.append(params.message)
        return mcp_types.ElicitResult(action="accept", content=self.forms.pop(0))

    async def sample(self, context: ClientRequestContext, params: mcp_types.CreateMessageRequestParams) -> Any:
        self.asked.append("sampling")
        content = mcp_types.TextContent(type="text", text="Paris.")
        return mcp_types.CreateMessageResult(role="assistant", content=content, model="test", stop_reason="endTurn")


def _text(result: mcp_types.CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, mcp_types.TextContent))


async def test_three_rounds_are_one_logical_call_in_the_audit(app: App) -> None:
    answers = Answers({"name": "Alice"}, {"color": "blue"})
    async with Client(app.server, mode=MODERN, elicitation_callback=answers.elicit) as client:
        result = await client.call_tool("test_input_required_result_multi_round", {})
    assert not result.is_error and _text(result) == "Alice likes blue"
    assert answers.asked == ["Step 1: What is your name?", "Step 2: What is your favorite color?"]
    rounds = app.gate.audit.find(tool="test_input_required_result_multi_round")
    rounds.sort(key=lambda r: r["ts"])
    assert [r["outcome"] for r in rounds] == ["input_required", "input_required", "ok"]
    first = rounds[0]["call_id"]
    assert "continues_call" not in rounds[0]
    assert [r["continues_call"] for r in rounds[1:]] == [first, first]
    assert rounds[0]["input_requests"] == {"step1": "elicitation/create"}
    assert app.gate.audit.verify().ok


async def test_the_echoed_state_is_sealed_and_a_tampered_one_is_refused(app: App) -> None:
    async with Client(app.server, mode=MODERN, elicitation_callback=Answers().elicit) as client:
        first = await client.session.call_tool(
            "test_input_required_result_request_state", {}, allow_input_required=True
        )
        assert isinstance(first, mcp_types.InputRequiredResult) and first.request_state
        # Sealed on the wire: neither the handler's state nor the gate's envelope is readable.
        assert "awaiting-confirm" not in first.request_state and "opsgate" not in first.request_state
        answer: mcp_types.InputResponses = {"confirm": mcp_types.ElicitResult(action="accept", content={"ok": True})}
        done = await client.session.call_tool(
            "test_input_required_result_request_state",
            {},
            input_responses=answer,
            request_state=first.request_state,
            allow_input_required=True,
        )
        assert isinstance(done, mcp_types.CallToolResult) and "state-ok" in _text(done)
        with pytest.raises(MCPError) as tampered:
            await client.session.call_tool(
                "test_input_required_result_request_state",
                {},
                input_responses=answer,
                request_state=first.request_state + "-TAMPERED",
                allow_input_required=True,
            )
    assert tampered.value.code == -32602


async def test_an_undeclared_capability_is_a_protocol_error_and_audited(app: App) -> None:
    async with Client(app.server, mode=MODERN) as client:  # declares no sampling
        with pytest.raises(MCPError) as raised:
            await client.call_tool("test_missing_capability", {})
    assert raised.value.code == -32021
    assert raised.value.data == {"requiredCapabilities": {"sampling": {}}}
    record = app.gate.audit.find(tool="test_missing_capability")[0]
    assert record["outcome"] == "invalid" and "sampling" in record["error"]


async def test_a_declared_capability_gets_the_input_request(app: App) -> None:
    answers = Answers()
    async with Client(app.server, mode=MODERN, sampling_callback=answers.sample) as client:
        result = await client.call_tool("test_missing_capability", {})
    assert not result.is_error and _text(result) == "LLM said: Paris."
    assert answers.asked == ["sampling"]


async def test_a_handshake_era_client_gets_a_clear_tool_error(app: App) -> None:
    async with Client(app.server, mode="legacy", elicitation_callback=Answers().elicit) as client:
        result = await client.call_tool("test_input_required_result_elicitation", {})
    assert result.is_error and "InputRequiredResult" in _text(result)
    record = app.gate.audit.find(tool="test_input_required_result_elicitation")[0]
    assert record["outcome"] == "error" and record["input_requests"] == {"user_name": "elicitation/create"}
