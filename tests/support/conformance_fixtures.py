"""Test-only contracts for the official MCP conformance suite (`@modelcontextprotocol/conformance`).

The suite calls fixture tools, resources and prompts by name (`test_simple_text`, `test://static-text`,
`test_simple_prompt`, ...). Here the tools are opsgate contracts and the resources a ResourceProvider,
so every suite call passes the same gate, policy, audit and transport as a production tool; the suite
then proves our stack rather than a bare SDK server. Prompts, completion and logging levels are not
gated by opsgate (no tool runs); they are registered on the SDK server and reach it through the gate
middleware's pass-through.

Never part of `serve all`; served only by tests/conformance/serve_fixtures.py.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import wave
from collections.abc import Sequence
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import (
    AudioContent,
    Completion,
    CompletionArgument,
    CompletionContext,
    ContentBlock,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    EmbeddedResource,
    ImageContent,
    InputRequest,
    InputRequiredResult,
    ListRootsRequest,
    ListRootsResult,
    PromptReference,
    ResourceTemplateReference,
    SamplingMessage,
    SetLevelRequestParams,
    SubscribeRequestParams,
    TextContent,
    TextResourceContents,
)
from pydantic import Field, ValidationError

from opsgate.contracts import Capability, Contract, ResourceEntry, ResourceProvider, ToolError, ToolInput, ToolOutput
from opsgate.gate import CallContext

# A 1x1 red PNG.
PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="


def _wav_base64() -> str:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(b"\x80" * 80)
    return base64.b64encode(buffer.getvalue()).decode()


WAV_BASE64 = _wav_base64()


class NoArgs(ToolInput):
    pass


class PromptArgs(ToolInput):
    prompt: str = Field(description="The prompt to send to the LLM")


class MessageArgs(ToolInput):
    message: str = Field(description="The message to show the user")


class Text(ToolOutput):
    text: str


def _text(out: Text) -> list[ContentBlock]:
    return [TextContent(type="text", text=out.text)]


def _image(out: Text) -> list[ContentBlock]:
    return [ImageContent(type="image", data=PNG_BASE64, mime_type="image/png")]


def _audio(out: Text) -> list[ContentBlock]:
    return [AudioContent(type="audio", data=WAV_BASE64, mime_type="audio/wav")]


def _embedded(out: Text) -> list[ContentBlock]:
    resource = TextResourceContents(uri="test://embedded-resource", mime_type="text/plain", text=out.text)
    return [EmbeddedResource(type="resource", resource=resource)]


def _mixed(out: Text) -> list[ContentBlock]:
    resource = TextResourceContents(
        uri="test://mixed-content-resource",
        mime_type="application/json",
        text=json.dumps({"test": "data", "value": 123}),
    )
    return [
        TextContent(type="text", text=out.text),
        ImageContent(type="image", data=PNG_BASE64, mime_type="image/png"),
        EmbeddedResource(type="resource", resource=resource),
    ]


def _session_ctx(ctx: CallContext) -> ServerRequestContext[Any, Any]:
    if ctx.mcp is None:
        raise ToolError("this tool needs an MCP session")
    return ctx.mcp


async def _simple_text(args: NoArgs, ctx: CallContext) -> Text:
    return Text(text="This is a simple text response for testing.")


async def _constant_embedded(args: NoArgs, ctx: CallContext) -> Text:
    return Text(text="This is an embedded resource content.")


async def _constant_mixed(args: NoArgs, ctx: CallContext) -> Text:
    return Text(text="Multiple content types test:")


async def _media(args: NoArgs, ctx: CallContext) -> Text:
    return Text(text="media")


async def _with_logging(args: NoArgs, ctx: CallContext) -> Text:
    mcp = _session_ctx(ctx)
    for i, line in enumerate(["Tool execution started", "Tool processing data", "Tool execution completed"]):
        if i:
            await asyncio.sleep(0.05)
        await mcp.session.send_log_message("info", line, logger="conformance", related_request_id=mcp.request_id)
    return Text(text="Tool with logging executed successfully")


async def _with_progress(args: NoArgs, ctx: CallContext) -> Text:
    for i, value in enumerate((0, 50, 100)):
        if i:
            await asyncio.sleep(0.05)
        await ctx.progress(value, 100, f"{value}%")
    return Text(text="Tool with progress executed successfully")


async def _error(args: NoArgs, ctx: CallContext) -> Text:
    raise ToolError("This tool intentionally returns an error for testing")


async def _sampling(args: PromptArgs, ctx: CallContext) -> Text:
    mcp = _session_ctx(ctx)
    result = await mcp.session.create_message(
        [SamplingMessage(role="user", content=TextContent(type="text", text=args.prompt))],
        max_tokens=100,
        related_request_id=mcp.request_id,
    )
    content = result.content
    reply = content.text if isinstance(content, TextContent) else str(content)
    return Text(text=f"LLM response: {reply}")


async def _elicitation(args: MessageArgs, ctx: CallContext) -> Text:
    mcp = _session_ctx(ctx)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"},
        },
        "required": ["username", "email"],
    }
    result = await mcp.session.elicit(args.message, schema, related_request_id=mcp.request_id)
    return Text(text=f"User response: action={result.action}, content={json.dumps(result.content)}")


async def _elicitation_defaults(args: NoArgs, ctx: CallContext) -> Text:
    mcp = _session_ctx(ctx)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "default": "John Doe"},
            "age": {"type": "integer", "default": 30},
            "score": {"type": "number", "default": 95.5},
            "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
            "verified": {"type": "boolean", "default": True},
        },
    }
    result = await mcp.session.elicit("Please review your profile", schema, related_request_id=mcp.request_id)
    return Text(text=f"Elicitation completed: action={result.action}, content={json.dumps(result.content)}")


async def _elicitation_enums(args: NoArgs, ctx: CallContext) -> Text:
    mcp = _session_ctx(ctx)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
            "titledSingle": {
                "type": "string",
                "oneOf": [
                    {"const": "value1", "title": "First Option"},
                    {"const": "value2", "title": "Second Option"},
                    {"const": "value3", "title": "Third Option"},
                ],
            },
            "legacyEnum": {
                "type": "string",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"],
            },
            "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
            "titledMulti": {
                "type": "array",
                "items": {
                    "anyOf": [
                        {"const": "value1", "title": "First Choice"},
                        {"const": "value2", "title": "Second Choice"},
                        {"const": "value3", "title": "Third Choice"},
                    ]
                },
            },
        },
    }
    result = await mcp.session.elicit("Pick options", schema, related_request_id=mcp.request_id)
    return Text(text=f"Elicitation completed: action={result.action}, content={json.dumps(result.content)}")


# -- multi round trip (2026-07-28 InputRequiredResult) ---------------------------------------------
# A handler returns an InputRequiredResult to ask the client; the retry round carries the answers in
# `inputResponses` and the handler's own `requestState` (the gate unwraps its round envelope and the
# SDK's boundary has verified the seal). Answers are validated: a malformed one is asked for again.


def _round(ctx: CallContext) -> tuple[dict[str, Any], str | None]:
    params = _session_ctx(ctx).params or {}
    responses, state = params.get("inputResponses"), params.get("requestState")
    return (responses if isinstance(responses, dict) else {}), (state if isinstance(state, str) else None)


def _elicit(message: str, field_name: str, kind: str = "string") -> ElicitRequest:
    schema = {"type": "object", "properties": {field_name: {"type": kind}}, "required": [field_name]}
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def _sample(prompt: str, max_tokens: int) -> CreateMessageRequest:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=prompt))
    return CreateMessageRequest(params=CreateMessageRequestParams(messages=[message], max_tokens=max_tokens))


def _answer(responses: dict[str, Any], key: str, field_name: str) -> Any:
    """The accepted elicitation's `field_name`, or None when missing, declined or malformed."""
    try:
        result = ElicitResult.model_validate(responses.get(key))
    except ValidationError:
        return None
    return result.content.get(field_name) if result.action == "accept" and result.content else None


def _sampled(responses: dict[str, Any], key: str) -> str | None:
    try:
        content = CreateMessageResult.model_validate(responses.get(key)).content
    except ValidationError:
        return None
    return content.text if isinstance(content, TextContent) else None


def _roots(responses: dict[str, Any], key: str) -> list[str] | None:
    try:
        return [str(root.uri) for root in ListRootsResult.model_validate(responses.get(key)).roots]
    except ValidationError:
        return None


def _ask(requests: dict[str, InputRequest], state: str | None = None) -> InputRequiredResult:
    return InputRequiredResult(input_requests=requests, request_state=state)


async def _irr_elicitation(args: NoArgs, ctx: CallContext) -> Text | InputRequiredResult:
    responses, _ = _round(ctx)
    name = _answer(responses, "user_name", "name")
    if not isinstance(name, str):
        return _ask({"user_name": _elicit("What is your name?", "name")})
    return Text(text=f"Hello, {name}!")


async def _irr_sampling(args: NoArgs, ctx: CallContext) -> Text | InputRequiredResult:
    responses, _ = _round(ctx)
    reply = _sampled(responses, "capital_question")
    if reply is None:
        return _ask({"capital_question": _sample("What is the capital of France?", 100)})
    return Text(text=f"LLM said: {reply}")


async def _irr_list_roots(args: NoArgs, ctx: CallContext) -> Text | InputRequiredResult:
    responses, _ = _round(ctx)
    roots = _roots(responses, "client_roots")
    if roots is None:
        return _ask({"client_roots": ListRootsRequest()})
    return Text(text=f"Client roots: {', '.join(roots) or 'none'}")


async def _irr_request_state(args: NoArgs, ctx: CallContext) -> Text | InputRequiredResult:
    responses, state = _round(ctx)
    ok = _answer(responses, "confirm", "ok")
    if state != "awaiting-confirm" or not isinstance(ok, bool):
        return _ask({"confirm": _elicit("Please confirm", "ok", "boolean")}, "awaiting-confirm")
    return Text(text=f"state-ok: confirmed={ok}")


async def _irr_tampered_state(args: NoArgs, ctx: CallContext) -> Text | InputRequiredResult:
    responses, state = _round(ctx)
    if state != "integrity-protected" or not isinstance(_answer(responses, "confirm", "ok"), bool):
        return _ask({"confirm": _elicit("Please confirm", "ok", "boolean")}, "integrity-protected")
    return Text(text="state verified")


async def _irr_multiple(args: NoArgs, ctx: CallContext) -> Text | InputRequiredResult:
    responses, state = _round(ctx)
    name = _answer(responses, "user_name", "name")
    greeting = _sampled(responses, "greeting")
    roots = _roots(responses, "client_roots")
    if state != "multiple-inputs" or not isinstance(name, str) or greeting is None or roots is None:
        requests: dict[str, InputRequest] = {
            "user_name": _elicit("What is your name?", "name"),
            "greeting": _sample("Generate a greeting", 50),
            "client_roots": ListRootsRequest(),
        }
        return _ask(requests, "multiple-inputs")
    return Text(text=f"{greeting} {name} ({len(roots)} root(s))")


async def _irr_multi_round(args: NoArgs, ctx: CallContext) -> Text | InputRequiredResult:
    responses, state = _round(ctx)
    step1 = _ask({"step1": _elicit("Step 1: What is your name?", "name")}, json.dumps({"step": 1}))
    try:
        progress = json.loads(state) if state else {}
    except ValueError:
        return step1
    if progress.get("step") == 1 and isinstance(name := _answer(responses, "step1", "name"), str):
        question = _elicit("Step 2: What is your favorite color?", "color")
        return _ask({"step2": question}, json.dumps({"step": 2, "name": name}))
    if progress.get("step") == 2 and isinstance(color := _answer(responses, "step2", "color"), str):
        return Text(text=f"{progress.get('name')} likes {color}")
    return step1


async def _irr_capabilities(args: NoArgs, ctx: CallContext) -> Text | InputRequiredResult:
    responses, _ = _round(ctx)
    declared = _session_ctx(ctx).session.client_capabilities
    requests: dict[str, InputRequest] = {}
    if declared is not None and declared.elicitation is not None and _answer(responses, "user_name", "name") is None:
        requests["user_name"] = _elicit("What is your name?", "name")
    if declared is not None and declared.sampling is not None and _sampled(responses, "greeting") is None:
        requests["greeting"] = _sample("Generate a greeting", 50)
    if declared is not None and declared.roots is not None and _roots(responses, "client_roots") is None:
        requests["client_roots"] = ListRootsRequest()
    return _ask(requests) if requests else Text(text="All declared inputs answered.")


async def _missing_capability(args: NoArgs, ctx: CallContext) -> Text | InputRequiredResult:
    # Always needs sampling: the gate answers -32021 when the client did not declare it.
    reply = _sampled(_round(ctx)[0], "summary")
    if reply is None:
        return _ask({"summary": _sample("Summarize the incident", 50)})
    return Text(text=f"LLM said: {reply}")


def _contract(name: str, purpose: str, handler: Any, **kw: Any) -> Contract[Any, Any]:
    return Contract(
        name=name,
        capability="test",
        purpose=purpose,
        input_model=kw.pop("input_model", NoArgs),
        output_model=Text,
        scope="read",
        risk="low",
        handler=handler,
        summarize=lambda out: str(out.text),
        content=kw.pop("content", _text),
        **kw,
    )


def contracts() -> list[Contract[Any, Any]]:
    return [
        _contract("test_simple_text", "Returns simple text.", _simple_text),
        _contract("test_image_content", "Returns an image.", _media, content=_image),
        _contract("test_audio_content", "Returns audio.", _media, content=_audio),
        _contract("test_embedded_resource", "Returns an embedded resource.", _constant_embedded, content=_embedded),
        _contract("test_multiple_content_types", "Returns mixed content.", _constant_mixed, content=_mixed),
        _contract("test_tool_with_logging", "Sends log messages.", _with_logging),
        _contract("test_tool_with_progress", "Reports progress.", _with_progress),
        _contract("test_error_handling", "Always fails.", _error),
        _contract("test_sampling", "Asks the client's LLM.", _sampling, input_model=PromptArgs),
        _contract("test_elicitation", "Asks the user.", _elicitation, input_model=MessageArgs),
        _contract("test_elicitation_sep1034_defaults", "Elicitation with defaults.", _elicitation_defaults),
        _contract("test_elicitation_sep1330_enums", "Elicitation with enums.", _elicitation_enums),
        _contract("test_input_required_result_elicitation", "Asks a name (multi round).", _irr_elicitation),
        _contract("test_input_required_result_sampling", "Asks the LLM (multi round).", _irr_sampling),
        _contract("test_input_required_result_list_roots", "Asks for roots (multi round).", _irr_list_roots),
        _contract("test_input_required_result_request_state", "Round-trips state.", _irr_request_state),
        _contract("test_input_required_result_multiple_inputs", "Asks three inputs at once.", _irr_multiple),
        _contract("test_input_required_result_multi_round", "Asks in two rounds.", _irr_multi_round),
        _contract("test_input_required_result_tampered_state", "Sealed state.", _irr_tampered_state),
        _contract("test_input_required_result_capabilities", "Asks only declared inputs.", _irr_capabilities),
        _contract("test_missing_capability", "Needs the sampling capability.", _missing_capability),
    ]


class FixtureResources(ResourceProvider):
    """`test://` resources; reads pass the gate as `test_resource_read`."""

    capability = "test"

    async def list(self) -> Sequence[ResourceEntry]:
        return [
            ResourceEntry("test://static-text", "static-text", None, "A static text resource", "text/plain"),
            ResourceEntry("test://static-binary", "static-binary", None, "A static binary resource", "image/png"),
        ]

    async def read(self, uri: str) -> str | bytes:
        if uri == "test://static-text":
            return "This is the content of the static text resource."
        if uri == "test://static-binary":
            return base64.b64decode(PNG_BASE64)
        prefix, suffix = "test://template/", "/data"
        if uri.startswith(prefix) and uri.endswith(suffix) and "/" not in uri[len(prefix) : -len(suffix)]:
            item = uri[len(prefix) : -len(suffix)]
            return json.dumps({"id": item, "templateTest": True, "data": f"Data for ID: {item}"})
        raise ToolError(f"unknown resource {uri!r}")


def build() -> Capability:
    return Capability(name="test", contracts=contracts(), resources=FixtureResources())


def register_ungated(server: MCPServer) -> None:
    """Prompts, a resource template listing, completion and logging level on the SDK server itself."""

    @server.prompt(name="test_simple_prompt", description="A simple prompt")
    def simple_prompt() -> str:
        return "This is a simple prompt for testing."

    @server.prompt(name="test_prompt_with_arguments", description="A prompt with arguments")
    def prompt_with_arguments(arg1: str, arg2: str) -> str:
        return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"

    @server.prompt(name="test_prompt_with_embedded_resource", description="A prompt with an embedded resource")
    def prompt_with_embedded_resource(resourceUri: str) -> list[dict[str, Any]]:
        resource = {"uri": resourceUri, "mimeType": "text/plain", "text": "Embedded resource content for testing."}
        return [
            {"role": "user", "content": {"type": "resource", "resource": resource}},
            {"role": "user", "content": {"type": "text", "text": "Please process the embedded resource above."}},
        ]

    @server.prompt(name="test_prompt_with_image", description="A prompt with an image")
    def prompt_with_image() -> list[dict[str, Any]]:
        return [
            {"role": "user", "content": {"type": "image", "data": PNG_BASE64, "mimeType": "image/png"}},
            {"role": "user", "content": {"type": "text", "text": "Please analyze the image above."}},
        ]

    @server.prompt(name="test_input_required_result_prompt", description="A prompt that asks for context first")
    def input_required_prompt(ctx: Context) -> str | InputRequiredResult:
        answer = (ctx.input_responses or {}).get("user_context")
        content = answer.content if isinstance(answer, ElicitResult) and answer.action == "accept" else None
        context = content.get("context") if content else None
        if not isinstance(context, str):
            question = _elicit("What context should the prompt use?", "context")
            return InputRequiredResult(input_requests={"user_context": question})
        return f"Use this context: {context}"

    @server.resource("test://template/{id}/data", name="template-data", description="A templated resource")
    def template_data(id: str) -> str:
        # Listed here for resources/templates/list; reads are answered by the gate's provider above.
        return ""

    @server.completion()  # type: ignore[untyped-decorator,no-untyped-call]
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion:
        return Completion(values=[], total=0, has_more=False)

    async def set_level(ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> dict[str, Any]:
        return {}

    async def subscription(ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> dict[str, Any]:
        return {}  # the fixtures never change, so there is nothing to notify about

    lowlevel = server._lowlevel_server
    lowlevel.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)
    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, subscription)
    lowlevel.add_request_handler("resources/unsubscribe", SubscribeRequestParams, subscription)
