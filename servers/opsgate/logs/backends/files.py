"""The files backend: JSON-lines, logfmt and plain-text files matched by globs, gzip-rotated files
included. Time-ordered files are searched by binary search on byte offsets (see `filescan`); a file not
in time order gets a block time index (see `filescan.time_index`), built in the background: from the
backend's construction on, and again whenever a query finds the file changed. A text or regex query
that finds the index not ready searches the whole file itself while few lines match (a rare term); any
other query waits for the build (at most until its deadline; the build goes on). With an index
directory the indexes outlive the process (see `files_index`)."""

from __future__ import annotations

import functools
import glob
import gzip
import heapq
import io
import os
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import anyio
from pydantic import BaseModel, ConfigDict, Field

from opsgate.config import REPO_ROOT
from opsgate.contracts import BackendUnavailable, ToolError
from opsgate.logs.backends import DeadlinePassed, Fetched, check_deadline, files_search, filescan
from opsgate.logs.backends.files_index import FileVersion, IndexStore, TimeIndex
from opsgate.logs.backends.filescan import IndexedBlock, Needle, backward, bracket, forward, time_index
from opsgate.logs.query import LogQuery
from opsgate.logs.records import LogRecord, leading_time, parse_line
from opsgate.logs.safe_regex import SafeRegex, escape
from opsgate.logs.severity import Severity

EXAMPLES = REPO_ROOT / "examples" / "logs"
GZIP_SUFFIXES = (".gz", ".gzip")
BUILD_YIELD_S = 2.0
"""Longest a background index build pauses, at each of its chunks, for queries searching a file
themselves (they are what a caller waits for; the build then continues)."""
SEARCH_FIRST_MATCHES = 2000
"""Matching lines a query searching a file whose index is not ready reads before it waits for the index
(0: never search first)."""
INHERIT_LOOKBACK = 16 << 10
"""How far back a line without a time looks for the line it continues (a long stack trace)."""


class FileSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="A file or glob; relative paths are relative to the working directory")
    service: str | None = Field(default=None, description="Default: the file name up to its first dot")
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    time_ordered: bool = Field(default=True, description="Lines are in time order: seek by binary search")


def _example_sources() -> list[FileSource]:
    return [FileSource(path=str(EXAMPLES / "*.log*")), FileSource(path=str(EXAMPLES / "*.jsonl*"))]


class FilesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[FileSource] = Field(default_factory=_example_sources)
    namespace: str = "shop"
    max_gzip_mb: int = Field(default=512, ge=1, description="Largest decompressed size of one .gz file")


@dataclass(frozen=True)
class LogFile:
    path: Path
    service: str
    namespace: str
    labels: dict[str, str]
    time_ordered: bool

    @property
    def gzipped(self) -> bool:
        return self.path.suffix in GZIP_SUFFIXES


def _service_of(path: Path) -> str:
    return path.name.split(".", 1)[0]


class _Build:
    """One background build of a file's time index; `error` is what stopped it, if anything did."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None


_DONE = _Build()
_DONE.done.set()


class _Closed(Exception):
    """The backend was closed while an index was being built."""


class FilesBackend:
    name = "files"
    page_cap = 1_000_000
    filters_remotely = False

    def __init__(self, settings: FilesSettings, *, index_dir: Path | None = None, warm: bool = True) -> None:
        """`index_dir`: where time indexes are kept between runs (none: in memory only). `warm`: index the
        files not in time order in a background thread from now on, so that a first query finds it done."""
        self.settings = settings
        self._gzip_cache: OrderedDict[tuple[str, float, int], bytes] = OrderedDict()
        # per path: the (mtime, size) the range was read at, and the range (one entry per file, however
        # often a growing file changes between queries)
        self._range_cache: dict[str, tuple[tuple[float, int], tuple[int | None, int | None]]] = {}
        self._store = IndexStore(index_dir) if index_dir is not None else None
        self._indexes: dict[Path, TimeIndex] = {}
        self._builds: dict[Path, _Build] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._searching = 0  # queries searching a file themselves: background builds pause for them
        self._quiet = threading.Condition()
        self._warming: threading.Thread | None = None
        if warm and any(not source.time_ordered for source in settings.sources):
            self._warming = threading.Thread(target=self._warm, name="opsgate-files-index", daemon=True)
            self._warming.start()

    def files(self) -> list[LogFile]:
        found: dict[Path, LogFile] = {}
        for source in self.settings.sources:
            for name in sorted(glob.glob(os.path.expanduser(source.path))):  # noqa: PTH207, PTH111 (absolute globs)
                path = Path(name)
                if path.is_file() and path not in found:
                    service = source.service or _service_of(path)
                    found[path] = LogFile(
                        path=path,
                        service=service,
                        namespace=source.namespace or self.settings.namespace,
                        labels={"app": service, **source.labels},
                        time_ordered=source.time_ordered,
                    )
        return list(found.values())

    async def fetch(self, query: LogQuery, limit: int, deadline: float) -> Fetched:
        if query.raw_query is not None:
            raise ToolError("the files backend has no native query language: use the typed filter fields")
        records = await anyio.to_thread.run_sync(self._fetch, query, limit, deadline, abandon_on_cancel=True)
        return Fetched(records=records)

    def wait_for_indexes(self, timeout: float) -> bool:
        """Wait until no index build is under way (those started at construction included); False if
        `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = next(iter(self._builds.values()), None)
                warming = self._warming is not None and self._warming.is_alive()
            if pending is None and not warming:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if pending is not None:
                pending.done.wait(left)
            elif self._warming is not None:
                self._warming.join(left)

    async def aclose(self) -> None:
        self._closed.set()  # background builds stop at their next chunk
        with self._quiet:
            self._quiet.notify_all()
        self._gzip_cache.clear()

    # -- in a worker thread ---------------------------------------------------------------------

    def _fetch(self, query: LogQuery, limit: int, deadline: float) -> list[LogRecord]:
        newest = query.order == "newest"
        ranked: list[tuple[int, int, int, LogRecord]] = []
        for index, log_file in enumerate(self.files()):
            if not self._selected(log_file, query):
                continue
            for offset, record in self._file_records(log_file, query, limit, deadline):
                ranked.append((record.ts_ns, index, offset, record))
        best = heapq.nlargest(limit, ranked) if newest else heapq.nsmallest(limit, ranked)
        return [entry[3] for entry in best]

    @staticmethod
    def _selected(log_file: LogFile, query: LogQuery) -> bool:
        if query.services and log_file.service not in query.services:
            return False
        if query.namespace is not None and query.namespace != log_file.namespace:
            return False
        return all(req.matches(log_file.labels) for req in query.selector)

    def _open(self, log_file: LogFile) -> tuple[BinaryIO, int]:
        if not log_file.gzipped:
            try:
                handle = log_file.path.open("rb")
            except OSError as exc:
                raise ToolError(f"cannot read log file {log_file.path}: {exc.strerror}") from None
            return handle, os.fstat(handle.fileno()).st_size
        data = self._gunzip(log_file.path)
        return io.BytesIO(data), len(data)

    def _gunzip(self, path: Path) -> bytes:
        stat = path.stat()
        key = (str(path), stat.st_mtime, stat.st_size)
        cached = self._gzip_cache.get(key)
        if cached is not None:
            self._gzip_cache.move_to_end(key)
            return cached
        limit = self.settings.max_gzip_mb << 20
        try:
            with gzip.open(path, "rb") as stream:
                data = stream.read(limit + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise ToolError(f"corrupt gzip log file {path}: {exc}") from None
        if len(data) > limit:
            raise ToolError(f"gzip log file {path} decompresses to more than max_gzip_mb={self.settings.max_gzip_mb}")
        self._gzip_cache[key] = data
        while sum(len(v) for v in self._gzip_cache.values()) > limit:
            self._gzip_cache.popitem(last=False)
        return data

    def _time_range(self, log_file: LogFile, blob: BinaryIO, size: int) -> tuple[int | None, int | None]:
        """First and last timestamp of a time-ordered file (cached by mtime and size)."""
        stat = log_file.path.stat()
        version = (stat.st_mtime, stat.st_size)
        cached = self._range_cache.get(str(log_file.path))
        if cached is None or cached[0] != version:
            first = last = None
            for _, line in forward(blob, 0, min(size, 1 << 16), None, _always, _never):
                first = parse_line(line.decode("utf-8", errors="replace")).ts_ns
                if first is not None:
                    break
            for _, line in backward(blob, max(0, size - (1 << 16)), size, None, _always, _never):
                last = parse_line(line.decode("utf-8", errors="replace")).ts_ns
                if last is not None:
                    break
            cached = self._range_cache[str(log_file.path)] = (version, (first, last))
        return cached[1]

    def _file_records(
        self, log_file: LogFile, query: LogQuery, limit: int, deadline: float
    ) -> Iterator[tuple[int, LogRecord]]:
        blob, size = self._open(log_file)
        with blob:
            start, stop = 0, size
            if log_file.time_ordered:
                first, last = self._time_range(log_file, blob, size)
                if first is not None and last is not None and (last < query.start_ns or first > query.end_ns):
                    return
                start = bracket(blob, size, query.start_ns)[0]
                stop = bracket(blob, size, query.end_ns + 1)[1]
            elif not log_file.gzipped:
                wanted = FileVersion.of(blob, size)
                searchable = (query.text is not None or query.regex is not None) and SEARCH_FIRST_MATCHES > 0
                found = None
                with self._searching_first(searchable):  # from before a build it starts can read a byte
                    index, build, whole = self._index_or_build(log_file, wanted)
                    if index is None and whole and searchable:
                        found = self._search_first(log_file, blob, size, query, limit, deadline)
                if found is not None:
                    yield from found
                    return
                if index is None:
                    index = self._time_index(log_file, blob, size, deadline, wanted, build)
                yield from self._indexed_scan(log_file, blob, index, query, limit, deadline)
                return
            yield from self._scan(log_file, blob, start, stop, query, limit, deadline)

    def _index_or_build(self, log_file: LogFile, wanted: FileVersion) -> tuple[list[IndexedBlock] | None, _Build, bool]:
        """The index in memory (or stored, then loaded) if it covers the file version a query opened;
        else the background build that will make one (started now unless one is under way), and whether
        that build reads the whole file (no index of an earlier version of it to extend)."""
        with self._lock:
            in_memory = log_file.path in self._indexes
        if not in_memory and self._store is not None:
            stored = self._store.load(log_file.path.absolute(), filescan.BLOCK)
            if stored is not None:
                with self._lock:
                    self._indexes.setdefault(log_file.path, stored)
        with self._lock:
            current = self._indexes.get(log_file.path)
            if current is not None and current.version.covers(wanted):
                return current.blocks, _DONE, False
            build = self._builds.get(log_file.path)
            if build is None:
                build = self._builds[log_file.path] = _Build()
                builder = threading.Thread(target=self._build, args=(log_file, build), name="opsgate-files-index")
                builder.daemon = True
                builder.start()
            return None, build, current is None or not wanted.grew_from(current.version)

    def _search_first(
        self, log_file: LogFile, blob: BinaryIO, size: int, query: LogQuery, limit: int, deadline: float
    ) -> list[tuple[int, LogRecord]] | None:
        """Before a file's index is ready, a text or regex query searches the whole file itself, keeping
        its `limit` best lines; None when it gives up (then it waits for the index, whose build goes on).
        A text term (ASCII) is searched for by `_ranked_search`, however many lines hold it; anything else
        (a regex, a term not in ASCII) is searched for by RE2 over whole blocks, parsing each matching line,
        and gives up after SEARCH_FIRST_MATCHES of them (each costs more than a byte of the build). Index
        builds pause meanwhile (see `_check_open`)."""
        text = query.text
        if text is not None and text.isascii() and "\n" not in text and text:
            return self._ranked_search(log_file, blob, size, query, limit, deadline)
        return self._search_lines(log_file, blob, size, query, limit, deadline)

    @contextmanager
    def _searching_first(self, searching: bool) -> Iterator[None]:
        """While a query may search a file itself, background builds pause (see `_check_open`)."""
        if not searching:
            yield
            return
        with self._quiet:
            self._searching += 1
        try:
            yield
        finally:
            with self._quiet:
                self._searching -= 1
                self._quiet.notify_all()

    def _search_lines(
        self, log_file: LogFile, blob: BinaryIO, size: int, query: LogQuery, limit: int, deadline: float
    ) -> list[tuple[int, LogRecord]] | None:
        newest = query.order == "newest"
        kept: list[tuple[int, int, LogRecord]] = []  # a min-heap on the rank, as in _indexed_scan
        cap = max(SEARCH_FIRST_MATCHES, 4 * limit)
        for seen, (offset, record) in enumerate(self._scan(log_file, blob, 0, size, query, limit, deadline)):
            if seen >= cap:
                return None
            _keep(kept, limit, offset, record, newest)
        return _kept_lines(kept, newest)

    def _ranked_search(
        self, log_file: LogFile, blob: BinaryIO, size: int, query: LogQuery, limit: int, deadline: float
    ) -> list[tuple[int, LogRecord]] | None:
        """The `limit` best lines holding a text term, found by searching the whole file once (see
        `files_search`), however many lines hold it. Each such line that starts with a time (`leading_time`)
        is ranked by that time: read with whole-array operations for lines written like the file's first
        timed line (`TimeLayout`), else one line at a time. Only the lines taken, in rank order, are read
        again and parsed, until `limit` pass every filter. A holding line that starts without a time is
        parsed at once (its time, or the one it inherits), as the index build does.

        It gives up (None: the index answers) after SEARCH_FIRST_MATCHES lines parsed at once or taken and
        failing a filter, for a line longer than a chunk, and for a line taken whose parsed time differs
        from the time it starts with (`{"time": ...}` followed by a `"ts"` key): such a file is left to the
        index. Otherwise the lines kept are those the index gives (it too takes the time a line starts with
        for the time range of its block): the same records, in the same order."""
        import numpy as np  # only files not in time order come here, as to the index build

        assert query.text is not None
        needle = query.text.lower().encode()
        finder = files_search.LineFinder(needle)
        newest = query.order == "newest"
        regex = query.compiled if query.redact is None else None
        text_checked = query.redact is None
        cap = max(SEARCH_FIRST_MATCHES, 4 * limit)
        kept: list[tuple[int, int, LogRecord]] = []  # a min-heap on the rank, as in _indexed_scan
        layout = files_search.TimeLayout.of(_first_line(blob, size))
        positions: list[Any] = []  # (offset, time) of lines ranked by their leading time, in arrays
        times: list[Any] = []
        one_by_one: list[tuple[int, int]] = []  # the same, for lines read one at a time
        parsed = 0
        try:
            for position, buf, cut in files_search.chunks(blob, size):
                check_deadline(deadline, self.name)
                starts = finder.line_starts(np, buf, cut)
                if layout is None and len(starts):
                    layout = files_search.TimeLayout.of(bytes(buf[starts[0] : buf.find(b"\n", starts[0])]))
                if layout is not None and len(starts) >= files_search.WHOLE_ARRAY_LINES:
                    fits, ns = layout.times(np, buf, starts)
                    positions.append(starts[fits] + position)
                    times.append(ns[fits])
                    starts = starts[~fits]
                for start in starts.tolist():
                    raw = bytes(buf[start : buf.find(b"\n", start)])
                    if needle not in raw.lower():
                        continue
                    quick = leading_time(raw)
                    if quick is not None:
                        one_by_one.append((position + start, quick))
                        continue
                    parsed += 1
                    if parsed > cap:
                        return None
                    record = self._line_record(log_file, blob, position + start, raw, query, regex, text_checked)
                    if record is not None:
                        _keep(kept, limit, position + start, record, newest)
        except files_search.LineTooLong:
            return None
        if one_by_one:
            positions.append(np.array([o for o, _ in one_by_one], dtype=np.int64))
            times.append(np.array([t for _, t in one_by_one], dtype=np.int64))
        if not positions:
            return _kept_lines(kept, newest)
        offsets, stamps = np.concatenate(positions), np.concatenate(times)
        inside = (stamps >= query.start_ns) & (stamps <= query.end_ns)
        offsets, stamps = offsets[inside], stamps[inside]
        taken = 0
        for row in files_search.ranked(np, stamps, offsets, newest, limit):
            if taken >= limit:
                break  # the next ones rank below every line taken
            offset, stamp = int(offsets[row]), int(stamps[row])
            line = _line_at(blob, offset, size)
            record = None
            if line is not None and needle in line.lower():  # else the file changed since it was searched
                record = self._line_record(log_file, blob, offset, line, query, regex, text_checked, quick=stamp)
            if record is None:
                parsed += 1
                if parsed > cap:
                    return None
                continue
            if record.ts_ns != stamp:
                return None
            taken += 1
            _keep(kept, limit, offset, record, newest)
        return _kept_lines(kept, newest)

    def _time_index(
        self, log_file: LogFile, blob: BinaryIO, size: int, deadline: float, wanted: FileVersion, build: _Build
    ) -> list[IndexedBlock]:
        """The index `build` makes, waited for until the deadline. Should the file have changed while it
        was built (rotated, truncated, rewritten), or not be readable by its path, the version this
        query opened is indexed for this query."""
        if not build.done.wait(min(max(0.0, deadline - time.monotonic()), threading.TIMEOUT_MAX)):
            raise DeadlinePassed(
                f"the time index of {log_file.path.name} (not in time order) is still being built and goes on "
                "in the background: retry shortly"
            )
        if isinstance(build.error, _Closed):
            raise BackendUnavailable("the files backend was closed")
        with self._lock:
            current = self._indexes.get(log_file.path)
        if current is not None and current.version.covers(wanted):
            return current.blocks
        grown = current is not None and wanted.grew_from(current.version)
        blocks = time_index(
            blob, size, lambda: check_deadline(deadline, self.name), after=current.blocks if grown and current else None
        )
        with self._lock:
            latest = self._indexes.get(log_file.path)
            if latest is None or wanted.grew_from(latest.version):
                self._indexes[log_file.path] = TimeIndex(wanted, filescan.BLOCK, blocks)
        return blocks

    def _build(self, log_file: LogFile, build: _Build) -> None:
        """Index the file now at `log_file.path`: take the index in memory or on disk as it is if the file
        is unchanged, extend it if the file only grew, else build it anew; keep it in memory and on disk."""
        try:
            with log_file.path.open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                version = FileVersion.of(handle, size)
                with self._lock:
                    prior = self._indexes.get(log_file.path)
                key = log_file.path.absolute()
                if prior is None and self._store is not None:
                    prior = self._store.load(key, filescan.BLOCK)
                if prior is not None and prior.version == version:
                    index = prior
                else:
                    after = prior.blocks if prior is not None and version.grew_from(prior.version) else None
                    index = TimeIndex(version, filescan.BLOCK, time_index(handle, size, self._check_open, after=after))
                    if self._store is not None and (after is None or len(index.blocks) != len(after)):
                        self._store.save(key, index)  # not when only the last block grew: extending redoes it
            with self._lock:
                latest = self._indexes.get(log_file.path)
                if latest is None or not latest.version.grew_from(index.version):
                    self._indexes[log_file.path] = index
        except BaseException as exc:  # handed to the queries waiting for this build
            build.error = exc
        finally:
            with self._lock:
                if self._builds.get(log_file.path) is build:
                    del self._builds[log_file.path]
            build.done.set()

    def _warm(self) -> None:
        """Index every file not in time order, one after another (a file a query asked for first is
        being built by that query's build: skipped here)."""
        files_search.preload()  # the search engine's module, so that a first query does not import it
        try:
            log_files = self.files()
        except Exception:  # a query reports what is wrong with the sources
            return
        for log_file in log_files:
            if self._closed.is_set():
                return
            if log_file.time_ordered or log_file.gzipped:
                continue
            with self._lock:
                if log_file.path in self._builds or log_file.path in self._indexes:
                    continue
                build = self._builds[log_file.path] = _Build()
            self._build(log_file, build)
        if self._store is not None and not self._closed.is_set():
            self._store.prune()

    def _check_open(self) -> None:
        """A background build's tick: stop if the backend closed; pause (up to BUILD_YIELD_S) while
        queries search a file themselves, so that on a busy machine the build does not slow them."""
        with self._quiet:
            self._quiet.wait_for(lambda: self._searching == 0 or self._closed.is_set(), timeout=BUILD_YIELD_S)
        if self._closed.is_set():
            raise _Closed

    def _indexed_scan(
        self, log_file: LogFile, blob: BinaryIO, index: list[IndexedBlock], query: LogQuery, limit: int, deadline: float
    ) -> Iterator[tuple[int, LogRecord]]:
        """The `limit` newest (or oldest) matches of a file not in time order: its blocks are read newest
        (oldest) first by their time range, and reading stops once no unread block can hold a line that
        would displace one of the `limit` kept; blocks outside the window are never read."""
        newest = query.order == "newest"
        # (rank of the block's best line, block): newest first ranks by latest time, oldest first by earliest
        ranked = [
            (b.max_ns if newest else -b.min_ns, b)
            for b in index
            if b.min_ns is not None and b.max_ns is not None and b.max_ns >= query.start_ns and b.min_ns <= query.end_ns
        ]
        ranked.sort(key=lambda pair: pair[0], reverse=True)
        kept: list[tuple[int, int, LogRecord]] = []  # a min-heap on the rank (newest: time, then offset)
        for best, block in ranked:
            if len(kept) >= limit and best < kept[0][0]:
                break  # no line of this block (or of any later one) outranks the worst kept
            for offset, record in self._scan(log_file, blob, block.start, block.end, query, limit, deadline):
                _keep(kept, limit, offset, record, newest)
        yield from _kept_lines(kept, newest)

    def _scan(
        self, log_file: LogFile, blob: BinaryIO, start: int, stop: int, query: LogQuery, limit: int, deadline: float
    ) -> Iterator[tuple[int, LogRecord]]:
        needle = query.text.lower().encode() if query.text is not None and query.text.isascii() else None
        finder = _finder(query.text) if needle is not None and query.text is not None else None
        # Under redaction the regex runs only on the redacted line (query.matches_text): a raw-bytes prefilter
        # would make "matches" depend on the masked secret. A plain `text` needle stays a raw prefilter (it
        # cannot match across a mask) and is checked again on the redacted line.
        regex = query.compiled if query.redact is None else None

        def block_ok(block: bytes) -> bool:
            return regex is None or regex.search_bytes(block)

        def tick() -> None:
            check_deadline(deadline, self.name)

        newest = query.order == "newest" and log_file.time_ordered
        lines = (backward if newest else forward)(blob, start, stop, needle, block_ok, tick, finder)
        text_checked = needle is not None and query.redact is None
        found = 0
        for offset, raw in lines:
            record = self._line_record(log_file, blob, offset, raw, query, regex, text_checked)
            if record is None:
                continue
            yield offset, record
            found += 1
            if found >= limit and log_file.time_ordered:
                return

    def _line_record(
        self,
        log_file: LogFile,
        blob: BinaryIO,
        offset: int,
        raw: bytes,
        query: LogQuery,
        regex: SafeRegex | None,
        text_checked: bool,
        quick: int | None = None,
    ) -> LogRecord | None:
        """The record of one line the byte filters let through if it passes the whole query; None if not.
        `regex`: the query's regex when it may run on raw bytes (no redaction); `text_checked`: the line is
        known to hold `text` and no redaction applies; `quick`: its leading time if already known."""
        if regex is not None and not regex.search_bytes(raw):
            return None
        if quick is None:
            quick = leading_time(raw)
        if quick is not None and not query.start_ns <= quick <= query.end_ns:
            return None
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        if not text_checked and not query.matches_text(text):
            return None
        record = self._record(log_file, blob, offset, text)
        if record is None or not query.matches_record(record):
            return None
        return record

    def _record(self, log_file: LogFile, blob: BinaryIO, offset: int, text: str) -> LogRecord | None:
        parsed = parse_line(text)
        ts, level = parsed.ts_ns, parsed.level
        if ts is None:
            ts, level = _inherited(blob, offset)
            if ts is None:
                return None
        return LogRecord(
            ts_ns=ts,
            service=log_file.service,
            level=level,
            message=parsed.message,
            source=log_file.path.name,
            labels=log_file.labels,
        )


def _keep(kept: list[tuple[int, int, LogRecord]], limit: int, offset: int, record: LogRecord, newest: bool) -> None:
    """Keep `record` in `kept`, a min-heap of the `limit` best lines so far (newest first: by time, then
    offset; oldest first: the reverse)."""
    entry = (record.ts_ns, offset, record) if newest else (-record.ts_ns, -offset, record)
    if len(kept) < limit:
        heapq.heappush(kept, entry)
    elif entry[:2] > kept[0][:2]:
        heapq.heapreplace(kept, entry)


def _kept_lines(kept: list[tuple[int, int, LogRecord]], newest: bool) -> list[tuple[int, LogRecord]]:
    """(offset, record) of the lines `_keep` kept, unordered (the caller ranks them)."""
    return [(position if newest else -position, record) for _rank, position, record in kept]


def _first_line(blob: BinaryIO, size: int) -> bytes:
    blob.seek(0)
    return blob.read(min(size, 4096)).split(b"\n", 1)[0]


def _line_at(blob: BinaryIO, offset: int, size: int) -> bytes | None:
    """The line starting at `offset` (without its line end), read again; None if the file ends first."""
    want = 512
    while True:
        blob.seek(offset)
        data = blob.read(min(want, size - offset))
        if not data:
            return None
        end = data.find(b"\n")
        if end >= 0:
            return data[:end]
        if len(data) < min(want, size - offset) or offset + len(data) >= size:
            return data
        want *= 4


def _inherited(blob: BinaryIO, offset: int) -> tuple[int | None, Severity | None]:
    """Time and level of the nearest earlier line that has a time (continuation lines, stack traces)."""
    start = max(0, offset - INHERIT_LOOKBACK)
    for _, line in backward(blob, start, offset, None, _always, _never):
        parsed = parse_line(line.decode("utf-8", errors="replace"))
        if parsed.ts_ns is not None:
            return parsed.ts_ns, parsed.level
    return None, None


@functools.lru_cache(maxsize=64)
def _finder(text: str) -> Needle | None:
    """A case-insensitive RE2 search for `text`: finds candidate lines without lowering whole blocks.
    Cached: `_indexed_scan` calls `_scan` once per block read, and each compile costs about 34 us."""
    try:
        return SafeRegex("(?i)" + escape(text))
    except ValueError:
        return None


def _always(_: bytes) -> bool:
    return True


def _never() -> None:
    return None
