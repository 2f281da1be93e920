"""The typed filter every backend answers, resolved to absolute times, and the paging cursor."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from opsgate.logs.records import LogRecord
from opsgate.logs.safe_regex import SafeRegex, escape
from opsgate.logs.selector import Requirement
from opsgate.logs.severity import Severity, at_least

Order = Literal["newest", "oldest"]


class CursorError(ValueError):
    """A cursor that does not belong to this query or cannot be read."""


@dataclass(frozen=True)
class LogQuery:
    """A filter with an absolute window [start_ns, end_ns] (both inclusive)."""

    start_ns: int
    end_ns: int
    services: tuple[str, ...] = ()
    selector: tuple[Requirement, ...] = ()
    namespace: str | None = None
    min_severity: Severity | None = None
    text: str | None = None
    regex: str | None = None
    raw_query: str | None = None
    order: Order = "newest"
    # The caller's redaction: `text` and `regex` match the redacted line, never the raw one (a filter on
    # raw text is an oracle for the secret redaction hides). Server-side backends (LogQL, KQL) cannot
    # redact, so under redaction they push neither down and the service applies the filter, redacted.
    redact: Callable[[str], str] | None = field(default=None, compare=False, repr=False)
    _compiled: SafeRegex | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.regex is not None and self._compiled is None:
            object.__setattr__(self, "_compiled", SafeRegex(self.regex))

    @property
    def text_pattern(self) -> str | None:
        """`text` as a case-insensitive RE2 pattern (for backends without a case-insensitive contains)."""
        return None if self.text is None else "(?i)" + escape(self.text)

    def matches_text(self, line: str) -> bool:
        """`text` and `regex` are matched against the line as the caller sees it (redacted, see `redact`)."""
        if self.redact is not None and (self.text is not None or self._compiled is not None):
            line = self.redact(line)
        if self.text is not None and self.text.lower() not in line.lower():
            return False
        return self._compiled is None or self._compiled.search(line)

    def matches_record(self, record: LogRecord) -> bool:
        """The non-text part of the filter, applied in process."""
        if not self.start_ns <= record.ts_ns <= self.end_ns:
            return False
        if self.services and record.service not in self.services:
            return False
        if not at_least(record.level, self.min_severity):
            return False
        return not self.selector or all(req.matches(record.labels) for req in self.selector)

    @property
    def compiled(self) -> SafeRegex | None:
        return self._compiled

    def narrowed(self, boundary_ns: int) -> LogQuery:
        """The same filter continuing past `boundary_ns` in the query's order (inclusive)."""
        if self.order == "newest":
            return replace(self, end_ns=boundary_ns)
        return replace(self, start_ns=boundary_ns)

    def identity(self) -> str:
        """A digest of everything but the paging position, binding a cursor to its query."""
        doc = {
            "services": self.services,
            "selector": [str(r) for r in self.selector],
            "namespace": self.namespace,
            "min_severity": self.min_severity,
            "text": self.text,
            "regex": self.regex,
            "raw": self.raw_query,
            "order": self.order,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: the window, the boundary time, and how many lines at it were seen."""

    start_ns: int
    end_ns: int
    boundary_ns: int
    skip: int
    identity: str

    def encode(self) -> str:
        doc = [1, self.start_ns, self.end_ns, self.boundary_ns, self.skip, self.identity]
        return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            version, start, end, boundary, skip, identity = json.loads(raw)
        except (ValueError, TypeError):
            raise CursorError("cursor is not one this server issued; drop it to start from the first page") from None
        if version != 1 or not all(isinstance(v, int) for v in (start, end, boundary, skip)) or skip < 0:
            raise CursorError("cursor is not one this server issued; drop it to start from the first page")
        return cls(start, end, boundary, skip, str(identity))
