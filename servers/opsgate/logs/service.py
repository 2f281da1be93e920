"""What the logs tools do, independent of the backend: resolve the window, page with a cursor, mine
patterns. Backends only answer `fetch`."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from opsgate.contracts import ToolError
from opsgate.durations import parse_duration
from opsgate.logs.backends import LogBackend
from opsgate.logs.contracts import (
    LogFilter,
    LogLine,
    Pattern,
    PatternsInput,
    PatternsOutput,
    QueryInput,
    QueryOutput,
    Window,
)
from opsgate.logs.patterns import TemplateMiner
from opsgate.logs.query import Cursor, CursorError, LogQuery
from opsgate.logs.records import LogRecord
from opsgate.logs.selector import parse_selector
from opsgate.logs.settings import LogsSettings
from opsgate.logs.severity import RANK, SEVERITIES
from opsgate.logs.timeparse import NS_PER_S, format_ns, parse_rfc3339, to_ns


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}…[+{len(text) - limit} chars]"


@dataclass
class _Stats:
    count: int = 0
    first_ns: int = 0
    last_ns: int = 0
    levels: Counter[str] = field(default_factory=Counter)
    services: set[str] = field(default_factory=set)
    sample: str = ""
    sample_rank: int = -1

    def add(self, record: LogRecord) -> None:
        if self.count == 0 or record.ts_ns < self.first_ns:
            self.first_ns = record.ts_ns
        self.last_ns = max(self.last_ns, record.ts_ns)
        self.count += 1
        self.levels[record.level or "unknown"] += 1
        self.services.add(record.service)
        rank = RANK.get(record.level or "", -1)
        if rank > self.sample_rank or not self.sample:
            self.sample, self.sample_rank = record.message, rank

    def merge(self, other: _Stats) -> None:
        if other.count == 0:
            return
        if self.count == 0 or other.first_ns < self.first_ns:
            self.first_ns = other.first_ns
        self.last_ns = max(self.last_ns, other.last_ns)
        self.count += other.count
        self.levels.update(other.levels)
        self.services |= other.services
        if other.sample_rank > self.sample_rank:
            self.sample, self.sample_rank = other.sample, other.sample_rank

    @property
    def worst(self) -> int:
        return max((RANK.get(level, -1) for level in self.levels), default=-1)


# Backends whose text/regex filter runs in the remote system, on raw text: under redaction the service
# filters their answers again on the redacted line (in-process backends do it themselves, LogQuery.redact).
SERVER_SIDE_FILTERS = frozenset({"loki", "azure"})


class LogsService:
    def __init__(self, settings: LogsSettings, backend: LogBackend) -> None:
        self.settings = settings
        self.backend = backend
        self.max_window_ns = round(parse_duration(settings.max_window) * NS_PER_S)

    def now(self) -> datetime:
        return self.settings.now or datetime.now(UTC)

    def window(self, args: LogFilter) -> tuple[int, int]:
        now = self.now()
        if args.start is not None:
            start = parse_rfc3339(args.start)
            end = parse_rfc3339(args.end) if args.end is not None else now
        else:
            end = parse_rfc3339(args.end) if args.end is not None else now
            since = args.since or self.settings.default_since
            span = timedelta(seconds=parse_duration(since))
            if span.total_seconds() * 1e9 > self.max_window_ns:
                # checked before subtracting: `since=99999999d` would overflow the calendar
                allowed = self.settings.max_window
                raise ToolError(f"since={since} is longer than the allowed {allowed} window; narrow it")
            start = end - span
        start_ns, end_ns = to_ns(start), to_ns(end)
        if end_ns <= start_ns:
            raise ToolError(f"window end {format_ns(end_ns)} is not after its start {format_ns(start_ns)}")
        if end_ns - start_ns > self.max_window_ns:
            raise ToolError(
                f"window of {(end_ns - start_ns) / 3.6e12:.1f}h is longer than the allowed "
                f"{self.settings.max_window}; narrow it"
            )
        return start_ns, end_ns

    def to_query(self, args: LogFilter, order: str = "oldest", redact: Callable[[str], str] | None = None) -> LogQuery:
        start_ns, end_ns = self.window(args)
        return LogQuery(
            redact=redact,
            start_ns=start_ns,
            end_ns=end_ns,
            services=(args.service,) if args.service else (),
            selector=parse_selector(args.selector) if args.selector else (),
            namespace=args.namespace,
            min_severity=args.min_severity,
            text=args.text,
            regex=args.regex,
            raw_query=args.raw_query,
            order="newest" if order == "newest" else "oldest",
        )

    def deadline(self) -> float:
        return time.monotonic() + self.settings.timeout_s

    def _line(self, record: LogRecord) -> LogLine:
        return LogLine(
            time=format_ns(record.ts_ns),
            service=record.service,
            level=record.level,
            message=_clip(record.message, self.settings.max_message_chars),
            source=record.source,
        )

    async def query(self, args: QueryInput, redact: Callable[[str], str] | None = None) -> QueryOutput:
        base = self.to_query(args, args.order, redact)
        query, skip, boundary = base, 0, None
        if args.cursor is not None:
            try:
                cursor = Cursor.decode(args.cursor)
            except CursorError as exc:
                raise ToolError(str(exc)) from None
            if cursor.identity != base.identity():
                raise ToolError("cursor belongs to a different query; repeat the same filter or drop the cursor")
            query = replace(base, start_ns=cursor.start_ns, end_ns=cursor.end_ns)
            query, skip, boundary = query.narrowed(cursor.boundary_ns), cursor.skip, cursor.boundary_ns
        wanted = args.limit + skip + 1
        post_filter = (
            self.backend.name in SERVER_SIDE_FILTERS
            and query.redact is not None
            and (query.text is not None or query.regex is not None)
        )
        # a server-side backend matched raw text (or not the regex at all): ask it for more, filter redacted here
        fetched = await self.backend.fetch(query, min(wanted * 5, 5000) if post_filter else wanted, self.deadline())
        records = [r for r in fetched.records if query.matches_text(r.message)] if post_filter else fetched.records
        if skip:
            at_boundary = sum(1 for r in records[:skip] if r.ts_ns == boundary)
            records = records[at_boundary:]
        page, more = records[: args.limit], len(records) > args.limit
        next_cursor = None
        if more and page:
            last = page[-1].ts_ns
            seen = sum(1 for r in page if r.ts_ns == last) + (skip if last == boundary else 0)
            next_cursor = Cursor(query.start_ns, query.end_ns, last, seen, base.identity()).encode()
        return QueryOutput(
            items=[self._line(r) for r in page],
            truncated=more,
            next_cursor=next_cursor,
            limit=args.limit,
            backend=self.backend.name,
            window=Window(start=format_ns(query.start_ns), end=format_ns(query.end_ns)),
            query=fetched.query,
            backend_notes=fetched.notes,
        )

    async def patterns(self, args: PatternsInput, redact: Callable[[str], str] | None = None) -> PatternsOutput:
        query = self.to_query(args, "oldest", redact)
        cap = self.settings.patterns_max_lines
        deadline = self.deadline()
        miner = TemplateMiner()
        stats: dict[int, _Stats] = {}
        scanned, capped, skip = 0, False, 0
        native: str | None = None
        notes: list[str] = []
        current = query
        while True:
            want = min(self.backend.page_cap, cap - scanned + 1)
            fetched = await self.backend.fetch(current, want + skip, deadline)
            native = native or fetched.query
            notes.extend(n for n in fetched.notes if n not in notes)
            records = fetched.records
            boundary = current.start_ns
            if skip:
                records = records[sum(1 for r in records[:skip] if r.ts_ns == boundary) :]
            for record in records:
                if scanned == cap:
                    capped = True
                    break
                template_id = miner.add(record.message)
                stats.setdefault(template_id, _Stats()).add(record)
                scanned += 1
            if capped or len(fetched.records) < want + skip or not records:
                break
            last = records[-1].ts_ns
            skip = sum(1 for r in records if r.ts_ns == last) + (skip if last == boundary else 0)
            current = current.narrowed(last)
        merged: dict[int, _Stats] = {}
        for template_id, stat in stats.items():
            merged.setdefault(miner.resolve(template_id), _Stats()).merge(stat)
        texts = {t.id: t.text for t in miner.templates()}
        ranked = sorted(merged.items(), key=lambda kv: self._rank_key(args.rank, kv[1]))
        items = [
            Pattern(
                template=_clip(texts.get(template_id, ""), self.settings.max_message_chars),
                count=stat.count,
                first_seen=format_ns(stat.first_ns),
                last_seen=format_ns(stat.last_ns),
                levels={level: stat.levels[level] for level in (*SEVERITIES, "unknown") if stat.levels[level]},
                services=sorted(stat.services),
                sample=_clip(stat.sample, self.settings.max_message_chars),
            )
            for template_id, stat in ranked[: args.limit]
        ]
        return PatternsOutput(
            items=items,
            truncated=len(ranked) > args.limit,
            limit=args.limit,
            backend=self.backend.name,
            window=Window(start=format_ns(query.start_ns), end=format_ns(query.end_ns)),
            lines_scanned=scanned,
            lines_capped=capped,
            templates_total=len(ranked),
            query=native,
            backend_notes=notes,
        )

    @staticmethod
    def _rank_key(rank: str, stat: _Stats) -> tuple[int, int, int]:
        if rank == "count":
            return (-stat.count, -stat.worst, 0)
        if rank == "recent":
            return (-stat.last_ns, -stat.count, 0)
        return (-stat.worst, -stat.count, 0)
