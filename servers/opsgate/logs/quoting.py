"""Double-quoted string literals for query languages that share C-style escapes (KQL, LogQL)."""

from __future__ import annotations

from collections.abc import Callable

_SIMPLE = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def double_quoted(value: str, control: Callable[[int], str]) -> str:
    """`value` as a double-quoted literal; other control characters are written by `control(codepoint)`."""
    out = ['"']
    for ch in value:
        simple = _SIMPLE.get(ch)
        if simple is not None:
            out.append(simple)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(control(ord(ch)))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)
