"""Searching a whole log file for a text term before its time index exists, at the speed of the search.

Three parts, each cheap per byte or per match:
- `chunks`: the file read in large chunks (each cut at its last line end) into one buffer; copies, not a
  memory map: a file truncated while it is read gives a short read, not a SIGBUS. (Reading the next
  chunk in a thread of its own while this one is searched was measured no faster on 2 busy cores.)
- `LineFinder`: the start of each line holding the term, case-insensitively (ASCII), by Hyperscan (a
  SIMD literal search) where it is installed, else by RE2.
- `TimeLayout`: the time at the start of each of those lines, with whole-array (numpy) operations, for
  lines written exactly like the file's first timed line (the same key or prefix, digits, separators and
  zone, as the time index's template); the caller reads the time of any other line one at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from opsgate.logs.backends.filescan import _AFTER_BARE_TIME, _Template
from opsgate.logs.safe_regex import SafeRegex, escape
from opsgate.logs.timeparse import log_time_ns

CHUNK = 8 << 20
"""Bytes read (and searched) at a time: a line longer than this is left to the index."""
PAD = 128
"""Spare bytes after a chunk, so that a time read at any line start stays inside the buffer."""

WHOLE_ARRAY_LINES = 32
"""Lines found in a chunk from which their times are read with whole-array operations (fewer: one by
one, which costs less than the arrays' fixed cost)."""
_MIN_YEAR, _MAX_YEAR = 1678, 2261  # the times whose nanoseconds fit in 64 bits
_DAYS_IN_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def chunks(blob: BinaryIO, size: int, chunk: int | None = None) -> Iterator[tuple[int, bytearray, int]]:
    """Chunks of bytes [0, size) of `blob`, in order, read into one buffer: `(position,
    buffer, cut)` where `buffer[:cut]` holds whole lines (the last one lacks its line end only at the end
    of the file) and `buffer[cut]` is a line end. The buffer is overwritten by the next chunk. A line
    longer than `chunk` raises `LineTooLong`. A file that shrank while it is read ends early."""
    chunk = chunk or CHUNK
    buf = bytearray(chunk + PAD)
    view = memoryview(buf)
    position = 0
    while position < size:
        want = min(chunk, size - position)
        blob.seek(position)
        n = blob.readinto(view[:want])  # type: ignore[attr-defined]
        if not n:
            return  # the file shrank while it was read
        if position + n >= size or n < want:
            cut = n  # the end of the file (or of what is left of it)
        else:
            cut = buf.rfind(b"\n", 0, n)
            if cut < 0:
                raise LineTooLong
        buf[cut] = 0x0A  # ends the last line for the time check (it is one already but at the end)
        yield position, buf, cut
        if cut == n:
            return
        position += cut + 1


class LineTooLong(Exception):
    """A line longer than a chunk."""


def preload() -> None:
    """Import the search engine's module now (from a background thread: it takes about 10 ms)."""
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return


class LineFinder:
    """Line starts (offsets in a chunk, ascending, each once) of the lines holding `needle` (lower-case
    ASCII without a line end), in any ASCII case. May find a line that does not hold it (never misses
    one): the caller checks each line it uses."""

    def __init__(self, needle: bytes) -> None:
        self.needle = needle
        self._scan: Callable[[bytearray, int, Callable[..., Any]], None] | None = None
        try:
            import hyperscan  # optional: a SIMD literal search, several times faster than RE2 here
        except ImportError:
            pass
        else:
            try:
                database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
                database.compile(
                    expressions=[needle], ids=[0], elements=1, flags=[hyperscan.HS_FLAG_CASELESS], literal=True
                )
            except Exception:  # an older binding or a CPU it does not support: RE2 instead
                database = None
            if database is not None:

                def scan(buf: bytearray, end: int, found: Callable[..., Any]) -> None:
                    database.scan(memoryview(buf)[:end], match_event_handler=found)  # type: ignore[type-var]

                self._scan = scan
        self._regex = SafeRegex("(?i)" + escape(needle.decode("ascii"))) if self._scan is None else None

    @property
    def engine(self) -> str:
        return "hyperscan" if self._scan is not None else "re2"

    def line_starts(self, np: Any, buf: bytearray, end: int) -> Any:
        rfind = buf.rfind
        found: list[int] = []
        append = found.append
        if self._scan is not None:

            def on_match(_id: int, _start: int, stop: int, _flags: int, _context: object) -> None:
                append(rfind(b"\n", 0, stop))

            self._scan(buf, end, on_match)
        else:
            assert self._regex is not None
            for match in self._regex.finditer_bytes(buf, end):  # type: ignore[arg-type]
                append(rfind(b"\n", 0, match.start()))
        starts = np.array(found, dtype=np.int64)
        starts += 1
        if len(starts) > 1:
            starts = starts[np.concatenate(([True], starts[1:] != starts[:-1]))]
        return starts


class TimeLayout:
    """Times of lines written like a template line (see `filescan._Template`), as int64 nanoseconds, with
    whole-array operations: a line fits when it has the template's prefix, a digit wherever the template
    has one and its separators and zone byte for byte (without a zone: no further digit, fraction or
    zone after the time), and its digits make a valid date and time. Its time is then exactly what
    `records.leading_time` gives for it (checked on the template line itself when the layout is made)."""

    def __init__(self, template: _Template, zone_ns: int) -> None:
        self.template = template
        self.zone_ns = zone_ns
        text = template.prefix + template.shape + template.zone
        self.length = len(text)
        self._text = text
        base = len(template.prefix)
        self._digits = [base + i for i, c in enumerate(template.shape) if 0x30 <= c <= 0x39]
        self._literals = [i for i in range(self.length) if i not in set(self._digits)]
        fraction = template.shape[20:]
        self._fraction = (base + 20, len(fraction)) if fraction else None

    @classmethod
    def of(cls, line: bytes) -> TimeLayout | None:
        """The layout of `line`'s leading time, or None when it has none this class can read."""
        template = _Template.of(line)
        if template is None or len(template.shape) not in (19, *range(21, 30)):
            return None
        zone_ns = log_time_ns("1970-01-01T00:00:00" + template.zone.decode())
        if zone_ns is None:
            return None
        layout = cls(template, zone_ns)
        try:
            import numpy as np
        except ImportError:
            return None
        buf = bytearray(line + b"\n" + bytes(PAD))
        fits, times = layout.times(np, buf, np.zeros(1, dtype=np.int64))
        at = len(template.prefix)
        expected = log_time_ns((line[at : at + len(template.shape)] + template.zone).decode())
        return layout if bool(fits[0]) and int(times[0]) == expected else None

    def times(self, np: Any, buf: bytearray, starts: Any) -> tuple[Any, Any]:
        """(fits, nanoseconds) for the lines starting at `starts` in `buf` (each line ended by a line end
        in `buf`, with PAD bytes after the last); nanoseconds are meaningless where `fits` is False."""
        data = np.frombuffer(buf, dtype=np.uint8)
        rows = data[starts[:, None] + np.arange(self.length + 1, dtype=np.int64)]
        expected = np.frombuffer(self._text, dtype=np.uint8)
        fits = (rows[:, self._literals] == expected[self._literals]).all(axis=1)
        digits = rows[:, self._digits].astype(np.int64) - 0x30
        fits &= ((digits >= 0) & (digits <= 9)).all(axis=1)
        if not self.template.zone:
            after = np.zeros(256, dtype=bool)
            after[list(_AFTER_BARE_TIME)] = True
            fits &= ~after[rows[:, self.length]]

        def number(first: int, count: int) -> Any:
            value = digits[:, first]
            for k in range(first + 1, first + count):
                value = value * 10 + digits[:, k]
            return value

        year, month, day = number(0, 4), number(4, 2), number(6, 2)
        hour, minute, second = number(8, 2), number(10, 2), number(12, 2)
        leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
        month_days = np.array(_DAYS_IN_MONTH, dtype=np.int64)[np.clip(month, 0, 12)] + ((month == 2) & leap)
        fits &= (year >= _MIN_YEAR) & (year <= _MAX_YEAR) & (month >= 1) & (month <= 12)
        fits &= (day >= 1) & (day <= month_days) & (hour <= 23) & (minute <= 59) & (second <= 59)
        # days since 1970-01-01 of a proleptic Gregorian date (years from 1 on: `era` is never negative)
        y = year - (month <= 2)
        era = y // 400
        yoe = y - era * 400
        doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
        days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
        ns = ((days * 86400 + hour * 3600 + minute * 60 + second) * 1_000_000_000) + self.zone_ns
        if self._fraction is not None:
            count = self._fraction[1]
            value = number(14, count)
            ns += value * 10 ** (9 - count)
        return fits, ns


def ranked(np: Any, stamps: Any, offsets: Any, newest: bool, first: int) -> Iterator[int]:
    """Rows of (`stamps`, `offsets`) in rank order: newest first by time then offset (oldest first: the
    reverse), sorting only about the `first` best, then four times more at each step, while more are
    asked for."""
    left = np.arange(len(stamps))
    want = max(1, first)
    while len(left):
        values = stamps[left]
        if len(values) > 2 * want:
            if newest:
                bound = np.partition(values, len(values) - want)[len(values) - want]
                pick = values >= bound  # every line at the bound's time too: ties are ordered below
            else:
                bound = np.partition(values, want - 1)[want - 1]
                pick = values <= bound
        else:
            pick = np.ones(len(values), dtype=bool)
        chosen = left[pick]
        order = chosen[np.lexsort((offsets[chosen], stamps[chosen]))]
        yield from (order[::-1] if newest else order).tolist()
        left = left[~pick]
        want *= 4
