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
from mcp.server.mcpserver import MCPServer
from mcp_types import (
    AudioContent,
    Completion,
    CompletionArgument,
    CompletionContext,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    PromptReference,
    ResourceTemplateReference,
    SamplingMessage,
    SetLevelRequestParams,
    SubscribeRequestParams,
    TextContent,
    TextResourceContents,
)
from pydantic import Field

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
    ]


class FixtureResources(ResourceProvider):
    """`test://` resources; reads pass the gate as `test_resource_read`."""

    capability = "test"

    async def list(self) -> Sequence[ResourceEntry]:
        return [
            ResourceEntry("test://static-text", "static-text", None, "A static text resource", "text/plain"),
            ResourceEntry("test://static-binary", "static-binary", None, "A static binary resource", "image/png"),
        ]

    async def read(self, uri: str) -> str:
        if uri == "test://static-text":
            return "This is the content of the static text resource."
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
