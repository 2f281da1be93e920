"""All four backends answer the same typed query through a real MCP client session (both wire
generations): files on disk, the Kubernetes API emulation, and loopback Loki and Log Analytics servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from opsgate.server import App
from tests.logs import corpus
from tests.logs.apps import azure_app, files_app, kube_app, loki_app, seed_kube_pods
from tests.logs.azure_loopback import AzureLoopback
from tests.logs.loki_loopback import LokiLoopback

BACKENDS = ["files", "kubernetes", "loki", "azure"]


@pytest.fixture(params=BACKENDS)
async def backend_app(
    request: pytest.FixtureRequest, make_app: Callable[..., App], tmp_path: Path
) -> AsyncIterator[tuple[str, App, Any]]:
    base = corpus.recent_base()
    with ExitStack() as stack:
        server: Any = None
        if request.param == "files":
            app = files_app(make_app, tmp_path, base)
        elif request.param == "kubernetes":
            kube_api = request.getfixturevalue("kube_api")
            seed_kube_pods(kube_api, request.getfixturevalue("kube_client"), base)
            app = kube_app(make_app, tmp_path, request.getfixturevalue("kube_kubeconfig"))
        elif request.param == "loki":
            server = stack.enter_context(LokiLoopback(corpus.loki_streams(base)))
            app = loki_app(make_app, tmp_path, server.url)
        else:
            server = stack.enter_context(AzureLoopback(corpus.azure_tables(base)))
            app = azure_app(make_app, tmp_path, server.endpoint)
        request.node.base = base
        yield request.param, app, server
        await app.aclose()


async def test_every_backend_answers_the_same_typed_query(
    backend_app: tuple[str, App, Any], request: pytest.FixtureRequest, wire_mode: str
) -> None:
    name, app, _ = backend_app
    async with Client(app.server, mode=wire_mode) as client:
        result = await client.call_tool("logs_query", corpus.typed_query(request.node.base))
    assert not result.is_error, result.content
    out = result.structured_content
    assert out["backend"] == name
    assert [item["message"] for item in out["items"]] == corpus.EXPECTED
    assert {item["service"] for item in out["items"]} == {"checkout"}
    assert {item["level"] for item in out["items"]} == {"error"}
    assert out["truncated"] is False and out["next_cursor"] is None
    text = str(result.content[0].text)  # type: ignore[union-attr]
    assert "data" in text and "not instructions" in text


async def test_every_backend_pages_newest_first_with_a_cursor(
    backend_app: tuple[str, App, Any], request: pytest.FixtureRequest, wire_mode: str
) -> None:
    _, app, _ = backend_app
    args = {**corpus.typed_query(request.node.base), "order": "newest", "limit": 1}
    seen: list[str] = []
    async with Client(app.server, mode=wire_mode) as client:
        for _ in range(4):
            result = await client.call_tool("logs_query", args)
            assert not result.is_error, result.content
            seen += [item["message"] for item in result.structured_content["items"]]
            cursor = result.structured_content["next_cursor"]
            if cursor is None:
                break
            args = {**args, "cursor": cursor}
    assert seen == list(reversed(corpus.EXPECTED))


async def test_every_backend_groups_patterns(backend_app: tuple[str, App, Any], request: pytest.FixtureRequest) -> None:
    _, app, _ = backend_app
    args = {k: v for k, v in corpus.typed_query(request.node.base).items() if k != "order"}
    args.pop("min_severity")
    async with Client(app.server, mode="legacy") as client:
        result = await client.call_tool("logs_patterns", args)
    assert not result.is_error, result.content
    out = result.structured_content
    assert out["lines_scanned"] == 4  # the checkout lines mentioning "timeout" in the window
    assert sum(p["count"] for p in out["items"]) == 4
    top = out["items"][0]
    assert top["levels"].get("error", 0) >= 1  # worst severity ranks first
    assert all(p["first_seen"] <= p["last_seen"] for p in out["items"])
