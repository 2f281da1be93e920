"""Times as callers and logs write them, as integer nanoseconds since the epoch (UTC)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

NS_PER_S = 1_000_000_000
_FRACTION = re.compile(r"([.,])(\d+)")
_EPOCH_NS_MIN = 10**17  # 1973 in ns: smaller integers are taken as seconds or milliseconds


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 time with a zone (`2026-11-23T04:30:00Z`); ValueError naming the problem otherwise."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"invalid time {text!r}: use RFC 3339, e.g. '2026-11-23T04:30:00Z'") from None
    if value.tzinfo is None:
        raise ValueError(f"invalid time {text!r}: add a zone ('Z' or '+01:00'), times are not guessed")
    return value.astimezone(UTC)


def to_ns(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


def from_ns(ns: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)


def format_ns(ns: int) -> str:
    """RFC 3339 with milliseconds, `Z` zone."""
    return from_ns(ns).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log_time_ns(value: object) -> int | None:
    """Nanoseconds of a timestamp found in a log line (ISO text or epoch number), None if not a time."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        if number >= _EPOCH_NS_MIN:
            return int(value)
        if number >= 10**14:
            return int(number * 1000)  # microseconds
        if number >= 10**11:
            return int(number * 1_000_000)  # milliseconds
        return int(number * NS_PER_S) if number > 0 else None
    if not isinstance(value, str) or len(value) < 10:
        return None
    text = value.strip()
    nanos = 0
    fraction = _FRACTION.search(text, 17)
    if fraction and len(fraction.group(2)) > 6:
        # datetime keeps microseconds; keep the digits beyond them ourselves
        digits = fraction.group(2)
        nanos = int(digits[6:9].ljust(3, "0"))
        text = text[: fraction.start(2) + 6] + text[fraction.end(2) :]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return to_ns(parsed) + nanos
