"""Durations as every tool and setting writes them: one parser, one set of rules.

A duration is one or more `<whole number><unit>` parts, summed: `90s`, `15m`, `1h30m`, `2d`, `500ms`,
`1w` (units ms, s, m, h, d, w; Prometheus's spelling). It must be positive and at most
`MAX_DURATION_DAYS` days: a typo like `99999999d` is a clear error, never an overflow further on.
Capabilities narrow it further where they must (a logs window, a metrics range).
"""

from __future__ import annotations

import re

DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d|w))+$"
MAX_DURATION_DAYS = 3650
MAX_DURATION_S = MAX_DURATION_DAYS * 86_400.0
_MAX_TEXT = 40
_DURATION = re.compile(DURATION_PATTERN)
_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}


def parse_duration(text: str) -> float:
    """Seconds in `text`; ValueError naming the text and the rule it breaks."""
    shown = repr(text[:_MAX_TEXT] + ("..." if len(text) > _MAX_TEXT else ""))
    if len(text) > _MAX_TEXT or not _DURATION.fullmatch(text):
        raise ValueError(
            f"invalid duration {shown}: not a duration like 90s, 5m, 1h30m or 2d (units ms, s, m, h, d, w)"
        )
    seconds = sum(int(n) * _UNIT_S[u] for n, u in _PART.findall(text))
    if seconds <= 0:
        raise ValueError(f"invalid duration {shown}: must be positive")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"invalid duration {shown}: longer than the {MAX_DURATION_DAYS}-day maximum")
    return seconds


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
