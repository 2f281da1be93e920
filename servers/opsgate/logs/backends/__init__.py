"""Log backends: one protocol, one module per backend, chosen by `[logs] backend`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from opsgate.contracts import BackendUnavailable
from opsgate.logs.query import LogQuery
from opsgate.logs.records import LogRecord


@dataclass
class Fetched:
    """Up to `limit` records in the query's order, the native query that produced them, and notes."""

    records: list[LogRecord]
    query: str | None = None
    notes: list[str] = field(default_factory=list)


class LogBackend(Protocol):
    name: str
    page_cap: int
    """Most records one `fetch` may return (Loki's entry limit, for example)."""
    filters_remotely: bool
    """Its `text`/`regex` filter runs in a remote system, which cannot redact (LogQL, KQL): under redaction
    it pushes neither down and the service filters its answers on the redacted line. An in-process backend
    (False) filters on the redacted line itself (`LogQuery.matches_text`)."""

    async def fetch(self, query: LogQuery, limit: int, deadline: float) -> Fetched:
        """The first `limit` records matching `query` in its order. Raise ToolError for a bad query,
        BackendUnavailable when the backend cannot be reached or `deadline` (monotonic) passes."""
        ...

    async def aclose(self) -> None: ...


class DeadlinePassed(BackendUnavailable):
    pass


def check_deadline(deadline: float, backend: str) -> None:
    if time.monotonic() > deadline:
        raise DeadlinePassed(f"the {backend} backend did not answer within the time limit; narrow the window")


def remaining(deadline: float, floor: float = 0.1) -> float:
    return max(deadline - time.monotonic(), floor)
