"""Durations (`90s`, `5m`, `1h30m`, `2d`), instants, and the windows the metrics tools accept."""

from __future__ import annotations

import re
from datetime import UTC, datetime

DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d|w))+$"
_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus-style duration (`1h30m`); ValueError naming the text otherwise."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration like 90s, 5m, 1h30m or 2d")
    return sum(int(n) * _UNIT_S[u] for n, u in _PART.findall(text))


def format_duration(seconds: float) -> str:
    """The shortest exact duration text for whole seconds (`3600` -> `1h`)."""
    s = round(seconds)
    if s <= 0:
        return "0s"
    out = []
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            n, s = divmod(s, size)
            out.append(f"{n}{unit}")
    return "".join(out)


def unix(dt: datetime) -> float:
    """Unix seconds; a datetime without a zone is taken as UTC."""
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def iso(ts: float) -> str:
    """RFC 3339 in UTC to the second (`2026-11-23T05:00:00Z`)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
