"""Caller-supplied regular expressions, compiled with RE2 (google-re2).

Why RE2 rather than `re` with a time bound: RE2 matches in time linear in the input for every
pattern, so a catastrophic-backtracking pattern such as `(a+)+$` costs no more than `a+` and no
analysis or timeout can be fooled. It is also the dialect both remote query languages use (Loki's
LogQL `|~` and Kusto's `matches regex` are RE2), so a pattern accepted here means the same thing on
every backend. Backreferences and lookaround, which RE2 cannot run in linear time, are refused
with a message that says so.
"""

from __future__ import annotations

from typing import Any

import re2

MAX_PATTERN_LENGTH = 512
_MAX_PROGRAM_MEMORY = 8 << 20
_RE2_SPECIAL = frozenset("\\.+*?()|[]{}^$")


class RegexError(ValueError):
    """A pattern that cannot be used; the message names the problem."""


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = _MAX_PROGRAM_MEMORY
    return options


class SafeRegex:
    """A compiled RE2 pattern matching `str` and UTF-8 `bytes`."""

    def __init__(self, pattern: str) -> None:
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise RegexError(f"regex is {len(pattern)} characters, over the limit of {MAX_PATTERN_LENGTH}")
        try:
            self._text = re2.compile(pattern, _options())
            self._bytes = re2.compile(pattern.encode(), _options())
        except re2.error as exc:
            raise RegexError(
                f"invalid regex {pattern!r} (RE2 syntax, no backreferences or lookaround): {_message(exc)}"
            ) from None
        self.pattern = pattern

    def search(self, text: str) -> bool:
        return self._text.search(text) is not None

    def search_bytes(self, data: bytes) -> bool:
        return self._bytes.search(data) is not None

    def finditer_bytes(self, data: bytes, endpos: int | None = None) -> Any:
        """Matches in UTF-8 `data[:endpos]` (RE2 match objects: `.start()`, `.end()`)."""
        return self._bytes.finditer(data, 0, endpos)


def _message(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else exc
    return detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)


def validate(pattern: str) -> str:
    """`pattern` unchanged if RE2 can compile it; raise RegexError naming the problem otherwise."""
    SafeRegex(pattern)
    return pattern


def escape(text: str) -> str:
    """`text` as an RE2 pattern matching exactly that text."""
    return "".join("\\" + ch if ch in _RE2_SPECIAL else ch for ch in text)
