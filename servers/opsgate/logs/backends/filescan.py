"""Reading one time-ordered log file by byte offsets: binary search for a time, then read a region
forwards or backwards in blocks, handing on only the lines that pass cheap byte-level filters.

The cost of a window query grows with the window, not the file: `bracket` probes about
log2(size / PROBE_SPAN) lines, and only the bytes between the two offsets are read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from opsgate.logs.records import leading_time, parse_line
from opsgate.logs.timeparse import log_time_ns

BLOCK = 1 << 20
PROBE_SPAN = 1 << 16
_MAX_PROBE_LINES = 64
_TIME_PREFIX = re.compile(
    rb'^((?:\{"(?:ts|time|timestamp|@timestamp)":"|(?:ts|time)=)?)'
    rb"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?)(Z|[+-]\d\d:?\d\d)?"
)


class Needle(Protocol):
    """A case-insensitive search that may find more than the exact needle (never less)."""

    def finditer(self, data: bytes) -> Iterator[re.Match[bytes]]: ...


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


def _line_spans(block: bytes, needle: bytes | None, finder: Needle | None = None) -> Iterator[tuple[int, int]]:
    """(start, end) of lines in `block` (which ends at a line end); with `needle`, only lines that
    contain it, case-insensitively (needle lower-case ASCII). `finder` (a case-insensitive RE2 search
    for the needle) locates candidates without lowering the whole block; each is checked exactly."""
    if needle is None:
        start = 0
        while start < len(block):
            end = block.find(b"\n", start)
            if end < 0:
                end = len(block)
            yield start, end
            start = end + 1
        return
    if finder is not None:
        last_end = -1
        for match in finder.finditer(block):
            hit = match.start()
            if hit <= last_end:
                continue
            start = block.rfind(b"\n", 0, hit) + 1
            end = block.find(b"\n", hit)
            if end < 0:
                end = len(block)
            last_end = end
            if needle in block[start:end].lower():
                yield start, end
        return
    lowered = block.lower()
    position = 0
    while True:
        hit = lowered.find(needle, position)
        if hit < 0:
            return
        start = lowered.rfind(b"\n", 0, hit) + 1
        end = lowered.find(b"\n", hit)
        if end < 0:
            end = len(block)
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
    """(offset, line) in file order for lines in [start, stop) that pass the byte filters."""
    position = start
    carry = b""
    while position < stop:
        tick()
        blob.seek(position)
        data = carry + blob.read(min(BLOCK, stop - position))
        base = position - len(carry)
        position += len(data) - len(carry)
        cut = data.rfind(b"\n") + 1 if position < stop else len(data)
        if cut == 0:
            carry = data
            continue
        block, carry = data[:cut], data[cut:]
        if block_ok(block):
            for s, e in _line_spans(block, needle, finder):
                if e > s:
                    yield base + s, block[s:e]
    if carry:
        yield stop - len(carry), carry


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


def _template(line: bytes) -> tuple[re.Pattern[bytes], bytes] | None:
    """A pattern that finds, after each newline, a time written exactly as in `line` (same prefix, same
    digit layout, same zone), and that zone: times found by it compare as text in time order."""
    match = _TIME_PREFIX.match(line)
    if match is None:
        return None
    zone = match.group(3) or b""
    shape = re.sub(rb"\d", rb"\\d", re.escape(match.group(2)))
    return re.compile(b"\n" + re.escape(match.group(1)) + b"(" + shape + b")" + re.escape(zone)), zone


def _line_times(block: bytes, carried: int | None) -> tuple[int | None, int | None, int | None]:
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


def time_index(
    data: bytes | memoryview | BinaryIO,
    size: int,
    tick: Callable[[], None],
    after: list[IndexedBlock] | None = None,
) -> list[IndexedBlock]:
    """Blocks of about BLOCK bytes with the range of their lines' times, for files not in time order.

    Lines written alike (the same time prefix and layout, as JSON-lines and logfmt writers do) are read
    by one regex search a block, and their times compared as text; a block with any other line falls
    back to parsing each line. Built once per file version and cached by the caller; `after`, the index of
    the same file before it grew, is kept but for its last block (which may have ended mid-line)."""
    view = None if hasattr(data, "read") else data
    blocks: list[IndexedBlock] = list(after[:-1]) if after else []
    position = after[-1].start if after else 0
    carried: int | None = blocks[-1].last_ns if blocks else None
    template: tuple[re.Pattern[bytes], bytes] | None = None
    while position < size:
        tick()
        if view is not None:
            chunk = bytes(view[position : min(size, position + BLOCK)])
        else:
            data.seek(position)  # type: ignore[union-attr]
            chunk = data.read(min(BLOCK, size - position))  # type: ignore[union-attr]
        cut = chunk.rfind(b"\n") + 1 if position + len(chunk) < size else len(chunk)
        if cut == 0:
            cut = len(chunk)  # a line longer than a block: index it whole
        block = chunk[:cut]
        if template is None:
            template = _template(block.split(b"\n", 1)[0])
        found = template[0].findall(b"\n" + block) if template is not None else []
        lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
        if template is not None and found and len(found) == lines:
            zone = template[1].decode()
            low_ns = log_time_ns(min(found).decode() + zone)
            high_ns = log_time_ns(max(found).decode() + zone)
            carried = log_time_ns(found[-1].decode() + zone)
        else:
            low_ns, high_ns, carried = _line_times(block, carried)
        blocks.append(IndexedBlock(position, position + cut, low_ns, high_ns, carried))
        position += cut
    return blocks
