"""Connection limits for hosted mode: a bounded number of open connections and a header read timeout.

Without them, 1,100 half-open requests (a connection that sends part of its headers and waits) take
every file descriptor a default `ulimit -n 1024` gives the process: `accept()` fails and nobody else
gets in. uvicorn bounds neither (`limit_concurrency` answers 503 only once a request's headers are
complete), so opsgate serves HTTP/1.1 with a guarded h11 protocol:

- a connection waiting for a request's headers (a new one, or an idle keep-alive one) is closed after
  `header_timeout_s`;
- at most `max_connections` are open; a new connection past the limit evicts the connection that
  has waited longest for its headers (so a flood of half-open requests cannot lock out a client that
  sends a whole request), or is closed at once when every open connection is busy with a request.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)
WARN_EVERY_S = 10.0


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a connection cap and a header read timeout (see the module doc)."""

    max_connections: ClassVar[int] = 512
    header_timeout_s: ClassVar[float] = 10.0
    # connections waiting for request headers, oldest first (shared by one server's connections)
    waiting: ClassVar[OrderedDict[GuardedH11Protocol, asyncio.TimerHandle]]
    over_limit: ClassVar[int] = 0
    last_warning: ClassVar[float] = float("-inf")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._request_cycle: Any = None
        if len(self.connections) > self.max_connections:
            self._warn()
            if self.waiting:
                oldest, _ = next(iter(self.waiting.items()))
                oldest._drop()
            else:
                self._abort()  # every open connection is busy with a request: refuse this one
                return
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and self.cycle is not self._request_cycle:
            self._request_cycle = self.cycle  # a request's headers are in: no longer waiting
            self._stop_waiting()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.cycle is self._request_cycle:
            self._await_headers()  # idle keep-alive: the next request's headers are on the clock too

    # -- helpers ----------------------------------------------------------------------------------

    def _warn(self) -> None:
        """One warning per WARN_EVERY_S while the limit is hit, not one per connection of a flood."""
        now = self.loop.time()
        cls = type(self)
        cls.over_limit += 1
        if now - cls.last_warning >= WARN_EVERY_S:
            logger.warning(
                "connection limit %d reached %d time(s): closing connections that wait longest for headers",
                self.max_connections,
                cls.over_limit,
            )
            cls.last_warning, cls.over_limit = now, 0

    def _await_headers(self) -> None:
        self._stop_waiting()
        self.waiting[self] = self.loop.call_later(self.header_timeout_s, self._drop)

    def _stop_waiting(self) -> None:
        timer = self.waiting.pop(self, None)
        if timer is not None:
            timer.cancel()

    def _drop(self) -> None:
        self._stop_waiting()
        self._abort()

    def _abort(self) -> None:
        self.connections.discard(self)
        if not self.transport.is_closing():
            self.transport.abort()


def guarded_protocol(max_connections: int, header_timeout_s: float) -> type[GuardedH11Protocol]:
    """A protocol class for one server (its own waiting list), for `uvicorn.Config(http=...)`."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"max_connections": max_connections, "header_timeout_s": header_timeout_s, "waiting": OrderedDict()},
    )
