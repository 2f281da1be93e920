"""Reading one time-ordered log file by byte offsets: binary search for a time, then read a region
forwards or backwards in blocks, handing on only the lines that pass cheap byte-level filters.

The cost of a window query grows with the window, not the file: `bracket` probes about
log2(size / PROBE_SPAN) lines, and only the bytes between the two offsets are read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from opsgate.logs.records import leading_time, parse_line
from opsgate.logs.timeparse import log_time_ns

BLOCK = 1 << 20
PROBE_SPAN = 1 << 16
_MAX_PROBE_LINES = 64
_TIME_PREFIX = re.compile(
    rb'^((?:\{"(?:ts|time|timestamp|@timestamp)": ?"|(?:ts|time)=)?)'
    rb"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?)(Z|[+-]\d\d:?\d\d)?"
)


class Needle(Protocol):
    """A case-insensitive search that may find more than the exact needle (never less)."""

    def finditer_bytes(self, data: bytes, endpos: int | None = None) -> Iterator[re.Match[bytes]]:
        """Matches in `data[:endpos]` (a `SafeRegex` is one)."""
        ...


def _first_time_after(blob: BinaryIO, offset: int, end: int) -> tuple[int, int | None]:
    """The start of the first full line at or after `offset` and the first timestamp from there on."""
    blob.seek(offset)
    if offset > 0:
        blob.seek(offset - 1)
        if blob.read(1) != b"\n":
            blob.readline()
    line_start = blob.tell()
    position = line_start
    for _ in range(_MAX_PROBE_LINES):
        if position >= end:
            break
        line = blob.readline()
        if not line:
            break
        ts = parse_line(line.decode("utf-8", errors="replace")).ts_ns
        if ts is not None:
            return line_start, ts
        position += len(line)
    return line_start, None


def bracket(blob: BinaryIO, size: int, target_ns: int) -> tuple[int, int]:
    """Line-start offsets (lo, hi) of a time-ordered file such that every line before `lo` is older
    than `target_ns` and every line from `hi` on is at least as new."""
    lo, hi = 0, size
    while hi - lo > PROBE_SPAN:
        mid = (lo + hi) // 2
        line_start, ts = _first_time_after(blob, mid, hi)
        if ts is None or line_start >= hi:
            hi = mid
        elif ts < target_ns:
            lo = line_start
        else:
            hi = mid
    return lo, (size if hi >= size else _first_time_after(blob, hi, size)[0])


def _line_spans(
    block: bytes, needle: bytes | None, finder: Needle | None = None, limit: int | None = None
) -> Iterator[tuple[int, int]]:
    """(start, end) of lines in `block[:limit]` (which ends at a line end); with `needle`, only lines
    that contain it, case-insensitively (needle lower-case ASCII). `finder` (a case-insensitive RE2
    search for the needle) locates candidates without lowering the whole block; each is checked exactly."""
    size = len(block) if limit is None else limit
    if needle is None:
        start = 0
        while start < size:
            end = block.find(b"\n", start, size)
            if end < 0:
                end = size
            yield start, end
            start = end + 1
        return
    if finder is not None:
        last_end = -1
        for match in finder.finditer_bytes(block, size):
            hit = match.start()
            if hit <= last_end:
                continue
            start = block.rfind(b"\n", 0, hit) + 1
            end = block.find(b"\n", hit, size)
            if end < 0:
                end = size
            last_end = end
            if needle in block[start:end].lower():
                yield start, end
        return
    lowered = block[:size].lower()
    position = 0
    while True:
        hit = lowered.find(needle, position)
        if hit < 0:
            return
        start = lowered.rfind(b"\n", 0, hit) + 1
        end = lowered.find(b"\n", hit)
        if end < 0:
            end = size
        yield start, end
        position = end + 1


Prefilter = Callable[[bytes], bool]


def forward(
    blob: BinaryIO,
    start: int,
    stop: int,
    needle: bytes | None,
    block_ok: Prefilter,
    tick: Callable[[], None],
    finder: Needle | None = None,
) -> Iterator[tuple[int, bytes]]:
    """(offset, line) in file order for lines in [start, stop) that pass the byte filters.

    Each read starts at a line start and is searched up to its last line end, in place (no copies of
    blocks); the next read starts after it. A line longer than a read is read again with a larger one.
    `block_ok` may see a partial line after the last line end: it only prefilters."""
    position, want = start, BLOCK
    while position < stop:
        tick()
        blob.seek(position)
        data = blob.read(min(want, stop - position))
        if not data:
            return  # the file shrank while it was read
        cut = data.rfind(b"\n") + 1 if position + len(data) < stop else len(data)
        if cut == 0:
            want *= 2
            continue
        want = BLOCK
        if block_ok(data):
            for s, e in _line_spans(data, needle, finder, cut):
                if e > s:
                    yield position + s, data[s:e]
        position += cut


def backward(
    blob: BinaryIO,
    start: int,
    stop: int,
    needle: bytes | None,
    block_ok: Prefilter,
    tick: Callable[[], None],
    finder: Needle | None = None,
) -> Iterator[tuple[int, bytes]]:
    """(offset, line) in reverse file order for lines in [start, stop) that pass the byte filters."""
    position = stop
    carry = b""
    while position > start:
        tick()
        read_from = max(start, position - BLOCK)
        blob.seek(read_from)
        data = blob.read(position - read_from) + carry
        position = read_from
        if position > start:
            first_newline = data.find(b"\n")
            if first_newline < 0:
                carry = data
                continue
            carry, block, base = data[: first_newline + 1], data[first_newline + 1 :], position + first_newline + 1
        else:
            carry, block, base = b"", data, position
        if block_ok(block):
            spans = list(_line_spans(block, needle, finder))
            for s, e in reversed(spans):
                if e > s:
                    yield base + s, block[s:e]


# -- a time index for files that are not in time order ------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndexedBlock:
    """A run of whole lines and the range of their times (inherited times of continuation lines included);
    None when no line in it has a time."""

    start: int
    end: int
    min_ns: int | None
    max_ns: int | None
    last_ns: int | None = None  # the time a continuation line right after this block inherits


Times = tuple[int | None, int | None, int | None]
"""(earliest, latest, last) time of a block's lines."""


def _line_times(block: bytes, carried: int | None) -> Times:
    """(min, max, last) time of the lines in `block`, one line at a time (the general, slow path)."""
    low = high = None
    last = carried
    for line in block.split(b"\n"):
        if not line:
            continue
        ts = leading_time(line)
        if ts is None:
            ts = parse_line(line.decode("utf-8", errors="replace")).ts_ns
        if ts is None:
            ts = last  # a continuation line: the time of the line it continues
        else:
            last = ts
        if ts is not None:
            low = ts if low is None or ts < low else low
            high = ts if high is None or ts > high else high
    return low, high, last


CHUNK_BLOCKS = 16
"""Blocks read (and analysed with whole-array operations) at a time by `time_index`."""
_PAD = 128
_AFTER_BARE_TIME = b"0123456789.,Z+-"
"""Bytes that may not follow a time written without a zone: a longer fraction or a zone there would make
the line's time differ from the text a template reads."""
_LOW7 = 0x7F7F7F7F7F7F7F7F


@dataclass(frozen=True)
class _Template:
    """How a file's first timed line writes its time: the bytes before it (`{"ts":"`, `ts=` or none), its
    layout (`shape`: digits and separators) and its zone. Times of lines written exactly alike compare as
    text in time order, so a block whose every line fits needs no per-line parsing: its lines are checked
    and compared with whole-array (numpy) operations, eight bytes at a time."""

    prefix: bytes
    shape: bytes
    zone: bytes

    @classmethod
    def of(cls, line: bytes) -> _Template | None:
        match = _TIME_PREFIX.match(line)
        if match is None:
            return None
        return cls(match.group(1), match.group(2), match.group(3) or b"")

    @property
    def length(self) -> int:
        return len(self.prefix) + len(self.shape) + len(self.zone)

    def time_ns(self, shape_text: bytes) -> int | None:
        return log_time_ns((shape_text + self.zone).decode())

    def word_checks(self) -> list[tuple[int, list[tuple[int, int, int, int]]]]:
        """The 8-byte words to read from a line start to check it fits, as runs of consecutive words:
        (offset of the run, [(expected, add, high, time mask) per word]), little-endian: the prefix's
        words, then the time's (and zone's). With `x = word ^ expected`, every literal byte of x is 0 and
        every digit byte 0..9 exactly when `((x & 0x7F..) + add | x) & high` is 0 (add is 0x7F on a
        literal byte, 0x76 on a digit byte: no byte carries into the next). `time mask` keeps the bytes
        of the time text, which compare in time order once byte-swapped (0 for a prefix word)."""
        runs = []
        for base, text, timed in ((0, self.prefix, False), (len(self.prefix), self.shape + self.zone, True)):
            words = []
            for word in range(0, len(text), 8):
                expected, add, high, mask = bytearray(8), bytearray(8), bytearray(8), bytearray(8)
                for j, i in enumerate(range(word, min(word + 8, len(text)))):
                    digit = timed and i < len(self.shape) and 0x30 <= text[i] <= 0x39
                    expected[j] = 0x30 if digit else text[i]
                    add[j] = 0x76 if digit else 0x7F
                    high[j] = 0x80
                    mask[j] = 0xFF if timed and i < len(self.shape) else 0
                words.append(tuple(int.from_bytes(v, "little") for v in (expected, add, high, mask)))
            if words:
                runs.append((base, words))
        return runs  # type: ignore[return-value]


class _Chunk:
    """Whole lines' facts of `n` bytes read into `buf` (which has _PAD spare bytes after them): where each
    line starts and ends and, once a template is known, whether it fits the template and its time as
    words that compare in time order. `words` is `buf` seen as aligned little-endian 8-byte words."""

    def __init__(self, np: Any, buf: Any, words: Any, n: int) -> None:
        self.np, self.buf, self.words, self.n = np, buf, words, n
        buf[n] = 0x0A  # what follows the last line, for the byte-after check of a time at the very end
        self.newlines = np.flatnonzero(buf[:n] == 0x0A)
        starts = np.empty(len(self.newlines) + 1, dtype=np.int64)
        starts[0] = 0
        starts[1:] = self.newlines + 1
        ends = np.empty_like(starts)
        ends[:-1] = self.newlines
        ends[-1] = n
        keep = len(starts) - (1 if starts[-1] == n else 0)
        self.starts, self.ends = starts[:keep], ends[:keep]
        self.fits: Any = None
        self.keys: list[Any] = []

    def words_at(self, at: Any, count: int) -> list[Any]:
        """The `count` consecutive little-endian 8-byte words from each offset in `at`, each put together
        from two aligned words (gathering aligned words is several times faster than unaligned ones)."""
        np = self.np
        index = at >> 3
        shift = ((at & 7) << 3).astype(np.uint64)
        back = (np.uint64(64) - shift) & np.uint64(63)
        carry = (shift != 0).astype(np.uint64) * np.uint64(0xFFFFFFFFFFFFFFFF)  # no high part when aligned
        parts = [self.words[index + k] for k in range(count + 1)]
        return [(parts[k] >> shift) | ((parts[k + 1] << back) & carry) for k in range(count)]

    def match(self, template: _Template) -> None:
        np, starts = self.np, self.starts
        bad = np.zeros(len(starts), dtype=np.uint64)
        self.keys = []
        for offset, checks in template.word_checks():
            words = self.words_at(starts + offset, len(checks))
            for word, (expected, add, high, mask) in zip(words, checks, strict=True):
                x = word ^ np.uint64(expected)
                bad |= (((x & np.uint64(_LOW7)) + np.uint64(add)) | x) & np.uint64(high)
                if mask:
                    self.keys.append((word & np.uint64(mask)).byteswap())
        fits = (bad == 0) & (starts + template.length <= self.ends)
        if not template.zone:
            after = np.zeros(256, dtype=bool)
            after[list(_AFTER_BARE_TIME)] = True
            fits &= ~after[self.buf[starts + template.length]]
        self.fits = fits

    def last_line_end(self, start: int, limit: int) -> int:
        """The end (after its newline) of the last whole line in [start, limit), or 0 when none ends there."""
        k = int(self.np.searchsorted(self.newlines, limit, side="left")) - 1
        return int(self.newlines[k]) + 1 if k >= 0 and self.newlines[k] >= start else 0

    def block_times(self, template: _Template, start: int, end: int) -> Times | None:
        """(min, max, last) time of the lines in [start, end) when every one fits the template (start is a
        line start, end a line end or the end of the data); None otherwise."""
        np = self.np
        if start > 0 and self.buf[start - 1] != 0x0A:
            return None
        first = int(np.searchsorted(self.starts, start))
        stop = int(np.searchsorted(self.starts, end))
        if stop <= first or self.ends[stop - 1] > end or not self.fits[first:stop].all():
            return None
        low, high = (self._extreme(first, stop, biggest) for biggest in (False, True))
        return self._time(template, low), self._time(template, high), self._time(template, stop - 1)

    def _extreme(self, first: int, stop: int, biggest: bool) -> int:
        """The row of the earliest (latest) time in rows [first, stop): words compared in turn."""
        np = self.np
        rows = None
        for column in self.keys:
            values = column[first:stop] if rows is None else column[first:stop][rows]
            best = values.max() if biggest else values.min()
            hits = np.flatnonzero(values == best)
            rows = hits if rows is None else rows[hits]
            if len(rows) == 1:
                break
        assert rows is not None
        return first + int(rows[0])

    def _time(self, template: _Template, row: int) -> int | None:
        at = int(self.starts[row]) + len(template.prefix)
        return template.time_ns(self.buf[at : at + len(template.shape)].tobytes())


def time_index(
    blob: BinaryIO, size: int, tick: Callable[[], None], after: list[IndexedBlock] | None = None
) -> list[IndexedBlock]:
    """Blocks of about BLOCK bytes (cut after a line end) with the range of their lines' times, for files
    not in time order.

    Read CHUNK_BLOCKS blocks at a time into one buffer (copies, not a memory map: a file truncated while it
    is read gives a short read, not a SIGBUS). Lines written alike (the same time prefix, layout and zone,
    as JSON-lines and logfmt writers do) are checked and compared with whole-array operations; a block
    with any other line falls back to parsing each of its lines. Built once per file version and cached
    by the caller; `after`, the index of the same file before it grew, is kept but for its last block
    (which may have ended mid-line)."""
    import numpy as np  # only files not in time order need it: kept out of start-up

    blocks: list[IndexedBlock] = list(after[:-1]) if after else []
    position = after[-1].start if after else 0
    carried: int | None = blocks[-1].last_ns if blocks else None
    template: _Template | None = None
    capacity = BLOCK * CHUNK_BLOCKS
    buf = np.zeros(capacity + _PAD, dtype=np.uint8)  # capacity and _PAD are multiples of 8
    words = buf.view("<u8")  # aligned: numpy allocates at least 16-byte aligned
    while position < size:
        tick()
        blob.seek(position)
        n = blob.readinto(buf.data[: min(capacity, size - position)])  # type: ignore[attr-defined]
        if not n:
            break  # the file shrank while it was read: index what there was
        if n < min(capacity, size - position):
            size = position + n
        chunk = _Chunk(np, buf, words, n)
        matched = False
        offset = 0
        while offset < n:
            if offset:
                tick()  # at every block: a background build pauses soon after a query starts searching
            if size - position - offset <= BLOCK:
                if position + n < size:
                    break  # the last block runs past this chunk: read it with the next one
                end = n  # the rest of the file is one block
            elif offset + BLOCK > n:
                break  # the block runs past this chunk: read it with the next one
            else:
                end = chunk.last_line_end(offset, offset + BLOCK) or offset + BLOCK  # a longer line: cut it
            if template is None:
                template = _Template.of(buf[offset : min(end, offset + 256)].tobytes().split(b"\n", 1)[0])
            times = None
            if template is not None:
                if not matched:
                    chunk.match(template)
                    matched = True
                times = chunk.block_times(template, offset, end)
            low_ns, high_ns, carried = times if times is not None else _line_times(buf[offset:end].tobytes(), carried)
            blocks.append(IndexedBlock(position + offset, position + end, low_ns, high_ns, carried))
            offset = end
        position += offset
    return blocks
