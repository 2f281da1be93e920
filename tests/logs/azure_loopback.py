"""A loopback Log Analytics endpoint: `POST /v1/workspaces/{id}/query` answering in the Log Analytics
response format (`{"tables": [{"name", "columns": [{"name", "type"}], "rows": [...]}]}`), partial
results (`error` with code PartialError alongside the tables) and errors as the service returns
them. It evaluates the subset of KQL opsgate emits; anything else is a syntax error (HTTP 400
BadArgumentError/SyntaxError), so an injected operator cannot pass unnoticed."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import re2

from tests.support.loopback import LoopbackServer, Reply, json_reply

_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\\n]|\\.)*")|(?P<dt>datetime\([^)]*\))|(?P<num>\d+\b)'
    r"|(?P<op>\.\.|==|!=|in~|!in~|!in|\||\(|\)|,|\[|\])|(?P<id>[A-Za-z_][A-Za-z0-9_.]*))"
)


class KqlSyntaxError(ValueError):
    pass


def _unescape(literal: str) -> str:
    body, out, i = literal[1:-1], [], 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}
    while i < len(body):
        if body[i] == "\\":
            nxt = body[i + 1]
            if nxt == "u":
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            if nxt not in escapes:
                raise KqlSyntaxError(f"invalid escape \\{nxt}")
            out.append(escapes[nxt])
            i += 2
            continue
        out.append(body[i])
        i += 1
    return "".join(out)


def tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    i = 0
    while i < len(text.rstrip()):
        m = _TOKEN.match(text, i)
        if not m or m.end() == i:
            raise KqlSyntaxError(f"Query could not be parsed at '{text[i : i + 10].strip()}'")
        kind = m.lastgroup or ""
        value: Any = m.group(kind)
        if kind == "str":
            value = _unescape(value)
        elif kind == "dt":
            value = datetime.fromisoformat(value[9:-1])
        elif kind == "num":
            value = int(value)
        tokens.append((kind, value))
        i = m.end()
    return tokens


@dataclass
class Table:
    columns: list[tuple[str, str]]
    rows: list[dict[str, Any]] = field(default_factory=list)


class _Cursor:
    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.tokens, self.i = tokens, 0

    def take(self, kind: str | None = None, value: Any = None) -> Any:
        if self.i >= len(self.tokens):
            raise KqlSyntaxError("Query could not be parsed at end of input")
        k, v = self.tokens[self.i]
        if (kind and k != kind) or (value is not None and v != value):
            raise KqlSyntaxError(f"Query could not be parsed at '{v}'")
        self.i += 1
        return v

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def done(self) -> bool:
        return self.i >= len(self.tokens)


def _value_expr(c: _Cursor) -> Any:
    """ident | tostring(ident) | tostring(ident["key"]) -> a function of the row."""
    _, value = c.peek() or ("", "")
    if value == "tostring":
        c.take()
        c.take("op", "(")
        inner = _value_expr(c)
        c.take("op", ")")
        return lambda row: _text(inner(row))
    name = c.take("id")
    if c.peek() == ("op", "["):
        c.take()
        key = c.take("str")
        c.take("op", "]")
        return lambda row: (row.get(name) or {}).get(key)
    return lambda row: row.get(name)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _strings(c: _Cursor) -> list[str]:
    c.take("op", "(")
    values = [c.take("str")]
    while c.peek() == ("op", ","):
        c.take()
        values.append(c.take("str"))
    c.take("op", ")")
    return values


def _condition(c: _Cursor) -> Any:
    _, value = c.peek() or ("", "")
    if value in ("isnotempty", "isempty"):
        c.take()
        c.take("op", "(")
        inner = _value_expr(c)
        c.take("op", ")")
        return (lambda row: bool(inner(row))) if value == "isnotempty" else (lambda row: not inner(row))
    lhs = _value_expr(c)
    _, op = c.peek() or ("", "")
    c.take()
    if op == "between":
        c.take("op", "(")
        low = c.take("dt")
        c.take("op", "..")
        high = c.take("dt")
        c.take("op", ")")
        return lambda row: low <= datetime.fromisoformat(lhs(row)) <= high
    if op in ("==", "!="):
        rhs = c.take("str")
        return (lambda row: lhs(row) == rhs) if op == "==" else (lambda row: lhs(row) != rhs)
    if op in ("in", "!in", "in~"):
        values = _strings(c)
        if op == "in~":
            lowered = {v.lower() for v in values}
            return lambda row: str(lhs(row)).lower() in lowered
        return (lambda row: lhs(row) in values) if op == "in" else (lambda row: lhs(row) not in values)
    if op == "contains":
        needle = c.take("str").lower()
        return lambda row: needle in str(lhs(row)).lower()
    if op == "matches":
        c.take("id", "regex")
        pattern = c.take("str")
        try:
            compiled = re2.compile(pattern)
        except re2.error:
            raise KqlSyntaxError(f"invalid regex {pattern!r}") from None
        return lambda row: compiled.search(str(lhs(row))) is not None
    raise KqlSyntaxError(f"Query could not be parsed at '{op}'")


def run(text: str, tables: dict[str, Table]) -> tuple[list[tuple[str, str]], list[list[Any]]]:
    segments: list[list[tuple[str, Any]]] = [[]]
    for token in tokenize(text):
        if token == ("op", "|"):
            segments.append([])
        else:
            segments[-1].append(token)
    head = _Cursor(segments[0])
    name = head.take("id")
    if not head.done() or name not in tables:
        raise KqlSyntaxError(f"Failed to resolve table or column expression named '{name}'")
    table = tables[name]
    rows = list(table.rows)
    columns = list(table.columns)
    for segment in segments[1:]:
        c = _Cursor(segment)
        verb = c.take("id")
        if verb == "where":
            condition = _condition(c)
            rows = [row for row in rows if condition(row)]
        elif verb == "order":
            c.take("id", "by")
            column = c.take("id")
            direction = c.take("id") if not c.done() else "desc"
            rows.sort(key=lambda row: row[column], reverse=direction == "desc")
        elif verb == "take":
            rows = rows[: c.take("num")]
        elif verb == "project":
            names = [c.take("id")]
            while c.peek() == ("op", ","):
                c.take()
                names.append(c.take("id"))
            columns = [col for n in names for col in table.columns if col[0] == n]
        else:
            raise KqlSyntaxError(f"Query could not be parsed at '{verb}'")
        if not c.done():
            raise KqlSyntaxError(f"Query could not be parsed at '{c.peek()}'")
    return columns, [[row.get(n) for n, _ in columns] for row in rows]


def syntax_error(message: str) -> dict[str, Any]:
    return {
        "error": {
            "message": "The request had some invalid properties",
            "code": "BadArgumentError",
            "correlationId": "00000000-0000-0000-0000-000000000000",
            "innererror": {
                "code": "SyntaxError",
                "message": "A recognition error occurred in the query.",
                "innererror": {"code": "SYN0002", "message": message},
            },
        }
    }


class AzureLoopback:
    """`token`: the bearer token accepted; `partial`: answer with a PartialError alongside the
    tables; `fail`: (status, body) to answer instead of running the query."""

    def __init__(self, tables: dict[str, Table], token: str = "test-token") -> None:
        self.tables = tables
        self.token = token
        self.partial = False
        self.fail: tuple[int, dict[str, Any]] | None = None
        self.queries: list[dict[str, Any]] = []
        self.server = LoopbackServer(self._route)
        self.endpoint = self.server.url

    def __enter__(self) -> AzureLoopback:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(None, None, None)

    def _route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if method != "POST" or not re.fullmatch(r"/v1/workspaces/[^/]+/query(\?.*)?", path):
            missing = {"code": "PathNotFoundError", "message": f"The requested path does not exist: {path}"}
            return json_reply(404, {"error": missing})
        if headers.get("authorization") != f"Bearer {self.token}":
            expired = {
                "code": "InvalidTokenError",
                "message": "The provided authentication is not valid for this resource",
                "innererror": {"code": "TokenExpired", "message": "The token has expired"},
            }
            return json_reply(401, {"error": expired})
        request = json.loads(body)
        self.queries.append(request)
        if self.fail is not None:
            return json_reply(*self.fail)
        try:
            columns, rows = run(request["query"], self.tables)
        except KqlSyntaxError as exc:
            return json_reply(400, syntax_error(str(exc)))
        result: dict[str, Any] = {
            "tables": [{"name": "PrimaryResult", "columns": [{"name": n, "type": t} for n, t in columns], "rows": rows}]
        }
        if self.partial:
            detail = {
                "code": "EngineError",
                "message": "Query result set exceeded the limit",
                "innererror": {"code": "E_QUERY_RESULT_SET_TOO_LARGE", "message": "result set too large"},
            }
            result["error"] = {
                "code": "PartialError",
                "message": "There were some errors when processing your query.",
                "details": [detail],
            }
        return json_reply(200, result)
