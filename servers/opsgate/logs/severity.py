"""Log severities: one ordered scale, and the many spellings logs use for it."""

from __future__ import annotations

from typing import Literal, get_args

Severity = Literal["trace", "debug", "info", "warn", "error", "fatal"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
RANK: dict[str, int] = {name: i for i, name in enumerate(SEVERITIES)}

ALIASES: dict[str, Severity] = {
    "trace": "trace",
    "trc": "trace",
    "verbose": "trace",
    "finest": "trace",
    "finer": "trace",
    "debug": "debug",
    "dbg": "debug",
    "fine": "debug",
    "info": "info",
    "inf": "info",
    "information": "info",
    "informational": "info",
    "notice": "info",
    "warn": "warn",
    "warning": "warn",
    "wrn": "warn",
    "error": "error",
    "err": "error",
    "eror": "error",
    "severe": "error",
    "fatal": "fatal",
    "critical": "fatal",
    "crit": "fatal",
    "panic": "fatal",
    "emerg": "fatal",
    "emergency": "fatal",
    "alert": "fatal",
    "dpanic": "fatal",
}


def normalize(level: object) -> Severity | None:
    """The severity a level field means (`WARNING` -> warn, `crit` -> fatal), or None if unknown."""
    if isinstance(level, int) and not isinstance(level, bool):
        return _from_number(level)
    if not isinstance(level, str):
        return None
    return ALIASES.get(level.strip().lower())


def _from_number(level: int) -> Severity | None:
    # pino/bunyan numeric levels (10..60)
    if 10 <= level <= 60:
        return SEVERITIES[min(level // 10 - 1, 5)]
    return None


def at_least(level: Severity | None, minimum: Severity | None) -> bool:
    """Whether a line of `level` passes a `minimum` filter; lines of unknown level pass only with no filter."""
    if minimum is None:
        return True
    return level is not None and RANK[level] >= RANK[minimum]


def levels_from(minimum: Severity) -> list[Severity]:
    """The severities at or above `minimum`, for backends that filter by a set of values."""
    return list(SEVERITIES[RANK[minimum] :])
