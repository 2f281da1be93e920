"""One log line as every backend hands it on, and the parsing of JSON, logfmt and plain-text lines."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from opsgate.logs.severity import Severity, normalize
from opsgate.logs.timeparse import log_time_ns

TIME_KEYS = ("ts", "time", "timestamp", "@timestamp", "t", "datetime", "date")
LEVEL_KEYS = ("level", "severity", "lvl", "log.level", "levelname", "loglevel", "detected_level")
MESSAGE_KEYS = ("msg", "message", "@message", "log", "event")
SERVICE_KEYS = ("service", "service.name", "app", "component")
_HEADER_KEYS = frozenset(TIME_KEYS + LEVEL_KEYS + MESSAGE_KEYS + SERVICE_KEYS)

_TEXT_HEADER = re.compile(
    r"^(?P<ts>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\s+"
    r"(?:\[?(?P<level>[A-Za-z]{3,11})\]?:?\s+)?(?P<msg>.*)$"
)
_LOGFMT_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')
_LOGFMT_START = re.compile(r"^[A-Za-z_@][\w.@-]*=")
_LEADING_TIME = re.compile(
    rb'^(?:\{"(?:ts|time|timestamp|@timestamp)": ?"|(?:ts|time)=)?'
    rb"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?)"
)


@dataclass(frozen=True, slots=True)
class LogRecord:
    """A parsed line: when, what severity, which service, the message without its header."""

    ts_ns: int
    service: str
    level: Severity | None
    message: str
    source: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ParsedLine:
    ts_ns: int | None
    level: Severity | None
    message: str
    service: str | None = None


def leading_time(raw: bytes) -> int | None:
    """The time at the very start of a line (plain text, logfmt `ts=`, JSON `{"ts":` or `{"ts": `) without parsing
    the rest: lets a scan drop lines outside the window cheaply. None when there is none there."""
    match = _LEADING_TIME.match(raw)
    return log_time_ns(match.group(1).decode()) if match else None


def parse_line(text: str) -> ParsedLine:
    """Parse a JSON, logfmt or plain-text line; fields that are absent come back as None."""
    stripped = text.strip()
    if stripped.startswith("{"):
        parsed = _parse_json(stripped)
        if parsed is not None:
            return parsed
    if _LOGFMT_START.match(stripped):
        parsed = _parse_logfmt(stripped)
        if parsed is not None:
            return parsed
    return _parse_text(stripped)


def _first(fields: Mapping[str, object], keys: tuple[str, ...]) -> object:
    for key in keys:
        if key in fields:
            return fields[key]
    return None


def _render_value(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"' if (" " in value or not value) else value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _message_with_fields(message: object, fields: Mapping[str, object]) -> str:
    parts = [message if isinstance(message, str) else ("" if message is None else _render_value(message))]
    parts.extend(f"{key}={_render_value(value)}" for key, value in fields.items() if key not in _HEADER_KEYS)
    return " ".join(part for part in parts if part)


def _parse_json(text: str) -> ParsedLine | None:
    try:
        fields = json.loads(text)
    except ValueError:
        return None
    if not isinstance(fields, dict):
        return None
    service = _first(fields, SERVICE_KEYS)
    return ParsedLine(
        ts_ns=log_time_ns(_first(fields, TIME_KEYS)),
        level=normalize(_first(fields, LEVEL_KEYS)),
        message=_message_with_fields(_first(fields, MESSAGE_KEYS), fields),
        service=service if isinstance(service, str) else None,
    )


def parse_logfmt(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for key, raw in _LOGFMT_PAIR.findall(text):
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        fields[key] = raw
    return fields


def _parse_logfmt(text: str) -> ParsedLine | None:
    fields = parse_logfmt(text)
    if not fields:
        return None
    ts = _first(fields, TIME_KEYS)
    service = _first(fields, SERVICE_KEYS)
    return ParsedLine(
        ts_ns=log_time_ns(ts),
        level=normalize(_first(fields, LEVEL_KEYS)),
        message=_message_with_fields(_first(fields, MESSAGE_KEYS), fields),
        service=service if isinstance(service, str) else None,
    )


def _parse_text(text: str) -> ParsedLine:
    match = _TEXT_HEADER.match(text)
    if not match:
        return ParsedLine(ts_ns=None, level=None, message=text)
    level = normalize(match.group("level")) if match.group("level") else None
    message = match.group("msg")
    if match.group("level") and level is None:
        message = text[match.start("level") - (1 if text[match.start("level") - 1] == "[" else 0) :]
    return ParsedLine(ts_ns=log_time_ns(match.group("ts")), level=level, message=message)
