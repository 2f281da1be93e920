"""Loopback servers for tests, in background threads on 127.0.0.1.

- `serve_asgi` / `serve_http`: ASGI apps under uvicorn: opsgate over Streamable HTTP, and the stand-ins
  for servers that cannot be had here (an OPA Data API, an OIDC issuer).
- `LoopbackServer`: a tiny threaded HTTP server answering `route(method, path, headers, body)`, for
  the stand-ins of backend HTTP APIs (Loki, Log Analytics, Azure Monitor metrics).
- `wait_until_ready` / `stop_process`: a real server started as a process (Prometheus, Alertmanager,
  opsgate replicas), waited for until its readiness URL answers, and stopped.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import httpx
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


def wait_until_ready(
    proc: subprocess.Popen[Any], url: str, timeout_s: float, what: str, log: Callable[[], str] = lambda: ""
) -> None:
    """Poll GET `url` until it answers 200; fail, with `log()`, when `proc` exits first or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}: {log()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not answer {url} within {timeout_s:g} s: {log()}")
        time.sleep(0.1)


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Terminate `proc`; kill it when it has not exited within 10 s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


Reply = tuple[int, dict[str, str], bytes]
Route = Callable[[str, str, dict[str, str], bytes], Reply]


def json_reply(status: int, body: Any) -> Reply:
    return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body).encode()


def text_reply(status: int, body: str) -> Reply:
    return status, {"Content-Type": "text/plain; charset=utf-8"}, body.encode()


class LoopbackServer:
    """Serves `route(method, path_with_query, headers, body)` until closed."""

    def __init__(self, route: Route) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, reply_headers, payload = outer.route(self.command, self.path, headers, body)
                self.send_response(status)
                for key, value in reply_headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.route = route
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
