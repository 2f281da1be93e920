"""The stdio transport, answering every malformed JSON-RPC line instead of dropping it.

The SDK's stdio transport turns a line it cannot parse into an exception the session only logs, so a
client that sends `params` as a list, a lone UTF-16 surrogate, 5,000 levels of nesting, a batch array,
or a message without `"jsonrpc": "2.0"` waits for an answer that never comes. Here each line is checked
first: a bad request gets a JSON-RPC error response at once (with its id when one can be read, else
null, as JSON-RPC 2.0 says); a bad notification is dropped (notifications get no response); a good
line goes on to the SDK unchanged. Like the SDK's, the transport moves fd 0 and 1 out of the way while
serving (stdin reads EOF, stdout goes to stderr), so stray output cannot corrupt the wire.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, cast

import anyio
import mcp_types as types
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from pydantic import ValidationError

logger = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
MAX_DETAIL = 200
# A `\uD800`-`\uDFFF` escape: the line is read as UTF-8 with errors replaced, so only such an escape can
# put a surrogate into the parsed message (and only then is it re-encoded to find a lone one).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _error(code: int, message: str, request_id: Any = None) -> str:
    body = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message[:MAX_DETAIL]}}
    return json.dumps(body, separators=(",", ":"))


def check_line(line: str) -> tuple[bool, str | None]:
    """(forward to the SDK?, the error response to write now, if any) for one line from the client."""
    if not line.strip():
        return False, None
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return False, _error(PARSE_ERROR, f"Parse error: {detail}")
    request_id = doc.get("id") if isinstance(doc, dict) else None
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        request_id = None
    if _SURROGATE_ESCAPE.search(line) is not None:  # the only way a surrogate gets into a decoded line
        try:
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return False, _error(PARSE_ERROR, "Parse error: the message holds a lone UTF-16 surrogate", request_id)
    if isinstance(doc, list):
        return False, _error(INVALID_REQUEST, "Invalid Request: batch arrays are not supported; one message per line")
    if not isinstance(doc, dict):
        return False, _error(INVALID_REQUEST, "Invalid Request: a message is a JSON object")
    is_notification = "method" in doc and "id" not in doc
    problem: tuple[int, str] | None = None
    if doc.get("jsonrpc") != "2.0":
        problem = INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"'
    elif "method" in doc and not isinstance(doc["method"], str):
        problem = INVALID_REQUEST, 'Invalid Request: "method" must be a string'
    elif "method" in doc and "params" in doc and not isinstance(doc["params"], dict):
        problem = INVALID_PARAMS, 'Invalid params: "params" must be an object'
    elif "id" in doc and request_id is None and "method" in doc:
        problem = INVALID_REQUEST, 'Invalid Request: "id" must be a string or an integer'
    if problem is None:
        try:
            types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            code = PARSE_ERROR if first["type"] == "json_invalid" else INVALID_REQUEST
            problem = code, f"{'Parse error' if code == PARSE_ERROR else 'Invalid Request'}: {first['msg']}"
    if problem is None:
        return True, None
    if is_notification:
        logger.warning("dropped a malformed notification: %s", problem[1])
        return False, None
    return False, _error(*problem, request_id)


class _Wire:
    """The shared stdout: whole lines, one writer at a time (the SDK's writer and our error answers)."""

    def __init__(self, out: anyio.AsyncFile[str]) -> None:
        self.out = out
        self.lock = anyio.Lock()

    async def write(self, text: str) -> None:
        async with self.lock:
            await self.out.write(text)
            await self.out.flush()

    async def flush(self) -> None:
        return None


class _CheckedLines:
    """The client's lines as the SDK reads them (`async for line in stdin`), malformed ones answered."""

    def __init__(self, source: anyio.AsyncFile[str], wire: _Wire) -> None:
        self.source = source
        self.wire = wire

    def __aiter__(self) -> _CheckedLines:
        return self

    async def __anext__(self) -> str:
        while True:
            line = await self.source.readline()
            if not line:
                raise StopAsyncIteration
            forward, answer = check_line(line)
            if answer is not None:
                await self.wire.write(answer + "\n")
            if forward:
                return line


@contextmanager
def _claimed_stdio() -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """Private duplicates of fd 0 and 1 for the wire; fd 0 reads /dev/null and fd 1 writes to stderr."""
    wire_in, wire_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(devnull, 0)
        os.dup2(2, 1)
    finally:
        os.close(devnull)
    try:
        # closefd=False: a worker thread may still block on the descriptor after the transport exits
        yield os.fdopen(wire_in, "rb", closefd=False), os.fdopen(wire_out, "wb", closefd=False)
    finally:
        os.dup2(wire_in, 0)
        os.dup2(wire_out, 1)


async def serve_stdio(server: MCPServer) -> None:
    """Serve `server` over this process's stdin/stdout until the client closes stdin."""
    with _claimed_stdio() as (wire_in, wire_out):
        source = anyio.wrap_file(io.TextIOWrapper(wire_in, encoding="utf-8", errors="replace"))
        wire = _Wire(anyio.wrap_file(io.TextIOWrapper(wire_out, encoding="utf-8")))
        lines = _CheckedLines(source, wire)
        async with stdio_server(stdin=cast(Any, lines), stdout=cast(Any, wire)) as (read_stream, write_stream):
            lowlevel = server._lowlevel_server
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
