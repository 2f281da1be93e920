"""What the HTTP alert sources' failures become, against a loopback server answering each failure for real:
no answer and 5xx are `BackendUnavailable` (they feed the breaker), a 4xx is a `ToolError` quoting the source,
malformed JSON is `BackendUnavailable`. Alertmanager and Prometheus share one mapping (`alerts.backends.http`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from opsgate.alerts.backends.alertmanager import AlertmanagerBackend
from opsgate.alerts.backends.prometheus import PrometheusAlertsBackend
from opsgate.contracts import BackendUnavailable, ToolError
from tests.support.loopback import LoopbackServer, Reply, free_port, text_reply

Source = Callable[[str], tuple[str, Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]]


def _alertmanager(url: str) -> tuple[str, Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    backend = AlertmanagerBackend(url, timeout_s=5)
    return "Alertmanager", lambda: backend.alerts([], silenced=False), backend.aclose


def _prometheus(url: str) -> tuple[str, Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    backend = PrometheusAlertsBackend(url, timeout_s=5)
    return "Prometheus", backend.alerts, backend.aclose


SOURCES = [pytest.param(_alertmanager, id="alertmanager"), pytest.param(_prometheus, id="prometheus")]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    ("reply", "error", "words"),
    [
        (text_reply(400, "bad matcher: {x"), ToolError, "rejected the request to list alerts: HTTP 400: bad matcher"),
        (text_reply(503, "overloaded"), BackendUnavailable, "failed to list alerts: HTTP 503"),
        (text_reply(200, "<html>not json</html>"), BackendUnavailable, "answered list alerts with malformed JSON"),
    ],
)
async def test_a_failed_answer_is_named_and_classified(
    source: Source, reply: Reply, error: type[ToolError], words: str
) -> None:
    with LoopbackServer(lambda method, path, headers, body: reply) as server:
        name, call, close = source(server.url)
        try:
            with pytest.raises(ToolError) as caught:
                await call()
        finally:
            await close()
    assert type(caught.value) is error
    assert str(caught.value).startswith(name) and words in str(caught.value), str(caught.value)


@pytest.mark.parametrize("source", SOURCES)
async def test_no_answer_is_unavailable(source: Source) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    name, call, close = source(url)
    try:
        with pytest.raises(BackendUnavailable) as caught:
            await call()
    finally:
        await close()
    assert str(caught.value).startswith(f"{name} at {url} is unreachable (ConnectError) to list alerts")
