"""Run an opsgate app over Streamable HTTP on loopback in a background thread (tests only)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from opsgate.config import Settings
from opsgate.server import App, http_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_http(app: App, settings: Settings) -> Iterator[str]:
    config = uvicorn.Config(
        http_app(app, settings), host=settings.http.host, port=settings.http.port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("HTTP server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{settings.http.host}:{settings.http.port}{settings.http.path}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
