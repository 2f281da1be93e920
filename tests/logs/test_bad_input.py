"""Bad input gets a clear, audited tool error naming the problem, never a hang: malformed windows,
invalid and catastrophic regexes, unknown backends, unreachable endpoints, rejected credentials,
corrupt gzip files, raw queries without the role."""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import re2
from mcp import Client

from opsgate.config import ConfigError, LocalCaller, Settings
from opsgate.server import App
from tests.logs import corpus
from tests.logs.apps import azure_app, files_app, loki_app
from tests.logs.azure_loopback import AzureLoopback
from tests.logs.loki_loopback import LokiLoopback
from tests.logs.test_translation import PAYLOADS
from tests.support.azure import FailingCredential, StaticTokenCredential


async def _call(app: App, args: dict[str, Any], tool: str = "logs_query", mode: str = "legacy") -> Any:
    async with Client(app.server, mode=mode) as client:
        return await client.call_tool(tool, args)


def _text(result: Any) -> str:
    return str(result.content[0].text)


def _last_audit(app: App) -> dict[str, Any]:
    return dict(app.gate.audit.tail(1)[-1].record)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"since": "15 minutes"}, "invalid duration"),
        ({"since": "0m"}, "must be positive"),
        ({"start": "yesterday"}, "invalid time 'yesterday'"),
        ({"start": "2026-11-23T04:00:00"}, "add a zone"),
        ({"start": "2026-11-23T05:00:00Z", "end": "2026-11-23T04:00:00Z"}, "is not after its start"),
        ({"since": "15m", "start": "2026-11-23T04:00:00Z"}, "either `since` or `start`/`end`"),
        ({"regex": "(unclosed"}, "invalid regex"),
        ({"regex": r"(a)\1"}, "no backreferences"),
        ({"min_severity": "loud"}, "min_severity"),
        ({"limit": 0}, "limit"),
        ({"service": "checkout", "selector": "app=checkout"}, "either `service` or `selector`"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor is not one this server issued"),
    ],
)
async def test_invalid_arguments_are_named_and_audited(
    make_app: Callable[..., App], tmp_path: Path, args: dict[str, Any], named: str
) -> None:
    app = files_app(make_app, tmp_path, corpus.recent_base())
    result = await _call(app, args)
    assert result.is_error
    assert named in result.content[0].text
    record = _last_audit(app)
    assert record["tool"] == "logs_query" and record["outcome"] in ("invalid", "error")
    await app.aclose()


async def test_window_longer_than_allowed_is_refused(make_app: Callable[..., App], tmp_path: Path) -> None:
    app = files_app(make_app, tmp_path, corpus.recent_base(), max_window="1d")
    result = await _call(app, {"since": "2d"})
    assert result.is_error and "longer than the allowed 1d" in result.content[0].text
    await app.aclose()


async def test_catastrophic_regex_runs_in_linear_time(make_app: Callable[..., App], tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    stamp = "2026-11-23T04:00:00Z"
    (folder / "evil.log").write_text("".join(f"{stamp} ERROR {'a' * 5000}!\n" for _ in range(200)))
    section = {"files": {"sources": [{"path": str(folder / "*.log")}]}, "now": "2026-11-23T04:30:00Z"}
    app = make_app(("logs",), settings=Settings(state_dir=tmp_path / "state", logs=section))
    started = time.monotonic()
    result = await _call(app, {"regex": "(a+)+$"})
    # `re` would need about 2**5000 steps per line; RE2 answers (no line ends in a's) at once
    assert not result.is_error and result.structured_content["items"] == []
    assert time.monotonic() - started < 10
    await app.aclose()


def test_unknown_backend_is_a_config_error(tmp_path: Path) -> None:
    from opsgate.logs.server import build

    with pytest.raises(ConfigError, match=r"'splunk' is not a logs backend; choose one of files, kubernetes"):
        build(Settings(state_dir=tmp_path, logs={"backend": "splunk"}))
    with pytest.raises(ConfigError, match="workspace_id is required"):
        build(Settings(state_dir=tmp_path, logs={"backend": "azure"}))
    with pytest.raises(ConfigError, match=r"logs\.loki\.timeout_s"):
        build(Settings(state_dir=tmp_path, logs={"backend": "loki", "loki": {"timeout_s": -1}}))


async def test_unreachable_loki_is_backend_unavailable(make_app: Callable[..., App], tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    app = loki_app(make_app, tmp_path, url)
    result = await _call(app, {"service": "checkout"})
    assert result.is_error
    assert f"backend unavailable: Loki at {url} is unreachable" in result.content[0].text
    assert _last_audit(app)["outcome"] == "error"
    await app.aclose()


async def test_loki_query_errors_come_back_named(make_app: Callable[..., App], tmp_path: Path) -> None:
    with LokiLoopback(corpus.loki_streams(corpus.recent_base())) as loki:
        roles = Settings(
            state_dir=tmp_path / "state",
            caller=LocalCaller(roles=["sre"]),
            logs={"backend": "loki", "loki": {"url": loki.url}},
        )
        app = make_app(("logs",), settings=roles)
        result = await _call(app, {"raw_query": '{service_name="checkout" |= "x"'})
        assert result.is_error and "Loki rejected the query: parse error" in result.content[0].text
        await app.aclose()


async def test_unreachable_azure_is_backend_unavailable(make_app: Callable[..., App], tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    app = azure_app(make_app, tmp_path, endpoint)
    started = time.monotonic()
    result = await _call(app, {"service": "checkout"})
    assert result.is_error
    assert f"backend unavailable: Azure Monitor at {endpoint} is unreachable" in result.content[0].text
    assert time.monotonic() - started < 20
    await app.aclose()


@pytest.mark.parametrize(
    ("credential", "named"),
    [
        (StaticTokenCredential("expired-token"), "Azure Monitor rejected the credential"),
        (FailingCredential(), "DefaultAzureCredential failed to retrieve a token"),
    ],
)
async def test_rejected_azure_credential_is_named(
    make_app: Callable[..., App], tmp_path: Path, credential: Any, named: str
) -> None:
    with AzureLoopback(corpus.azure_tables(corpus.recent_base())) as azure:
        app = azure_app(make_app, tmp_path, azure.endpoint, credential=credential)
        result = await _call(app, {"service": "checkout"})
        assert result.is_error and named in result.content[0].text
        assert _last_audit(app)["outcome"] == "error"
        await app.aclose()


async def test_azure_errors_and_partial_results(make_app: Callable[..., App], tmp_path: Path) -> None:
    base = corpus.recent_base()
    with AzureLoopback(corpus.azure_tables(base)) as azure:
        app = azure_app(make_app, tmp_path, azure.endpoint)
        azure.partial = True
        result = await _call(app, corpus.typed_query(base))
        assert not result.is_error
        assert [i["message"] for i in result.structured_content["items"]] == corpus.EXPECTED
        assert "partial result from Azure Monitor (PartialError" in result.structured_content["backend_notes"][0]
        assert "partial result" in result.content[0].text
        azure.partial = False
        invalid = {"code": "BadArgumentError", "message": "The request had some invalid properties"}
        azure.fail = (400, {"error": invalid})
        result = await _call(app, corpus.typed_query(base))
        assert result.is_error and "Azure Monitor rejected the query (400)" in result.content[0].text
        azure.fail = (503, {"error": {"code": "ServiceUnavailable", "message": "try later"}})
        result = await _call(app, corpus.typed_query(base))
        assert result.is_error and "backend unavailable: Azure Monitor answered 503" in result.content[0].text
        await app.aclose()


async def test_corrupt_gzip_is_named(make_app: Callable[..., App], tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    good = gzip.compress(b'{"ts":"2026-11-23T04:00:00Z","level":"error","msg":"boom"}\n' * 100)
    (folder / "checkout.jsonl.1.gz").write_bytes(good[: len(good) // 2])
    section = {"files": {"sources": [{"path": str(folder / "*")}]}, "now": "2026-11-23T04:30:00Z"}
    app = make_app(("logs",), settings=Settings(state_dir=tmp_path / "state", logs=section))
    result = await _call(app, {"service": "checkout"})
    assert result.is_error
    assert "corrupt gzip log file" in result.content[0].text and "checkout.jsonl.1.gz" in result.content[0].text
    await app.aclose()


async def test_raw_query_needs_a_privileged_role(make_app: Callable[..., App], tmp_path: Path) -> None:
    base = corpus.recent_base()
    with LokiLoopback(corpus.loki_streams(base)) as loki:
        app = loki_app(make_app, tmp_path, loki.url)
        raw = '{service_name="payments"} |= "database"'
        denied = await _call(app, {"raw_query": raw, "start": corpus.typed_query(base)["start"]})
        assert denied.is_error and "raw backend queries need one of the roles" in denied.content[0].text
        assert loki.queries == []
        await app.aclose()
        sre = Settings(
            state_dir=tmp_path / "sre",
            caller=LocalCaller(roles=["sre"]),
            logs={"backend": "loki", "loki": {"url": loki.url}},
        )
        app = make_app(("logs",), settings=sre)
        allowed = await _call(app, {"raw_query": raw, "start": corpus.typed_query(base)["start"]})
        assert not allowed.is_error
        assert [i["message"] for i in allowed.structured_content["items"]] == ["upstream timeout from the database"]
        assert loki.queries == [raw]
        await app.aclose()


@pytest.mark.parametrize("field", ["text", "regex"])
async def test_injection_through_mcp_reaches_loki_and_azure_as_literals(
    make_app: Callable[..., App], tmp_path: Path, field: str
) -> None:
    base = corpus.recent_base()
    window = {k: corpus.typed_query(base)[k] for k in ("start", "end")}
    payloads = PAYLOADS if field == "text" else ['"}|~".*', r"\" | take 1", '.*" or "1"=="1', "zz`}|zz"]
    in_window = [e for e in corpus.EVENTS if 0 <= e.offset_s <= 300]

    def expected(payload: str) -> int:
        if field == "text":
            return sum(payload.lower() in corpus.json_line(base, e).lower() for e in in_window)
        # under the shipped policy's redaction the regex runs in opsgate on the redacted message, never in the
        # backend on raw text (that would be an oracle for masked secrets)
        return sum(re2.search(payload, e.msg) is not None for e in in_window)

    with LokiLoopback(corpus.loki_streams(base)) as loki, AzureLoopback(corpus.azure_tables(base)) as azure:
        for index, app in enumerate(
            [loki_app(make_app, tmp_path / "l", loki.url), azure_app(make_app, tmp_path / "a", azure.endpoint)]
        ):
            for payload in payloads:
                result = await _call(app, {**window, field: payload, "limit": 100})
                # the loopback servers parse what they get: a broken literal would be a syntax error,
                # an injected `or true` or a dropped filter would return other lines
                assert not result.is_error, (index, payload, result.content)
                assert len(result.structured_content["items"]) == expected(payload), (index, payload)
            await app.aclose()
