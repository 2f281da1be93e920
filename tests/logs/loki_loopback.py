"""A loopback Loki: `GET /loki/api/v1/query_range` in Loki's documented response format, evaluating
the subset of LogQL opsgate emits (stream selector; `|=`, `!=`, `|~`, `!~` line filters; label
filters on stream labels or structured metadata). Syntax errors come back as Loki sends them:
HTTP 400 with a plain-text `parse error ...` body."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import re2

from tests.support.loopback import LoopbackServer, Reply, json_reply, text_reply


class LogQLSyntaxError(ValueError):
    pass


def _unquote(text: str, i: int) -> tuple[str, int]:
    """A Go string literal starting at text[i] -> (value, index after it)."""
    quote = text[i]
    if quote == "`":
        end = text.find("`", i + 1)
        if end < 0:
            raise LogQLSyntaxError(f"unterminated raw string at col {i + 1}")
        return text[i + 1 : end], end + 1
    if quote != '"':
        raise LogQLSyntaxError(f"syntax error: unexpected {text[i : i + 10]!r} at col {i + 1}, expected string")
    out: list[str] = []
    j = i + 1
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}
    while j < len(text):
        ch = text[j]
        if ch == '"':
            return "".join(out), j + 1
        if ch == "\\":
            nxt = text[j + 1 : j + 2]
            if nxt in escapes:
                out.append(escapes[nxt])
                j += 2
                continue
            if nxt == "x":
                out.append(chr(int(text[j + 2 : j + 4], 16)))
                j += 4
                continue
            raise LogQLSyntaxError(f"invalid escape \\{nxt} at col {j + 1}")
        if ch == "\n":
            raise LogQLSyntaxError("newline in string")
        out.append(ch)
        j += 1
    raise LogQLSyntaxError(f"unterminated string at col {i + 1}")


_NAME = re2.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_OPS = ("=~", "!~", "!=", "=")


@dataclass
class Matcher:
    name: str
    op: str
    value: str

    def matches(self, value: str) -> bool:
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        hit = re2.fullmatch(self.value, value) is not None
        return hit if self.op == "=~" else not hit


@dataclass
class LogQL:
    selector: list[Matcher]
    line_filters: list[tuple[str, str]] = field(default_factory=list)
    label_filters: list[Matcher] = field(default_factory=list)


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\n":
        i += 1
    return i


def _matcher(text: str, i: int) -> tuple[Matcher, int]:
    i = _skip(text, i)
    m = _NAME.match(text, i)
    if not m:
        raise LogQLSyntaxError(f"syntax error: unexpected {text[i : i + 10]!r} at col {i + 1}, expecting IDENTIFIER")
    i = _skip(text, m.end())
    op = next((o for o in _OPS if text.startswith(o, i)), None)
    if op is None:
        raise LogQLSyntaxError(f"syntax error: unexpected {text[i : i + 10]!r} at col {i + 1}, expecting operator")
    value, i = _unquote(text, _skip(text, i + len(op)))
    if op in ("=~", "!~"):
        try:
            re2.compile(value)
        except re2.error as exc:
            raise LogQLSyntaxError(f"invalid regex {value!r}: {exc}") from None
    return Matcher(m.group(0), op, value), i


def parse(text: str) -> LogQL:
    i = _skip(text, 0)
    if not text.startswith("{", i):
        raise LogQLSyntaxError(f"syntax error: unexpected {text[i : i + 10]!r} at col {i + 1}, expecting {{")
    i += 1
    selector: list[Matcher] = []
    while True:
        matcher, i = _matcher(text, i)
        selector.append(matcher)
        i = _skip(text, i)
        if text.startswith(",", i):
            i += 1
            continue
        if text.startswith("}", i):
            i += 1
            break
        raise LogQLSyntaxError(f"syntax error: unexpected {text[i : i + 10]!r} at col {i + 1}, expecting }} or ,")
    if not any(not m.matches("") for m in selector):
        raise LogQLSyntaxError(
            "queries require at least one regexp or equality matcher that does not have an empty-compatible value"
        )
    query = LogQL(selector)
    while (i := _skip(text, i)) < len(text):
        op = next((o for o in ("|=", "!=", "|~", "!~") if text.startswith(o, i)), None)
        if op is not None:
            value, i = _unquote(text, _skip(text, i + 2))
            if op in ("|~", "!~"):
                try:
                    re2.compile(value)
                except re2.error as exc:
                    raise LogQLSyntaxError(f"invalid regex {value!r}: {exc}") from None
            query.line_filters.append((op, value))
        elif text.startswith("|", i):
            matcher, i = _matcher(text, i + 1)
            query.label_filters.append(matcher)
        else:
            raise LogQLSyntaxError(f"syntax error: unexpected {text[i : i + 10]!r} at col {i + 1}")
    return query


@dataclass
class Stream:
    labels: dict[str, str]
    entries: list[tuple[int, str, dict[str, str]]]


class LokiLoopback:
    """Serves `streams`; `queries` records every LogQL text received."""

    def __init__(self, streams: list[Stream]) -> None:
        self.streams = streams
        self.queries: list[str] = []
        self.server = LoopbackServer(self._route)
        self.url = self.server.url

    def __enter__(self) -> LokiLoopback:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(None, None, None)

    def _route(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(path)
        if parts.path != "/loki/api/v1/query_range":
            return text_reply(404, "404 page not found\n")
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        text = params.get("query", "")
        self.queries.append(text)
        try:
            query = parse(text)
        except LogQLSyntaxError as exc:
            return text_reply(400, f"parse error : {exc}")
        start, end = int(params["start"]), int(params["end"])
        limit = int(params.get("limit", 100))
        backward = params.get("direction", "backward") == "backward"
        picked: list[tuple[int, str, Stream]] = []
        for stream in self.streams:
            if not all(m.matches(stream.labels.get(m.name, "")) for m in query.selector):
                continue
            for ts, line, metadata in stream.entries:
                if start <= ts < end and self._passes(query, line, {**stream.labels, **metadata}):
                    picked.append((ts, line, stream))
        picked.sort(key=lambda e: e[0], reverse=backward)
        picked = picked[:limit]
        result = []
        for stream in self.streams:
            values = [[str(ts), line] for ts, line, s in picked if s is stream]
            if values:
                result.append({"stream": stream.labels, "values": values})
        stats = {"summary": {"totalEntriesReturned": len(picked)}}
        data = {"resultType": "streams", "result": result, "stats": stats}
        return json_reply(200, {"status": "success", "data": data})

    @staticmethod
    def _passes(query: LogQL, line: str, labels: dict[str, str]) -> bool:
        for op, value in query.line_filters:
            if op == "|=" and value not in line:
                return False
            if op == "!=" and value in line:
                return False
            if op in ("|~", "!~") and (re2.search(value, line) is not None) != (op == "|~"):
                return False
        return all(m.matches(labels.get(m.name, "")) for m in query.label_filters)
