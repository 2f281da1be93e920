"""Resource reads through the gate: binary blobs, text redaction, and the SEP-2164 not-found error."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import BlobResourceContents, TextResourceContents

from opsgate.caller import Caller
from opsgate.contracts import Capability, ResourceEntry, ResourceProvider, ToolError
from opsgate.server import App

SECRET_LINE = "postgres://app:s3cr3t-Passw0rd@db/app"
# Bytes that happen to spell a secret: a blob is served as it is, never redacted.
BLOB = b"\x89PNG\r\n\x1a\n" + SECRET_LINE.encode() + bytes(range(256))


class Blobs(ResourceProvider):
    capability = "blobs"

    async def list(self) -> Sequence[ResourceEntry]:
        return [
            ResourceEntry("blobs://logo", "logo", None, "a binary resource", "image/png"),
            ResourceEntry("blobs://note", "note", None, "a text resource", "text/plain"),
        ]

    async def read(self, uri: str) -> str | bytes:
        if uri == "blobs://logo":
            return BLOB
        if uri == "blobs://note":
            return f"connect with {SECRET_LINE}"
        if uri == "blobs://unlisted":
            return b"\x00\x01"
        raise ToolError(f"no blob at {uri!r}")


@pytest.fixture
async def app(make_app: Callable[..., App]) -> App:
    return make_app((), capabilities=[Capability(name="blobs", contracts=[], resources=Blobs())])


async def test_bytes_are_served_as_a_base64_blob_with_the_listed_mime_type(app: App, wire_mode: str) -> None:
    async with Client(app.server, mode=wire_mode) as client:
        read = await client.read_resource("blobs://logo")
        unlisted = await client.read_resource("blobs://unlisted")
    blob = read.contents[0]
    assert isinstance(blob, BlobResourceContents)
    assert blob.mime_type == "image/png" and base64.b64decode(blob.blob) == BLOB  # unredacted
    other = unlisted.contents[0]
    assert isinstance(other, BlobResourceContents) and other.mime_type == "application/octet-stream"
    records = app.gate.audit.find(tool="blobs_resource_read")
    assert [r["outcome"] for r in records] == ["ok", "ok"]
    assert all(r["output_digest"].startswith("sha256:") for r in records)
    await app.aclose()


async def test_text_is_redacted_and_keeps_its_listed_mime_type(app: App, wire_mode: str) -> None:
    async with Client(app.server, mode=wire_mode) as client:
        read = await client.read_resource("blobs://note")
    text = read.contents[0]
    assert isinstance(text, TextResourceContents) and text.mime_type == "text/plain"
    assert "s3cr3t-Passw0rd" not in text.text and "[REDACTED" in text.text
    await app.aclose()


@pytest.mark.parametrize("uri", ["blobs://missing", "nosuchscheme://x"])
async def test_unknown_resource_is_invalid_params_with_the_uri(app: App, wire_mode: str, uri: str) -> None:
    async with Client(app.server, mode=wire_mode) as client:
        with pytest.raises(MCPError) as raised:
            await client.read_resource(uri)
    assert raised.value.code == -32602
    assert raised.value.data == {"uri": uri}
    record = next(r.record for r in app.gate.audit.records() if r.record["args"] == {"uri": uri})
    assert record["outcome"] == "invalid" and "not found" in record["error"]
    await app.aclose()


async def test_policy_denial_stays_a_distinct_error(app: App) -> None:
    anonymous = Caller(subject="anonymous", roles=[], client="test", authenticated=False)
    with pytest.raises(MCPError) as raised:
        await app.gate.read_resource("blobs://logo", anonymous, request_id=None)
    assert raised.value.code == -32003 and raised.value.data is None
    assert "denied by policy" in raised.value.message
    assert app.gate.audit.find(tool="blobs_resource_read")[0]["outcome"] == "denied"
    await app.aclose()
