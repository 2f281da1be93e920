"""The files backend: formats, globs, gzip rotation, continuation lines, and binary-search seeks
that return exactly what a full scan returns."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsgate.logs.backends import filescan
from opsgate.logs.backends.files import FilesBackend, FileSource, FilesSettings
from opsgate.logs.backends.filescan import backward, bracket, forward
from opsgate.logs.contracts import PatternsInput, QueryInput
from opsgate.logs.query import LogQuery
from opsgate.logs.service import LogsService
from opsgate.logs.settings import load
from opsgate.logs.timeparse import parse_rfc3339, to_ns
from tests.logs.index_builds import IndexBuilds

T0 = to_ns(parse_rfc3339("2026-11-23T04:00:00Z"))
S = 1_000_000_000


def _stamp(ns: int) -> str:
    from opsgate.logs.timeparse import format_ns

    return format_ns(ns)


def _service(**logs: object) -> LogsService:
    config = load(dict(logs))
    return LogsService(config, FilesBackend(config.files))


async def test_bundled_examples_tell_the_incident() -> None:
    service = _service()  # the default: files over examples/logs with their own clock
    out = await service.query(QueryInput(service="checkout", min_severity="error", since="1h", order="oldest"))
    first = out.items[0]
    assert first.time >= "2026-11-23T04:30:12" and "timeout" in first.message
    deploy = await service.query(QueryInput(service="checkout", text="starting checkout v8"))
    assert [i.time for i in deploy.items] == ["2026-11-23T04:30:12.000Z"]
    patterns = await service.patterns(PatternsInput(since="2h", min_severity="warn"))
    top = patterns.items[0]
    assert "payment call failed" in top.template and top.levels == {"error": top.count}
    assert {"checkout", "payments", "inventory"} <= {s for p in patterns.items for s in p.services}
    rotated = await service.query(
        QueryInput(service="checkout", start="2026-11-23T02:00:00Z", end="2026-11-23T02:05:00Z")
    )
    assert rotated.items and {i.source for i in rotated.items} == {"checkout.jsonl.1.gz"}


async def test_formats_and_continuation_lines(tmp_path: Path) -> None:
    (tmp_path / "api.log").write_text(
        "2026-11-23 04:00:01,250 ERROR [db] query failed\n"
        "java.sql.SQLException: deadlock\n"
        "    at Db.run(Db.java:1)\n"
        "2026-11-23 04:00:02,000 INFO  [http] GET / 200\n"
    )
    (tmp_path / "worker.log").write_text('time=2026-11-23T04:00:01.500Z lvl=WARNING msg="queue deep" depth=900\n')
    with gzip.open(tmp_path / "api.log.1.gz", "wt") as f:
        f.write("2026-11-23T03:59:59Z CRITICAL disk full\n")
    service = _service(now="2026-11-23T04:10:00Z", files={"sources": [{"path": str(tmp_path / "*")}]})
    out = await service.query(QueryInput(min_severity="warn", order="oldest"))
    assert [(i.service, i.level, i.message) for i in out.items] == [
        ("api", "fatal", "disk full"),
        ("api", "error", "[db] query failed"),
        ("api", "error", "java.sql.SQLException: deadlock"),
        ("api", "error", "at Db.run(Db.java:1)"),
        ("worker", "warn", "queue deep depth=900"),
    ]
    only = await service.query(QueryInput(selector="app in (worker)"))
    assert [i.service for i in only.items] == ["worker"]
    other_ns = await service.query(QueryInput(namespace="payments"))
    assert other_ns.items == []


def _lines(count: int, seed: int) -> list[tuple[int, bytes]]:
    rng = random.Random(seed)
    ts, out = T0, []
    for i in range(count):
        ts += rng.choice([0, 0, 1, 7, 500]) * 1_000_000  # repeated timestamps included
        level = rng.choice(["info", "info", "error"])
        out.append(
            (
                ts,
                json.dumps(
                    {"ts": _stamp(ts), "level": level, "msg": f"event {i} {'x' * rng.randint(0, 300)}"},
                    separators=(",", ":"),
                ).encode(),
            )
        )
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 3000), st.integers(0, 3000))
def test_bracket_bounds_every_window(seed: int, a: int, b: int) -> None:
    lines = _lines(800, seed)
    blob = io.BytesIO(b"".join(line + b"\n" for _, line in lines))
    size = len(blob.getvalue())
    start_ns, end_ns = T0 + min(a, b) * 100_000_000, T0 + max(a, b) * 100_000_000
    start = bracket(blob, size, start_ns)[0]
    stop = bracket(blob, size, end_ns + 1)[1]
    seen = [line for _, line in forward(blob, start, stop, None, lambda _: True, lambda: None)]
    expected = [line for ts, line in lines if start_ns <= ts <= end_ns]
    window = [line for line in seen if start_ns <= to_ns(parse_rfc3339(json.loads(line)["ts"])) <= end_ns]
    assert window == expected
    back = [line for _, line in backward(blob, start, stop, None, lambda _: True, lambda: None)]
    assert back == list(reversed(seen))


async def test_seek_and_full_scan_agree_and_pages_cover_everything(tmp_path: Path) -> None:
    lines = _lines(6000, 7)  # about 1 MB: several probe spans and read blocks
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"".join(line + b"\n" for _, line in lines))
    sources = [{"path": str(path)}]
    seek = _service(now="2026-11-23T06:00:00Z", files={"sources": sources})
    scan = _service(now="2026-11-23T06:00:00Z", files={"sources": [{**sources[0], "time_ordered": False}]})
    start, end = _stamp(lines[1500][0]), _stamp(lines[4200][0])
    for order in ("newest", "oldest"):
        args = QueryInput(start=start, end=end, min_severity="error", text="EVENT", order=order, limit=500)
        assert (await seek.query(args)).items == (await scan.query(args)).items
    pages, cursor = [], None
    while True:
        page = await seek.query(QueryInput(start=start, end=end, limit=97, cursor=cursor))
        pages += [(i.time, i.message) for i in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    start_ns, end_ns = to_ns(parse_rfc3339(start)), to_ns(parse_rfc3339(end))
    assert len(pages) == sum(1 for ts, _ in lines if start_ns <= ts <= end_ns)
    assert len(set(pages)) == len(pages)


async def test_cursor_is_bound_to_its_query() -> None:
    service = _service()
    first = await service.query(QueryInput(service="checkout", limit=2))
    assert first.next_cursor
    from opsgate.contracts import ToolError

    try:
        await service.query(QueryInput(service="payments", limit=2, cursor=first.next_cursor))
    except ToolError as exc:
        assert "different query" in str(exc)
    else:
        raise AssertionError("a cursor of another query was accepted")


def test_raw_query_is_refused_by_files() -> None:
    import anyio

    from opsgate.contracts import ToolError

    backend = FilesBackend(FilesSettings(sources=[FileSource(path="/nonexistent/*")]))
    query = LogQuery(start_ns=0, end_ns=1, raw_query='{app="x"}')
    try:
        anyio.run(backend.fetch, query, 10, 1e12)
    except ToolError as exc:
        assert "no native query language" in str(exc)
    else:
        raise AssertionError("raw_query was accepted by the files backend")


def _unordered_file(path: Path, lines: int, seed: int) -> list[tuple[int, str]]:
    """JSON lines (and a few logfmt and continuation lines) in a shuffled order; (time, text) of each."""
    rng = random.Random(seed)
    rows: list[tuple[int, str]] = []
    for n in range(lines):
        ts = T0 + rng.randrange(0, 3600) * S + rng.randrange(0, 1000) * 1_000_000
        word = rng.choice(["timeout", "TimeOut", "ok", "retry", "done"])
        if n % 17 == 0:
            rows.append((ts, f'ts={_stamp(ts)} level=warn msg="{word} in logfmt {n}"'))
        else:
            rows.append((ts, json.dumps({"ts": _stamp(ts), "level": "info", "msg": f"{word} call {n}"})))
    rng.shuffle(rows)
    text = "\n".join(r[1] + ("\n    at Frame.run(Frame.java:1)" if i % 29 == 0 else "") for i, r in enumerate(rows))
    path.write_text(text + "\n")
    return rows


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), limit=st.sampled_from([1, 7, 60]), order=st.sampled_from(["newest", "oldest"]))
def test_unordered_file_answers_exactly_what_sorting_everything_would(
    tmp_path_factory: pytest.TempPathFactory, seed: int, limit: int, order: str
) -> None:
    """A file not in time order is read through its block time index, newest (or oldest) blocks first,
    stopping early; the answer equals sorting every matching line."""
    base = tmp_path_factory.mktemp("unordered")
    path = base / "api.jsonl"
    rows = _unordered_file(path, 600, seed)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(filescan, "BLOCK", 2048)  # many blocks, so pruning has something to skip
        backend = FilesBackend(FilesSettings(sources=[FileSource(path=str(path), time_ordered=False)]))
        start, end = T0 + 600 * S, T0 + 3000 * S
        query = LogQuery(start_ns=start, end_ns=end, text="timeout", order=order)  # type: ignore[arg-type]
        got = [(r.ts_ns, r.message) for r in backend._fetch(query, limit, float("inf"))]
        again = [(r.ts_ns, r.message) for r in backend._fetch(query, limit, float("inf"))]
    expected = sorted(
        ((ts, text) for ts, text in rows if start <= ts <= end and "timeout" in text.lower()),
        key=lambda r: r[0],
        reverse=order == "newest",
    )[:limit]
    assert [ts for ts, _ in got] == [ts for ts, _ in expected]
    assert again == got  # the second query reads the cached index
    assert all("timeout" in message.lower() for _, message in got)


def test_a_growing_time_ordered_file_keeps_one_cached_time_range_and_answers_its_new_lines(tmp_path: Path) -> None:
    """The first and last time of a time-ordered file are cached per file version; a live log that grows
    between queries replaces its entry (a cache keyed by every version it was seen at grows without end)."""
    path = tmp_path / "live.jsonl"
    backend = FilesBackend(FilesSettings(sources=[FileSource(path=str(path))]))
    query = LogQuery(start_ns=T0, end_ns=T0 + 3600 * S)
    for n in range(20):
        with path.open("a") as out:
            out.write(json.dumps({"ts": _stamp(T0 + n * S), "level": "info", "msg": f"line {n}"}) + "\n")
        assert [r.message for r in backend._fetch(query, 1, float("inf"))] == [f"line {n}"]
    assert len(backend._range_cache) == 1


def test_a_growing_unordered_file_extends_its_index_and_a_rewritten_one_rebuilds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opsgate.logs.backends import files

    monkeypatch.setattr(filescan, "BLOCK", 1024)
    monkeypatch.setattr(files, "SEARCH_FIRST_MATCHES", 0)  # always through the index
    path = tmp_path / "live.jsonl"
    rows = _unordered_file(path, 300, seed=5)
    backend = FilesBackend(FilesSettings(sources=[FileSource(path=str(path), time_ordered=False)]))
    query = LogQuery(start_ns=T0, end_ns=T0 + 7200 * S, text="timeout")

    def newest(limit: int = 5) -> list[int]:
        return [r.ts_ns for r in backend._fetch(query, limit, float("inf"))]

    def expected(limit: int = 5) -> list[int]:
        return sorted((ts for ts, text in rows if "timeout" in text.lower()), reverse=True)[:limit]

    assert newest() == expected()
    first_blocks = backend._indexes[path].blocks
    later = T0 + 3700 * S  # newer than every line so far, half of it written without its line end yet
    with path.open("a") as out:
        out.write(json.dumps({"ts": _stamp(later), "level": "info", "msg": "timeout late"}) + "\n")
        out.write('{"ts":"' + _stamp(later + S))
    rows.append((later, "timeout late"))
    assert newest() == expected()
    grown = backend._indexes[path].blocks
    assert grown[: len(first_blocks) - 1] == first_blocks[:-1]  # kept, not read again
    with path.open("a") as out:
        out.write('","level":"info","msg":"timeout finished"}\n')
    rows.append((later + S, "timeout finished"))
    assert newest() == expected()

    rows = _unordered_file(path, 200, seed=6)  # rewritten (rotated): a new index
    assert newest() == expected()


def _reference_index(data: bytes) -> list[filescan.IndexedBlock]:
    """The block time index by the general path alone: every line of every block parsed on its own."""
    blocks, position, carried = [], 0, None
    while position < len(data):
        chunk = data[position : position + filescan.BLOCK]
        cut = chunk.rfind(b"\n") + 1 if position + len(chunk) < len(data) else len(chunk)
        low, high, carried = filescan._line_times(chunk[: cut or len(chunk)], carried)
        blocks.append(filescan.IndexedBlock(position, position + (cut or len(chunk)), low, high, carried))
        position += cut or len(chunk)
    return blocks


_ODD_LINES = [
    "",  # an empty line
    "    at Frame.run(Frame.java:1)",  # a continuation line: inherits the time before it
    "x" * 700,  # a line longer than a block
    "no time here",
    '{"ts":"2026-11-23T04:59:00.5Z","msg":"a shorter fraction"}',
    '{"ts":"2026-11-23T04:00:00.000+01:00","msg":"another zone"}',
    '{"ts":"2026-11-23T04:00:00.000","msg":"no zone"}',
    '{"time":"2026-11-23T06:00:00.000Z","msg":"another key"}',
    "ts=2026-11-23T03:00:00.250Z level=info msg=logfmt",
    "2026-11-23 05:00:00,250 ERROR plain text",
    "2026-11-23 05:00:00,2501 ERROR a longer fraction than the first line's",
    "2026-11-23 05:00:00,250+02:00 ERROR a zone after a time written without one",
    '{"ts":"2026-11-23T04:00:0x.000Z","msg":"not a digit"}',
    '{"ts":"2026-11-23T04:00:00.000Z"}\r',  # CRLF
]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    first=st.sampled_from(
        [
            '{"ts":"%s","level":"info","msg":"m"}',
            '{"ts": "%s", "level": "info", "msg": "m"}',
            "ts=%s level=info msg=m",
            "%s INFO plain",
            '{"@timestamp":"%s","msg":"m"}',
        ]
    ),
    shape=st.sampled_from(["%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%d %H:%M:%S,%f", "%Y-%m-%dT%H:%M:%S+01:00"]),
    odd=st.floats(0, 0.2),
    trailing_newline=st.booleans(),
)
def test_time_index_equals_parsing_every_line(
    seed: int, first: str, shape: str, odd: float, trailing_newline: bool
) -> None:
    """The whole-array path of the block time index gives exactly what parsing each line would, for lines
    that fit the first line's layout and for every kind that does not (other zones, fraction lengths,
    keys, continuation and empty lines, lines longer than a block, CRLF, no final newline); blocks
    and chunks are small so that lines straddle both."""
    from datetime import UTC, datetime, timedelta

    rng = random.Random(seed)
    base = datetime(2026, 11, 23, 4, tzinfo=UTC)
    lines = []
    for _ in range(rng.randrange(1, 400)):
        if rng.random() < odd:
            lines.append(rng.choice(_ODD_LINES))
        else:
            moment = base + timedelta(milliseconds=rng.randrange(0, 7_200_000))
            written = moment.strftime(shape)
            if rng.random() < odd:  # the first line's layout, then more digits or a zone: a later time
                written += rng.choice(["7", "+02:00", "-03:30", ".5"])
            lines.append(first % written)
    data = ("\n".join(lines) + ("\n" if trailing_newline else "")).encode()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(filescan, "BLOCK", 512)
        mp.setattr(filescan, "CHUNK_BLOCKS", rng.choice([1, 2, 3]))
        expected = _reference_index(data)
        got = filescan.time_index(io.BytesIO(data), len(data), lambda: None)
        assert got == expected
        if len(got) > 2:  # grown: the index of a prefix (ending mid-line) extended
            cut = rng.randrange(1, len(data))
            head = filescan.time_index(io.BytesIO(data[:cut]), cut, lambda: None)
            assert filescan.time_index(io.BytesIO(data), len(data), lambda: None, after=head) == expected


def _newest_timeouts(rows: list[tuple[int, str]], limit: int = 5) -> list[int]:
    return sorted((ts for ts, text in rows if "timeout" in text.lower()), reverse=True)[:limit]


def _unordered_backend(path: Path, **kwargs: Any) -> FilesBackend:
    return FilesBackend(FilesSettings(sources=[FileSource(path=str(path), time_ordered=False)]), **kwargs)


_WHOLE_HOUR = LogQuery(start_ns=T0, end_ns=T0 + 7200 * S, text="timeout")


def _newest(backend: FilesBackend, deadline: float = float("inf")) -> list[int]:
    return [r.ts_ns for r in backend._fetch(_WHOLE_HOUR, 5, deadline)]


def test_a_persisted_index_is_used_by_the_next_run_only_for_the_same_file_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new backend (a restart) over the same index directory takes the stored index of an unchanged
    file without reading the file again, extends it for a file that only grew, and never uses it for a
    file rewritten in place, truncated, replaced by another file, or when the stored index is damaged."""
    from opsgate.logs.backends import files

    monkeypatch.setattr(filescan, "BLOCK", 1024)
    monkeypatch.setattr(files, "SEARCH_FIRST_MATCHES", 0)  # always through the index
    builds = IndexBuilds(monkeypatch)
    path, index_dir = tmp_path / "app.jsonl", tmp_path / "state" / "logs-index"
    rows = _unordered_file(path, 300, seed=1)

    def restart() -> list[int]:
        return _newest(_unordered_backend(path, index_dir=index_dir, warm=False))

    assert restart() == _newest_timeouts(rows) and builds.calls == [False]
    stored = list(index_dir.iterdir())
    assert len(stored) == 1 and stored[0].stat().st_mode & 0o777 == 0o600
    assert restart() == _newest_timeouts(rows) and builds.calls == [False]  # taken as stored: no read

    later = T0 + 3700 * S
    with path.open("a") as out:  # grown by appending: the stored index is extended
        out.write(json.dumps({"ts": _stamp(later), "level": "info", "msg": "timeout appended"}) + "\n")
    rows.append((later, "timeout appended"))
    assert restart() == _newest_timeouts(rows) and builds.calls == [False, True]

    def rewrite(new_rows: list[tuple[int, str]]) -> None:
        stat = path.stat()
        data = "".join(text + "\n" for _, text in new_rows).encode()
        with path.open("r+b") as out:  # in place: the same inode
            out.write(data)
            out.truncate(len(data))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    shifted = [(ts - 60 * S, text.replace(_stamp(ts), _stamp(ts - 60 * S))) for ts, text in rows]
    same_size = [r for r in shifted if r[1].startswith("{")]  # JSON lines only: the same length each
    rewrite(same_size)
    assert path.stat().st_size == sum(len(t) + 1 for _, t in same_size)
    assert restart() == _newest_timeouts(same_size) and builds.calls[-1] is False

    truncated = same_size[: len(same_size) // 3]
    rewrite(truncated)
    assert restart() == _newest_timeouts(truncated) and builds.calls[-1] is False

    other = tmp_path / "other.jsonl"
    replaced = _unordered_file(other, 250, seed=2)
    other.replace(path)  # rotated into place: another inode
    assert restart() == _newest_timeouts(replaced) and builds.calls[-1] is False
    count = len(builds.calls)
    assert restart() == _newest_timeouts(replaced) and len(builds.calls) == count

    stored[0].write_bytes(stored[0].read_bytes()[:-7])  # damaged: ignored, rebuilt
    assert restart() == _newest_timeouts(replaced) and builds.calls[-1] is False and len(builds.calls) == count + 1


def test_a_query_during_the_background_build_waits_for_it_and_a_late_one_fails_without_stopping_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index is built in the background from the backend's construction: a query arriving meanwhile
    waits for that build instead of starting another; one whose deadline passes first fails with a
    message saying so, and the build goes on for the next query."""
    import time

    from opsgate.logs.backends import DeadlinePassed, files

    monkeypatch.setattr(filescan, "BLOCK", 1024)
    monkeypatch.setattr(files, "SEARCH_FIRST_MATCHES", 0)  # never search first: wait for the index
    builds = IndexBuilds(monkeypatch)
    builds.gate = threading.Event()
    path = tmp_path / "app.jsonl"
    rows = _unordered_file(path, 300, seed=3)
    backend = _unordered_backend(path)  # warm: starts building now
    assert builds.started.wait(30)
    with pytest.raises(DeadlinePassed, match="still being built"):
        _newest(backend, deadline=time.monotonic())
    answers: list[list[int]] = []
    waiting = threading.Thread(target=lambda: answers.append(_newest(backend)))
    waiting.start()
    builds.gate.set()
    waiting.join(30)
    assert answers == [_newest_timeouts(rows)]
    assert _newest(backend) == _newest_timeouts(rows)
    assert builds.calls == [False]  # one build, shared


def test_an_index_of_a_file_truncated_while_it_is_read_covers_what_was_read() -> None:
    data = b"".join(json.dumps({"ts": _stamp(T0 + i * S), "msg": "m"}).encode() + b"\n" for i in range(100))
    blocks = filescan.time_index(io.BytesIO(data), len(data) + 5000, lambda: None)
    assert blocks[0].start == 0 and blocks[-1].end == len(data)
    assert (blocks[0].min_ns, blocks[-1].max_ns) == (T0, T0 + 99 * S)


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_a_term_before_the_index_is_ready_is_searched_for_and_a_common_regex_waits_for_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, order: str
) -> None:
    """While a file's index is being built, a text query (however many lines hold the term: here more
    than SEARCH_FIRST_MATCHES) and a regex query that matches few lines search the file themselves and
    answer exactly what the index would (they do not wait: the build is held until the end); a regex
    that matches many lines gives up searching and waits for the index."""
    from opsgate.logs.backends import files

    monkeypatch.setattr(filescan, "BLOCK", 1024)
    monkeypatch.setattr(files, "SEARCH_FIRST_MATCHES", 30)
    builds = IndexBuilds(monkeypatch)
    builds.gate = threading.Event()
    path = tmp_path / "app.jsonl"
    rows = _unordered_file(path, 600, seed=4)
    backend = _unordered_backend(path, warm=False)
    start, end = T0 + 300 * S, T0 + 3300 * S

    def answer(limit: int, **filters: Any) -> list[tuple[int, str]]:
        query = LogQuery(start_ns=start, end_ns=end, order=order, **filters)  # type: ignore[arg-type]
        return [(r.ts_ns, r.message) for r in backend._fetch(query, limit, float("inf"))]

    def expected(matches: Callable[[str], bool], limit: int) -> list[int]:
        times = sorted((ts for ts, text in rows if start <= ts <= end and matches(text)), reverse=order == "newest")
        return times[:limit]

    rare = answer(4, text="CALL 42")  # "call 42", "call 420".."call 429": under 30
    assert [ts for ts, _ in rare] == expected(lambda text: "call 42" in text.lower(), 4)
    assert rare and all("call 42" in message.lower() for _, message in rare)
    by_regex = answer(3, regex=r"call 2\d\b")
    assert [ts for ts, _ in by_regex] == expected(lambda text: re.search(r"call 2\d\b", text) is not None, 3)
    common = answer(5, text="timeout")  # about 240 lines
    assert [ts for ts, _ in common] == expected(lambda text: "timeout" in text.lower(), 5)
    assert builds.started.wait(30) and builds.calls == [False]  # all answered while the build was held

    answers: list[list[tuple[int, str]]] = []
    waiting = threading.Thread(target=lambda: answers.append(answer(5, regex="(?i)timeout")))
    waiting.start()
    builds.gate.set()
    waiting.join(30)
    assert [[ts for ts, _ in a] for a in answers] == [expected(lambda text: "timeout" in text.lower(), 5)]
    assert builds.calls == [False]


def test_a_grown_file_is_searched_through_its_extended_index_not_searched_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Searching a whole file first only pays when its index must be built from nothing: a file with an
    index of an earlier version (in memory or stored) that only grew waits for the cheap extension."""
    monkeypatch.setattr(filescan, "BLOCK", 1024)
    path, index_dir = tmp_path / "app.jsonl", tmp_path / "logs-index"
    rows = _unordered_file(path, 300, seed=8)
    first = _unordered_backend(path, index_dir=index_dir, warm=False)
    assert first.wait_for_indexes(30) and _newest(first) == _newest_timeouts(rows)
    assert first.wait_for_indexes(30)

    def no_whole_search(*args: Any) -> None:
        raise AssertionError("searched the whole file although an index of it only needed extending")

    monkeypatch.setattr(FilesBackend, "_search_first", no_whole_search)
    later = T0 + 3700 * S
    with path.open("a") as out:
        out.write(json.dumps({"ts": _stamp(later), "level": "info", "msg": "timeout appended"}) + "\n")
    rows.append((later, "timeout appended"))
    assert _newest(first) == _newest_timeouts(rows)  # the index in memory, extended
    with path.open("a") as out:
        out.write(json.dumps({"ts": _stamp(later + S), "level": "info", "msg": "timeout again"}) + "\n")
    rows.append((later + S, "timeout again"))
    restarted = _unordered_backend(path, index_dir=index_dir, warm=False)
    assert _newest(restarted) == _newest_timeouts(rows)  # the stored index, extended


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_cursor_pages_of_an_unordered_file_are_exact_before_and_after_its_index_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, order: str
) -> None:
    """Paging with a cursor through a file not in time order, with many lines sharing a time: every
    matching line once, in order, both while the index is held back (each page searched for) and
    through the index once it is built."""
    import anyio

    from opsgate.logs.backends import files

    monkeypatch.setattr(filescan, "BLOCK", 1024)
    monkeypatch.setattr(files, "SEARCH_FIRST_MATCHES", 10_000)
    builds = IndexBuilds(monkeypatch)
    builds.gate = threading.Event()
    rng = random.Random(9)
    rows = [(T0 + rng.randrange(0, 40) * S, f"timeout {n} {'x' * rng.randrange(0, 90)}") for n in range(500)]
    rng.shuffle(rows)
    path = tmp_path / "app.jsonl"
    path.write_text("".join(json.dumps({"ts": _stamp(ts), "level": "info", "msg": msg}) + "\n" for ts, msg in rows))
    config = load({"now": "2026-11-23T05:00:00Z", "files": {"sources": [{"path": str(path), "time_ordered": False}]}})
    service = LogsService(config, FilesBackend(config.files, warm=False))

    def pages() -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []
        cursor = None
        while True:
            args = QueryInput(start=_stamp(T0), end=_stamp(T0 + 60 * S), text="TIMEOUT", order=order, limit=23)
            page = anyio.run(service.query, args.model_copy(update={"cursor": cursor}))
            seen += [(i.time, i.message) for i in page.items]
            cursor = page.next_cursor
            if cursor is None:
                return seen

    searched = pages()
    assert builds.started.wait(30) and not builds.gate.is_set()  # every page answered by searching
    times = [t for t, _ in searched]
    assert len(searched) == len(set(searched)) == len(rows)
    assert times == sorted(times, reverse=order == "newest")
    builds.gate.set()
    assert service.backend.wait_for_indexes(30)  # type: ignore[attr-defined]
    assert pages() == searched


def test_stored_indexes_of_log_files_gone_for_good_are_removed(tmp_path: Path) -> None:
    index_dir = tmp_path / "logs-index"
    kept, gone = tmp_path / "app-2026-11-30.jsonl", tmp_path / "app-2026-11-29.jsonl"
    for path in (kept, gone):
        _unordered_file(path, 50, seed=10)
    first = FilesBackend(
        FilesSettings(sources=[FileSource(path=str(tmp_path / "app-*.jsonl"), time_ordered=False)]), index_dir=index_dir
    )
    assert first.wait_for_indexes(30) and len(list(index_dir.glob("*.idx"))) == 2
    gone.unlink()
    second = FilesBackend(
        FilesSettings(sources=[FileSource(path=str(tmp_path / "app-*.jsonl"), time_ordered=False)]), index_dir=index_dir
    )
    assert second.wait_for_indexes(30)
    remaining = list(index_dir.glob("*.idx"))
    assert len(remaining) == 1 and str(kept) in remaining[0].read_bytes().split(b"\n", 1)[0].decode()


@pytest.mark.parametrize("then", ["search ends", "backend closes"])
def test_a_background_build_pauses_for_a_query_searching_the_file_and_resumes_or_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, then: str
) -> None:
    """A background build pauses while a query searches the file itself (the query is what a caller
    waits for); the end of that search resumes it at once, and closing the backend stops it at once (the
    pause would otherwise last BUILD_YIELD_S, here a minute: longer than the waits below)."""
    import anyio

    from opsgate.logs.backends import files

    monkeypatch.setattr(filescan, "BLOCK", 1024)
    monkeypatch.setattr(files, "BUILD_YIELD_S", 60.0)
    path = tmp_path / "app.jsonl"
    rows = _unordered_file(path, 300, seed=12)
    held, inside = threading.Event(), threading.Event()
    real_search = FilesBackend._ranked_search

    def held_search(self: FilesBackend, *args: Any) -> Any:
        inside.set()
        assert held.wait(30)
        return real_search(self, *args)

    paused = threading.Event()
    real_tick = FilesBackend._check_open

    def tick(self: FilesBackend) -> None:
        paused.set()
        real_tick(self)

    monkeypatch.setattr(FilesBackend, "_ranked_search", held_search)
    monkeypatch.setattr(FilesBackend, "_check_open", tick)
    backend = _unordered_backend(path, warm=False)
    answers: list[list[int]] = []
    searching = threading.Thread(target=lambda: answers.append(_newest(backend)))
    searching.start()  # starts the build, then searches the file itself: held inside
    assert inside.wait(30) and paused.wait(30)  # the build is at its first chunk, pausing
    if then == "backend closes":
        anyio.run(backend.aclose)
        assert backend.wait_for_indexes(30)  # stopped, not paused for a minute
        assert path not in backend._indexes
        held.set()
    else:
        held.set()
        assert backend.wait_for_indexes(30)  # resumed, not paused for a minute
        assert _newest(backend) == _newest_timeouts(rows)  # through the index now
    searching.join(30)
    assert answers == [_newest_timeouts(rows)]
