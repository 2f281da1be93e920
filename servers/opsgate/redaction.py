"""Secret redaction applied by the gate to tool output (placeholder until the full module lands)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_DEFAULT = [
    ("bearer", r"(?i)(?<=bearer )[a-z0-9._~+/=-]{8,}"),
    ("jwt", r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
    ("aws_key", r"\bAKIA[0-9A-Z]{16}\b"),
    ("password", r"(?i)(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),
    ("password", r"(?i)(?<=password=)[^\s&,;]+"),
    ("private_key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
]


class Redactor:
    def __init__(self, extra_patterns: Sequence[str] = ()) -> None:
        self._patterns = [(k, re.compile(p)) for k, p in _DEFAULT]
        for p in extra_patterns:
            try:
                self._patterns.append(("policy", re.compile(p)))
            except re.error as exc:
                raise ValueError(f"invalid redaction pattern {p!r}: {exc}") from None

    def redact_text(self, text: str) -> tuple[str, int]:
        total = 0
        for kind, pattern in self._patterns:
            text, n = pattern.subn(f"[REDACTED:{kind}]", text)
            total += n
        return text, total

    def redact_obj(self, obj: Any) -> tuple[Any, int]:
        if isinstance(obj, str):
            return self.redact_text(obj)
        if isinstance(obj, dict):
            out: dict[Any, Any] = {}
            total = 0
            for k, v in obj.items():
                out[k], n = self.redact_obj(v)
                total += n
            return out, total
        if isinstance(obj, list | tuple):
            items = []
            total = 0
            for v in obj:
                r, n = self.redact_obj(v)
                items.append(r)
                total += n
            return (items if isinstance(obj, list) else tuple(items)), total
        return obj, 0


DEFAULT_REDACTOR = Redactor()
