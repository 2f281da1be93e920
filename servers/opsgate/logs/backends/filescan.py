"""Reading one time-ordered log file by byte offsets: binary search for a time, then read a region
forwards or backwards in blocks, handing on only the lines that pass cheap byte-level filters.

The cost of a window query grows with the window, not the file: `bracket` probes about
log2(size / PROBE_SPAN) lines, and only the bytes between the two offsets are read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

from opsgate.logs.records import parse_line

BLOCK = 1 << 20
PROBE_SPAN = 1 << 16
_MAX_PROBE_LINES = 64


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


def _line_spans(block: bytes, needle: bytes | None) -> Iterator[tuple[int, int]]:
    """(start, end) of lines in `block` (which ends at a line end); with `needle`, only lines that
    contain it, case-insensitively (needle lower-case ASCII)."""
    if needle is None:
        start = 0
        while start < len(block):
            end = block.find(b"\n", start)
            if end < 0:
                end = len(block)
            yield start, end
            start = end + 1
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
    blob: BinaryIO, start: int, stop: int, needle: bytes | None, block_ok: Prefilter, tick: Callable[[], None]
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
            for s, e in _line_spans(block, needle):
                if e > s:
                    yield base + s, block[s:e]
    if carry:
        yield stop - len(carry), carry


def backward(
    blob: BinaryIO, start: int, stop: int, needle: bytes | None, block_ok: Prefilter, tick: Callable[[], None]
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
            spans = list(_line_spans(block, needle))
            for s, e in reversed(spans):
                if e > s:
                    yield base + s, block[s:e]
