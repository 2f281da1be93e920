"""The files backend's search of a whole file before its index exists (`files_search` and
`FilesBackend._ranked_search`): each part against a brute-force reference, and the whole answer against
the index's, on varied layouts, windows, orders, limits and files that change while they are read."""

from __future__ import annotations

import io
import json
import random
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsgate.logs.backends import files, files_search, filescan
from opsgate.logs.backends.files import FilesBackend, FileSource, FilesSettings
from opsgate.logs.query import LogQuery
from opsgate.logs.records import leading_time
from opsgate.logs.timeparse import format_ns, parse_rfc3339, to_ns
from tests.logs.index_builds import IndexBuilds

T0 = to_ns(parse_rfc3339("2026-11-23T04:00:00Z"))
S = 1_000_000_000
_PLUS_ONE = timezone(timedelta(hours=1))

_PREFIXES = [
    '{"ts":"%s","level":"info","msg":"m"}',
    '{"ts": "%s", "level": "info", "msg": "m"}',
    '{"@timestamp":"%s","msg":"m"}',
    "ts=%s level=info msg=m",
    "%s INFO m",
]
_SHAPES = [
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.{f1}",
    "%Y-%m-%dT%H:%M:%S.{f3}",
    "%Y-%m-%d %H:%M:%S,{f3}",
    "%Y-%m-%dT%H:%M:%S.{f6}",
    "%Y-%m-%dT%H:%M:%S.{f9}",
]
_ZONES = ["Z", "", "+01:00", "-03:30", "+0530"]


def _written(moment: datetime, shape: str, nanos: int) -> str:
    digits = f"{moment.microsecond:06d}{nanos:03d}"
    return moment.strftime(shape).format(f1=digits[:1], f3=digits[:3], f6=digits[:6], f9=digits)


def _garbled(text: str, rng: random.Random) -> str:
    """The same layout with digits that make no valid time (or a byte that is no digit)."""
    choice = rng.randrange(6)
    if choice == 0:
        return text[:5] + "13" + text[7:]  # month 13
    if choice == 1:
        return text[:5] + "02-30" + text[10:]  # 30 February
    if choice == 2:
        return text[:11] + "24" + text[13:]  # hour 24
    if choice == 3:
        return text[:17] + "60" + text[19:]  # second 60
    if choice == 4:
        return text[:3] + "x" + text[4:]  # not a digit
    return "0000" + text[4:]  # year 0


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    prefix=st.sampled_from(_PREFIXES),
    shape=st.sampled_from(_SHAPES),
    zone=st.sampled_from(_ZONES),
)
def test_times_read_with_whole_arrays_equal_leading_time_line_by_line(
    seed: int, prefix: str, shape: str, zone: str
) -> None:
    """A line that fits the layout gets exactly the time `leading_time` reads from it; every well-formed
    line written alike fits (so the fast path is taken); lines written otherwise (another zone, fraction,
    key, invalid dates, leap days, years far off) either fit with the same time or are left out."""
    rng = random.Random(seed)
    base = datetime(2026, 11, 23, 4, tzinfo=UTC)

    def line(alike: bool) -> str:
        moment = base + timedelta(seconds=rng.uniform(-4e9, 4e9) if rng.random() < 0.2 else rng.uniform(0, 86400))
        moment = moment.replace(microsecond=rng.randrange(10**6))
        text = _written(moment, shape, rng.randrange(1000)) + zone
        if alike:
            return prefix % text
        return rng.choice(
            [
                prefix % _garbled(text, rng),
                prefix % (_written(moment, rng.choice(_SHAPES), 0) + rng.choice(_ZONES)),
                rng.choice(_PREFIXES) % text,
                prefix % (text + rng.choice(["7", ".5", "Z", "+02:00", ",1"])),
                prefix % "2024-02-29T12:00:00Z",
                prefix % "2023-02-29T12:00:00Z",
                prefix % ("2300" + text[4:]),  # a valid time beyond 64-bit nanoseconds
                prefix % ("1600" + text[4:]),
                " " + prefix % text,
                "no time " + text,
                "",
            ]
        )

    first = line(True)
    layout = files_search.TimeLayout.of(first.encode())
    assert layout is not None
    kinds = [True] + [rng.random() < 0.6 for _ in range(300)]
    lines = [first] + [line(alike) for alike in kinds[1:]]
    data = "\n".join(lines).encode()
    buf = bytearray(data + b"\n" + bytes(files_search.PAD))
    starts = np.array([0] + [i + 1 for i, c in enumerate(data) if c == 0x0A], dtype=np.int64)
    fits, times = layout.times(np, buf, starts)
    for text, alike, fit, ns in zip(lines, kinds, fits.tolist(), times.tolist(), strict=True):
        expected = leading_time(text.encode())
        if alike:
            assert fit, text
        if fit:
            assert ns == expected, text


def test_a_time_layout_is_refused_when_it_cannot_be_read_with_whole_arrays() -> None:
    assert files_search.TimeLayout.of(b"no time") is None
    assert files_search.TimeLayout.of(b'{"level":"info","ts":"2026-11-23T04:00:00Z"}') is None  # not at the start
    assert files_search.TimeLayout.of(b"2026-11-23T04:00:00+99:00 zone out of range") is None
    assert files_search.TimeLayout.of(b'{"ts":"2026-11-23T04:00:00.123Z"}') is not None


@settings(max_examples=60, deadline=None)
@given(
    stamps=st.lists(st.integers(0, 6), max_size=200),
    newest=st.booleans(),
    first=st.integers(0, 30),
)
def test_ranked_rows_are_the_rank_order(stamps: list[int], newest: bool, first: int) -> None:
    offsets = np.arange(len(stamps), dtype=np.int64) * 3
    values = np.array(stamps, dtype=np.int64)
    got = list(files_search.ranked(np, values, offsets, newest, first))
    expected = sorted(range(len(stamps)), key=lambda i: (stamps[i], i), reverse=newest)
    assert got == expected


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(st.text(alphabet="ab \n", max_size=30), max_size=40).map(lambda ls: "\n".join(ls)),
    chunk=st.integers(8, 40),
    trailing=st.booleans(),
)
def test_chunks_cut_at_line_ends_and_cover_the_file(lines: str, chunk: int, trailing: bool) -> None:
    data = (lines + ("\n" if trailing and lines else "")).encode()
    pieces = []
    try:
        for position, buf, cut in files_search.chunks(io.BytesIO(data), len(data), chunk):
            assert buf[cut] == 0x0A
            pieces.append((position, bytes(buf[:cut])))
    except files_search.LineTooLong:
        assert any(len(line) >= chunk for line in data.split(b"\n"))
        return
    assert b"\n".join(piece for _, piece in pieces) == data
    for position, piece in pieces:
        assert data[position : position + len(piece)] == piece


def test_chunks_of_a_file_that_shrank_end_at_its_new_end() -> None:
    data = b"".join(b"line %d\n" % i for i in range(100))
    got = [bytes(buf[:cut]) for _, buf, cut in files_search.chunks(io.BytesIO(data[:300]), len(data), 64)]
    assert b"\n".join(got) == data[:300]


@pytest.mark.parametrize("engine", ["hyperscan", "re2"])
@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    needle=st.sampled_from([b"timeout", b"to payments", b"x", b"q-7f3a"]),
)
def test_line_finder_finds_every_line_holding_the_term_in_any_case(engine: str, seed: int, needle: bytes) -> None:
    if engine == "hyperscan":
        pytest.importorskip("hyperscan")
    rng = random.Random(seed)
    words = [b"TimeOut", b"timeout", b"TIMEOUT", b"to Payments", b"X", b"q-7F3A", b"\xc3\xa9t\xc3\xa9", b"ok", b""]
    lines = [b" ".join(rng.choice(words) for _ in range(rng.randrange(0, 5))) for _ in range(200)]
    data = b"\n".join(lines)
    buf = bytearray(data + b"\n")
    saved = sys.modules.get("hyperscan")
    if engine == "re2":
        sys.modules["hyperscan"] = None  # type: ignore[assignment]  # the import fails: RE2 instead
    try:
        finder = files_search.LineFinder(needle)
    finally:
        if engine == "re2":
            if saved is None:
                del sys.modules["hyperscan"]
            else:
                sys.modules["hyperscan"] = saved
    assert finder.engine == engine
    starts = finder.line_starts(np, buf, len(data)).tolist()
    expected, position = [], 0
    for line in lines:
        if needle in line.lower():
            expected.append(position)
        position += len(line) + 1
    assert starts == expected


# -- the backend: searching first answers what the index answers ----------------------------------------


def _mixed_file(path: Path, count: int, seed: int) -> None:
    """Lines not in time order, most written alike (JSON, the first line's layout), the others as a
    real file mixes them: logfmt, plain text, other zones and fractions, a key other than the first
    line's, continuation lines (which inherit the time before them), lines without a time at all, and
    many lines sharing a time."""
    rng = random.Random(seed)
    compact: Any = {"separators": (",", ":")}
    out = []
    for n in range(count):
        ts = T0 + rng.randrange(0, 300) * S + rng.choice([0, 0, rng.randrange(0, 1000) * 1_000_000])
        word = rng.choice(["timeout", "TimeOut", "ok", "retry", "done", "timeout"])
        level = rng.choice(["info", "info", "warn", "error"])
        kind = rng.random()
        stamp = format_ns(ts)
        if kind < 0.75:
            out.append(json.dumps({"ts": stamp, "level": level, "msg": f"{word} call {n}"}, **compact))
        elif kind < 0.8:
            out.append(f'ts={stamp} level={level} msg="{word} in logfmt {n}"')
        elif kind < 0.84:
            out.append(f"{stamp.replace('T', ' ')} {level.upper()} {word} plain {n}")
        elif kind < 0.87:
            moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ts // 1000)
            shifted = moment.astimezone(_PLUS_ONE).isoformat(timespec="microseconds")
            out.append(json.dumps({"ts": shifted, "level": level, "msg": f"{word} other zone {n}"}, **compact))
        elif kind < 0.9:
            out.append(json.dumps({"time": stamp, "level": level, "msg": f"{word} other key {n}"}, **compact))
        elif kind < 0.91:
            out.append(json.dumps({"ts": stamp, "level": level, "msg": f"{word} spaced {n}"}))  # not at the start
        elif kind < 0.94:
            out.append(f"    caused by: {word} in frame {n}")  # a continuation line
        elif kind < 0.96:
            out.append(json.dumps({"level": level, "msg": f"{word} without a time {n}", "ts": stamp}))
        else:
            out.append(f"{word} and no time at all {n}")
    path.write_text("\n".join(out) + ("\n" if rng.random() < 0.7 else ""))


def _answer(backend: FilesBackend, limit: int, **filters: Any) -> list[tuple[int, str, str | None]]:
    query = LogQuery(**filters)
    return [(r.ts_ns, r.message, r.level) for r in backend._fetch(query, limit, float("inf"))]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    limit=st.sampled_from([1, 5, 40, 400]),
    order=st.sampled_from(["newest", "oldest"]),
    window=st.sampled_from([(0, 300), (60, 200), (150, 151)]),
    whole_array=st.sampled_from([1, 32, 10**9]),
    chunk=st.sampled_from([256, 4096, 1 << 20]),
    severity=st.sampled_from([None, "warn"]),
)
def test_a_term_searched_for_before_the_index_exists_answers_what_the_index_answers(
    tmp_path_factory: pytest.TempPathFactory,
    seed: int,
    limit: int,
    order: str,
    window: tuple[int, int],
    whole_array: int,
    chunk: int,
    severity: str | None,
) -> None:
    """However many lines hold the term, the search of the whole file (build held: it cannot be the
    index answering) gives the same records in the same order as the index once built; with times read
    with whole arrays or one by one, in chunks large or small."""
    path = tmp_path_factory.mktemp("search") / "app.jsonl"
    _mixed_file(path, 1500, seed)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(filescan, "BLOCK", 2048)
        mp.setattr(files, "SEARCH_FIRST_MATCHES", 10_000)
        mp.setattr(files_search, "WHOLE_ARRAY_LINES", whole_array)
        mp.setattr(files_search, "CHUNK", chunk)
        held = IndexBuilds(mp, held=True)
        backend = FilesBackend(FilesSettings(sources=[FileSource(path=str(path), time_ordered=False)]), warm=False)
        filters = {
            "start_ns": T0 + window[0] * S,
            "end_ns": T0 + window[1] * S,
            "text": "TIMEOUT",
            "order": order,
            "min_severity": severity,
        }
        searched = _answer(backend, limit, **filters)
        assert held.started.wait(30) and not held.gate.is_set()  # answered while the build was held
        held.gate.set()
        assert backend.wait_for_indexes(30)
        indexed = _answer(backend, limit, **filters)
    assert searched == indexed
    assert all("timeout" in message.lower() for _, message, _ in searched)


def test_a_common_term_is_answered_by_the_search_and_only_the_lines_taken_are_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of lines hold the term; the search reads their times with whole arrays and parses only
    about `limit` of them (the old search gave up after SEARCH_FIRST_MATCHES and waited for the index)."""
    path = tmp_path / "app.jsonl"
    rng = random.Random(3)
    rows = [(T0 + rng.randrange(0, 10**6) * 1_000_000, n) for n in range(20_000)]
    path.write_text(
        "".join(
            json.dumps({"ts": format_ns(ts), "level": "info", "msg": f"timeout to payments {n}"}, separators=(",", ":"))
            + "\n"
            for ts, n in rows
        )
    )
    monkeypatch.setattr(files, "SEARCH_FIRST_MATCHES", 100)
    held = IndexBuilds(monkeypatch, held=True)
    parsed = []
    real = FilesBackend._record

    def counting(self: FilesBackend, *args: Any) -> Any:
        parsed.append(1)
        return real(self, *args)

    monkeypatch.setattr(FilesBackend, "_record", counting)
    backend = FilesBackend(FilesSettings(sources=[FileSource(path=str(path), time_ordered=False)]), warm=False)
    got = _answer(backend, 50, start_ns=T0, end_ns=T0 + 10**6 * S, text="Timeout To Payments")
    assert held.started.wait(30) and not held.gate.is_set()
    assert [ts for ts, _, _ in got] == sorted((ts for ts, _ in rows), reverse=True)[:50]
    assert len(parsed) == 50
    held.gate.set()


def test_a_line_whose_parsed_time_is_not_the_one_it_starts_with_is_left_to_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`{"time": A, ..., "ts": B}` starts with A but is parsed as B (`ts` comes first among the time
    keys): the search does not rank it by A; the index answers (the same as without the search)."""
    path = tmp_path / "app.jsonl"
    compact = {"separators": (",", ":")}
    lines = [json.dumps({"ts": format_ns(T0 + n * S), "msg": f"timeout {n}"}, **compact) for n in range(50)]  # type: ignore[arg-type]
    odd = {"time": format_ns(T0 + 100 * S), "msg": "timeout odd", "ts": format_ns(T0 + 10 * S)}
    lines.append(json.dumps(odd, **compact))  # type: ignore[arg-type]
    path.write_text("\n".join(lines) + "\n")
    backend = FilesBackend(FilesSettings(sources=[FileSource(path=str(path), time_ordered=False)]), warm=False)
    searched: list[Any] = []
    real = FilesBackend._ranked_search

    def recording(self: FilesBackend, *args: Any) -> Any:
        searched.append(real(self, *args))
        return searched[-1]

    monkeypatch.setattr(FilesBackend, "_ranked_search", recording)
    got = _answer(backend, 3, start_ns=T0, end_ns=T0 + 200 * S, text="timeout")
    assert searched == [None]  # gave up: the index answered
    assert [ts for ts, _, _ in got] == [T0 + 49 * S, T0 + 48 * S, T0 + 47 * S]


@pytest.mark.parametrize("change", ["truncated", "appended"])
def test_a_file_that_changes_while_it_is_searched_gives_lines_it_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """Truncated (copytruncate) or appended to between two chunks: no error, and every line answered
    is a line that holds the term, with its own time."""
    path = tmp_path / "app.jsonl"
    rows = [(T0 + ((n * 7919) % 1000) * S, n) for n in range(3000)]
    path.write_text("".join('{"ts":"' + format_ns(ts) + f'","msg":"timeout {n}"}}\n' for ts, n in rows))
    monkeypatch.setattr(files_search, "CHUNK", 8192)
    real = files_search.LineFinder.line_starts
    calls = []

    def changing(self: files_search.LineFinder, *args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            if change == "truncated":
                with path.open("r+b") as out:
                    out.truncate(0)
                    out.write(b'{"ts":"2026-11-23T04:00:00Z","msg":"new"}\n')
            else:
                with path.open("a") as out:
                    out.write('{"ts":"' + format_ns(T0 + 5000 * S) + '","msg":"timeout late"}\n')
        return real(self, *args)

    monkeypatch.setattr(files_search.LineFinder, "line_starts", changing)
    backend = FilesBackend(FilesSettings(sources=[FileSource(path=str(path), time_ordered=False)]), warm=False)
    got = _answer(backend, 20, start_ns=T0, end_ns=T0 + 10_000 * S, text="timeout")
    by_message = {f"timeout {n}": ts for ts, n in rows}
    assert all(by_message.get(message) == ts for ts, message, _ in got)
    if change == "appended":  # the version the query opened: the line appended is not in it
        assert [ts for ts, _, _ in got] == sorted((ts for ts, _ in rows), reverse=True)[:20]
