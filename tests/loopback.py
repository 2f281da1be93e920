"""Run ASGI apps on loopback in a background thread (tests only): opsgate over Streamable HTTP, and the
stand-ins for servers that cannot be had here (an OPA Data API, an OIDC issuer)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from opsgate.config import Settings
from opsgate.server import App, http_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_asgi(app: ASGIApp, port: int, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `app` until the block ends; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="auto"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"loopback server on {host}:{port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serve_http(app: App, settings: Settings) -> Iterator[str]:
    """opsgate's Streamable HTTP app; yields the MCP endpoint URL."""
    with serve_asgi(http_app(app, settings), settings.http.port, settings.http.host) as base:
        yield base + settings.http.path
