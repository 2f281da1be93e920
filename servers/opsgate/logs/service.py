"""What the logs tools do, independent of the backend: resolve the window, page with a cursor, mine
patterns. Backends only answer `fetch`."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
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


# Filtering the answers of a backend that filters remotely (LogBackend.filters_remotely) here, one
# logs_query reads backend pages until its page is full, within `[logs] filter_max_lines`, this many
# backend pages, and half the call's time.
FILTER_MAX_PAGES = 50


@dataclass
class _Scan:
    """The lines of a query that match on the redacted text, in order, read over one or more backend pages."""

    records: list[LogRecord] = field(default_factory=list)
    query: str | None = None
    notes: list[str] = field(default_factory=list)
    scanned: int = 0
    pages: int = 0
    # set when the bound stopped the scan: lines from this time on (inclusive, in the query's order) are unread
    stopped_at: int | None = None
    reason: str = ""


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

    def _post_filter(self, query: LogQuery) -> bool:
        """True when the backend filtered raw text and left the regex out: the filter runs here, redacted."""
        return (
            self.backend.filters_remotely
            and query.redact is not None
            and (query.text is not None or query.regex is not None)
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
        post_filter = self._post_filter(query)
        scan: _Scan | None = None
        if post_filter:
            # a server-side backend matched raw text (or not the regex at all): filter redacted here, reading
            # further backend pages until the page is full
            scan = await self._scan_redacted(query, wanted, self.deadline())
            records, native, notes = scan.records, scan.query, list(scan.notes)
        else:
            fetched = await self.backend.fetch(query, wanted, self.deadline())
            records, native, notes = fetched.records, fetched.query, list(fetched.notes)
        if skip:
            at_boundary = sum(1 for r in records[:skip] if r.ts_ns == boundary)
            records = records[at_boundary:]
        page, more = records[: args.limit], len(records) > args.limit
        next_cursor = None
        if more and page:
            last = page[-1].ts_ns
            seen = sum(1 for r in page if r.ts_ns == last) + (skip if last == boundary else 0)
            next_cursor = Cursor(query.start_ns, query.end_ns, last, seen, base.identity()).encode()
        elif scan is not None and scan.stopped_at is not None:
            # the bound stopped the scan before the page filled: continue at the timestamp where it stopped
            # (none of whose lines it read, so none to skip there)
            next_cursor = Cursor(query.start_ns, query.end_ns, scan.stopped_at, 0, base.identity()).encode()
            more = True
            what = "regex" if query.regex is not None else "text"
            notes.append(
                f"the {what} filter runs here on redacted lines: read {scan.scanned} lines in {scan.pages} backend "
                f"page(s) and stopped at {scan.reason} with {len(page)} of {args.limit} lines matching; more may "
                "match: pass next_cursor to continue (or narrow the window)"
            )
        return QueryOutput(
            items=[self._line(r) for r in page],
            truncated=more,
            next_cursor=next_cursor,
            limit=args.limit,
            backend=self.backend.name,
            window=Window(start=format_ns(query.start_ns), end=format_ns(query.end_ns)),
            query=native,
            backend_notes=notes,
        )

    async def _whole_timestamps(
        self, query: LogQuery, size: Callable[[], int], deadline: float, scan: _Scan
    ) -> AsyncGenerator[tuple[list[LogRecord], int, bool]]:
        """Backend pages of `query`, `size()` lines asked each, as (lines, boundary, exhausted): the lines of
        whole timestamps only, and where the next page starts (a timestamp none of whose lines were given).

        A full backend page may end inside a timestamp (which of its lines the page holds is the backend's
        choice), so the next page starts at that timestamp and reads all its lines. A page holding a single
        timestamp is asked for again, larger; a timestamp with more lines than the backend's largest page is
        given up to that many, with a note, and passed. So paging never repeats or skips a line."""
        page_cap = self.backend.page_cap
        newest = query.order == "newest"
        current, asked = query, 0
        while True:
            asked = asked or max(1, min(page_cap, size()))
            fetched = await self.backend.fetch(current, asked, deadline)
            scan.pages += 1
            scan.query = scan.query or fetched.query
            scan.notes.extend(n for n in fetched.notes if n not in scan.notes)
            raw = fetched.records
            if len(raw) < asked:
                yield raw, 0, True
                return
            last = raw[-1].ts_ns
            lines = [r for r in raw if r.ts_ns != last]
            if lines:  # the lines at `last` may go on in the next page: read them all there
                boundary, asked = last, 0
            elif asked < page_cap:  # one timestamp fills this page: ask again, larger
                asked = min(page_cap, max(asked * 4, 100))
                continue
            else:  # it fills the largest page: the backend cannot page within it, so go past it
                lines, asked = raw, 0
                scan.notes.append(
                    f"more lines share the timestamp {format_ns(last)} than one backend page holds ({page_cap}); "
                    f"{page_cap} of them were read"
                )
                boundary = last - 1 if newest else last + 1
                if not query.start_ns <= boundary <= query.end_ns:
                    yield lines, 0, True
                    return
            yield lines, boundary, False
            current = query.narrowed(boundary)

    async def _scan_redacted(self, query: LogQuery, wanted: int, deadline: float) -> _Scan:
        """Backend pages of `query` (which the backend filtered on raw text, regex not applied) until `wanted`
        lines match on the redacted text, the backend has no more, or the bound is reached: `filter_max_lines`
        lines read, FILTER_MAX_PAGES pages, or half the call's time. The scan stops between whole timestamps
        (`_whole_timestamps`), so a cursor continues where it stopped, always past where this call began."""
        cap = self.settings.filter_max_lines
        scan_until = time.monotonic() + self.settings.timeout_s / 2
        scan = _Scan()

        def size() -> int:
            return min(max(wanted * 5, 500), max(cap - scan.scanned, 100))

        async with aclosing(self._whole_timestamps(query, size, deadline, scan)) as pages:
            async for lines, boundary, exhausted in pages:
                scan.scanned += len(lines)
                scan.records.extend(r for r in lines if query.matches_text(r.message))
                if exhausted or len(scan.records) >= wanted:
                    break
                if scan.scanned >= cap:
                    scan.reason = f"the {cap}-line bound ([logs] filter_max_lines)"
                elif scan.pages >= FILTER_MAX_PAGES:
                    scan.reason = f"the {FILTER_MAX_PAGES}-page bound"
                elif time.monotonic() > scan_until:
                    scan.reason = "half the call's time"
                if scan.reason:
                    scan.stopped_at = boundary
                    break
        return scan

    async def patterns(self, args: PatternsInput, redact: Callable[[str], str] | None = None) -> PatternsOutput:
        query = self.to_query(args, "oldest", redact)
        cap = self.settings.patterns_max_lines
        deadline = self.deadline()
        miner = TemplateMiner()
        stats: dict[int, _Stats] = {}
        scanned, read, capped = 0, 0, False
        # as in `query`: a server-side backend did not apply the regex (and matched `text` on raw text)
        post_filter = self._post_filter(query)
        scan = _Scan()

        def size() -> int:
            return max(cap - read + 1, 100)

        async with aclosing(self._whole_timestamps(query, size, deadline, scan)) as pages:
            async for lines, _, exhausted in pages:
                for record in lines:
                    if read == cap:
                        capped = True
                        break
                    read += 1
                    if post_filter and not query.matches_text(record.message):
                        continue
                    template_id = miner.add(record.message)
                    stats.setdefault(template_id, _Stats()).add(record)
                    scanned += 1
                # a full page had more lines (at least its last timestamp's): no need to fetch them to know
                capped = capped or (not exhausted and read == cap)
                if capped or exhausted:
                    break
        native, notes = scan.query, scan.notes
        if capped and post_filter:
            notes.append(
                f"the filter runs here on redacted lines: {cap} lines were read ([logs] patterns_max_lines), "
                f"{scanned} of them matched; narrow the window to mine the rest"
            )
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
