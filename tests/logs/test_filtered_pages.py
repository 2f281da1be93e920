"""Loki and Azure Monitor with a regex filter: the regex runs in opsgate on the redacted line (never in the
backend, on raw text), so one backend page may hold few matches. The service keeps reading backend pages
until `limit` lines match or the backend has no more, within a bound on the lines it scans, and says so
when the bound stopped it (truncated, a cursor that continues, a note). The real client code runs against
the loopback Loki and Log Analytics servers, with matches spread over many backend pages and several lines
sharing each timestamp (so a backend page often ends inside a timestamp)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from opsgate.config import Settings
from opsgate.logs.server import capability, make_backend
from opsgate.logs.settings import load
from opsgate.logs.timeparse import to_ns
from opsgate.server import App
from tests.logs.apps import WORKSPACE
from tests.logs.azure_loopback import AzureLoopback, Table
from tests.logs.corpus import CONTAINER_LOG_V2_COLUMNS
from tests.logs.loki_loopback import LokiLoopback, Stream
from tests.support.azure import StaticTokenCredential

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
LINES = 600
PER_SECOND = 3  # lines sharing one timestamp
EVERY = 37  # three lines in 37 match, often two at one timestamp
PAGE = 40  # the backend's page: Loki's max_entries, Log Analytics' max_rows here
SECRET = "hunter2rocks"
WINDOW = {
    "start": (BASE - timedelta(seconds=1)).isoformat().replace("+00:00", "Z"),
    "end": (BASE + timedelta(seconds=LINES // PER_SECOND + 1)).isoformat().replace("+00:00", "Z"),
}


def _when(i: int) -> datetime:
    return BASE + timedelta(seconds=i // PER_SECOND)


def _message(i: int) -> str:
    word = "needle" if i % EVERY < 3 else "hay"
    return f"request {i:03d} {word} db=postgres://app:{SECRET}@db:5432/shop"


def _line(i: int) -> str:
    stamp = _when(i).isoformat().replace("+00:00", "Z")
    return json.dumps({"ts": stamp, "level": "info", "msg": _message(i)})


MATCHES = [i for i in range(LINES) if i % EVERY < 3]


@contextmanager
def _backend(name: str, make_app: Callable[..., App], tmp_path: Path, **logs: Any) -> Iterator[App]:
    if name == "loki":
        entries = [(to_ns(_when(i)), _line(i), {}) for i in range(LINES)]
        labels = {"service_name": "checkout", "namespace": "shop", "app": "checkout", "pod": "checkout-0"}
        with LokiLoopback([Stream(labels=labels, entries=entries)]) as loki:
            section = {"backend": "loki", "loki": {"url": loki.url, "timeout_s": 5, "max_entries": PAGE}, **logs}
            yield make_app(("logs",), settings=Settings(state_dir=tmp_path / "state", logs=section))
        return
    rows = [
        {
            "TimeGenerated": _when(i).isoformat().replace("+00:00", "Z"),
            "PodNamespace": "shop",
            "PodName": "checkout-0",
            "ContainerName": "checkout",
            "LogLevel": "info",
            "LogMessage": _line(i),
        }
        for i in range(LINES)
    ]
    with AzureLoopback({"ContainerLogV2": Table(columns=CONTAINER_LOG_V2_COLUMNS, rows=rows)}) as azure:
        azure_section = {"workspace_id": WORKSPACE, "endpoint": azure.endpoint, "retries": 0, "timeout_s": 5}
        config = load({"backend": "azure", "azure": {**azure_section, "max_rows": PAGE}, **logs})
        backend = make_backend(
            config, azure_credential=StaticTokenCredential(), azure_request_options={"enforce_https": False}
        )
        yield make_app((), settings=Settings(state_dir=tmp_path / "state"), capabilities=[capability(config, backend)])


def _numbers(out: dict[str, Any]) -> list[int]:
    assert all(SECRET not in item["message"] for item in out["items"]), "the page is redacted"
    return [int(item["message"].split()[1]) for item in out["items"]]


async def _pages(app: App, args: dict[str, Any], most: int = 30) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    async with Client(app.server, mode="2026-07-28") as client:
        for _ in range(most):
            result = await client.call_tool("logs_query", args)
            assert not result.is_error, result.content
            pages.append(result.structured_content)
            cursor = result.structured_content["next_cursor"]
            if cursor is None:
                return pages
            args = {**args, "cursor": cursor}
    pytest.fail(f"the cursor did not end within {most} pages")


@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("backend", ["loki", "azure"])
async def test_a_regex_page_is_full_when_matches_are_spread_over_backend_pages(
    backend: str, order: str, make_app: Callable[..., App], tmp_path: Path
) -> None:
    expected = MATCHES if order == "oldest" else list(reversed(MATCHES))
    with _backend(backend, make_app, tmp_path) as app:
        try:
            pages = await _pages(app, {**WINDOW, "regex": "needle", "limit": 10, "order": order})
        finally:
            await app.aclose()
    first, rest = pages[0], pages[1:]
    assert _numbers(first) == expected[:10], "a full page although one backend page holds about three matches"
    assert first["truncated"] is True and first["next_cursor"]
    assert [n for page in rest for n in _numbers(page)] == expected[10:]
    assert pages[-1]["truncated"] is False and not any(page["backend_notes"] for page in pages)


@pytest.mark.parametrize("backend", ["loki", "azure"])
async def test_the_scan_bound_stops_a_page_early_says_so_and_the_cursor_continues(
    backend: str, make_app: Callable[..., App], tmp_path: Path
) -> None:
    with _backend(backend, make_app, tmp_path, filter_max_lines=100) as app:
        try:
            pages = await _pages(app, {**WINDOW, "regex": "needle", "limit": 20, "order": "newest"})
        finally:
            await app.aclose()
    first = pages[0]
    assert len(first["items"]) < 20 and first["truncated"] is True and first["next_cursor"]
    assert any("filter_max_lines" in note and "next_cursor" in note for note in first["backend_notes"]), first
    # following the cursor returns every match exactly once, newest first, none skipped at a page boundary
    assert [n for page in pages for n in _numbers(page)] == list(reversed(MATCHES))


@pytest.mark.parametrize("backend", ["loki", "azure"])
async def test_patterns_mine_only_the_lines_the_regex_matches_on_every_backend_page(
    backend: str, make_app: Callable[..., App], tmp_path: Path
) -> None:
    """logs_patterns, too, filters here under redaction (the old code mined every line, the regex ignored,
    and stopped after two backend pages)."""
    with _backend(backend, make_app, tmp_path) as app:
        try:
            async with Client(app.server, mode="2026-07-28") as client:
                result = await client.call_tool("logs_patterns", {**WINDOW, "regex": "needle"})
        finally:
            await app.aclose()
    assert not result.is_error, result.content
    out = result.structured_content
    assert out["lines_scanned"] == len(MATCHES) and out["lines_capped"] is False
    assert [p["template"] for p in out["items"]] == ["request <*> needle db=<*>"]
    assert out["items"][0]["count"] == len(MATCHES) and SECRET not in str(out)


async def test_a_timestamp_with_more_lines_than_a_backend_page_is_passed_with_a_note(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    """Loki cannot page within one timestamp: the scan reads a page of it, says so, and goes on (a cursor
    that pointed at it again would never end)."""
    crowded = _when(300) + timedelta(milliseconds=500)  # 100 lines at one instant, more than the 40-line page
    entries = [(to_ns(_when(i)), _line(i), {}) for i in range(LINES)]
    entries += [(to_ns(crowded), _line(1000 + i).replace("hay", "needle"), {}) for i in range(100)]
    labels = {"service_name": "checkout", "namespace": "shop", "app": "checkout", "pod": "checkout-0"}
    with LokiLoopback([Stream(labels=labels, entries=entries)]) as loki:
        section = {"backend": "loki", "loki": {"url": loki.url, "timeout_s": 5, "max_entries": PAGE}}
        app = make_app(("logs",), settings=Settings(state_dir=tmp_path / "state", logs=section))
        try:
            pages = await _pages(app, {**WINDOW, "regex": "needle", "limit": 20, "order": "oldest"})
        finally:
            await app.aclose()
    numbers = [n for page in pages for n in _numbers(page)]
    crowd = [n for n in numbers if n >= 1000]
    assert len(crowd) == PAGE and len(set(crowd)) == PAGE, "one backend page of the crowded instant, once"
    assert [n for n in numbers if n < 1000] == MATCHES
    assert any("more lines share the timestamp" in note for page in pages for note in page["backend_notes"])


async def test_patterns_stop_at_their_line_bound_and_say_so(make_app: Callable[..., App], tmp_path: Path) -> None:
    entries = [(to_ns(_when(i // 2)) + i % 2, _line(i // 2), {}) for i in range(2 * LINES)]  # 1,200 lines
    labels = {"service_name": "checkout", "namespace": "shop", "app": "checkout", "pod": "checkout-0"}
    with LokiLoopback([Stream(labels=labels, entries=entries)]) as loki:
        section = {
            "backend": "loki",
            "patterns_max_lines": 1000,
            "loki": {"url": loki.url, "timeout_s": 5, "max_entries": 300},
        }
        app = make_app(("logs",), settings=Settings(state_dir=tmp_path / "state", logs=section))
        try:
            async with Client(app.server, mode="2026-07-28") as client:
                every = (await client.call_tool("logs_patterns", WINDOW)).structured_content
                filtered = (await client.call_tool("logs_patterns", {**WINDOW, "regex": "needle"})).structured_content
        finally:
            await app.aclose()
    assert every["lines_scanned"] == 1000 and every["lines_capped"] is True
    assert sum(p["count"] for p in every["items"]) == 1000
    # filtered here: at most 1,000 lines are read, and the note says how many of them matched
    assert filtered["lines_capped"] is True and 0 < filtered["lines_scanned"] < 2 * len(MATCHES)
    assert any("patterns_max_lines" in note for note in filtered["backend_notes"]), filtered["backend_notes"]
    assert [p["template"] for p in filtered["items"]] == ["request <*> needle db=<*>"]


@pytest.mark.parametrize("backend", ["loki", "azure"])
async def test_how_far_the_scan_reads_tells_nothing_about_a_masked_secret(
    backend: str, make_app: Callable[..., App], tmp_path: Path
) -> None:
    """The attacker's probe: guess the masked password's next character with `text`, and read not the
    (empty) items but whether the scan hit its bound (truncated, a cursor, a note) and how many backend
    requests it took. Every guess must look alike: a backend that matched `text` on raw lines would return
    every line holding the secret for the right guess and nothing for the others."""
    with _backend(backend, make_app, tmp_path, filter_max_lines=100) as app:
        try:
            answers: dict[str, tuple[Any, ...]] = {}
            async with Client(app.server, mode="2026-07-28") as client:
                for guess in ("app:h", "app:z", "app:q"):
                    result = await client.call_tool("logs_query", {**WINDOW, "text": guess, "limit": 5})
                    assert not result.is_error, result.content
                    out = result.structured_content
                    notes = [n.split(" lines in ")[0] for n in out["backend_notes"]]
                    answers[guess] = (len(out["items"]), out["truncated"], bool(out["next_cursor"]), notes)
        finally:
            await app.aclose()
    assert answers["app:h"] == answers["app:z"] == answers["app:q"], answers
