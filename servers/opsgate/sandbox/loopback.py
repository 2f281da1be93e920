"""Serving an ASGI app on 127.0.0.1 in a background thread: the sandbox's loopback APIs (the Kubernetes
API emulation, the Prometheus-compatible API) and test stand-ins."""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Any, Self

import uvicorn

LOOPBACK = "127.0.0.1"


class LoopbackApp:
    """Serve an ASGI app on 127.0.0.1 in a background thread (port 0: any free port)."""

    def __init__(self, app: Any, name: str, port: int = 0, *, graceful_s: int | None = None) -> None:
        self.app = app
        self.name = name
        self._requested_port = port
        self._graceful_s = graceful_s
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int | None:
        """The port it listens on (kept after `stop`); None before the first `start`."""
        return self._port

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError(f"{self.name} is not running")
        return f"http://{LOOPBACK}:{self._port}"

    def start(self, timeout: float = 10.0) -> Self:
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP;
        # without it every keep-alive response waits ~40 ms on Nagle and delayed ACKs.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, self._requested_port))
        self._port = int(listener.getsockname()[1])
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=self._graceful_s
        )
        server = uvicorn.Server(config)
        self._server = server
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name=self.name, daemon=True)
        self._thread = thread
        thread.start()
        waited = threading.Event()
        for _ in range(int(timeout / 0.01)):
            if server.started or not thread.is_alive():
                break
            waited.wait(0.01)
        if not server.started:
            self.stop()
            raise RuntimeError(f"{self.name} did not start on {LOOPBACK}:{self._port}")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server, self._thread = None, None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
