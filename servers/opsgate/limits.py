"""Rate limits per caller with a global ceiling, write limits reserved before a write runs, breakers.

- Call rates (every call): per caller subject and tool, and a ceiling over all callers, in memory
  per process (they protect this process and its backends).
- Real writes (`dry_run` false) take one event on each write counter *before* the policy decides and
  before anything runs, atomically in the shared state store (`opsgate.state`): the per-target
  interval, the per-target hour (the policy's `target_1h`) and writes per minute overall. A write the
  policy refuses, or one that applied nothing, releases its events; an applied write keeps them. So
  writes started concurrently, on one replica or several, cannot outrun a limit, and a restart
  forgets nothing. The counts taken before this write feed the policy (`context.recent`), so budgets
  in policy data see in-flight writes too.
- Breakers: consecutive failures of real writes per target open it for `breaker_cooldown_s`; an
  open breaker refuses real writes on that target. Reads never open it and are never refused by it, so
  failing reads cannot lock out `rollback_deployment` or `rollout_status`.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

from opsgate.config import LimitSettings
from opsgate.state.base import Counter, LimitStore, Reservation

HOUR = 3600.0
MINUTE = 60.0
ALL_WRITES = "write:*"


class Limiter:
    def __init__(
        self,
        settings: LimitSettings,
        store: LimitStore | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if store is None:
            from opsgate.state.sqlite import SqliteLimitStore

            store = SqliteLimitStore(":memory:")
        self.settings = settings
        self.store = store
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._caller_calls: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._all_calls: deque[float] = deque()

    # -- call rates ---------------------------------------------------------------------------

    @staticmethod
    def _trim(events: deque[float], horizon: float) -> None:
        while events and events[0] < horizon:
            events.popleft()

    def admit(self, tool: str, subject: str) -> str | None:
        """A reason to refuse this call's rate now, or None (and the call is counted)."""
        now = self._monotonic()
        s = self.settings
        with self._lock:
            self._trim(self._all_calls, now - MINUTE)
            if len(self._all_calls) >= s.global_per_minute:
                return f"rate limit: this server takes at most {s.global_per_minute} calls per minute from all callers"
            calls = self._caller_calls[(subject, tool)]
            self._trim(calls, now - MINUTE)
            if len(calls) >= s.per_tool_per_minute:
                return f"rate limit: {tool} is limited to {s.per_tool_per_minute} calls per minute per caller"
            calls.append(now)
            self._all_calls.append(now)
            if len(self._caller_calls) > 10000:
                for key in [k for k, v in self._caller_calls.items() if not v]:
                    del self._caller_calls[key]
            return None

    # -- write limits -------------------------------------------------------------------------

    def write_counters(self, tool: str, target_key: str) -> list[Counter]:
        s = self.settings
        key = f"write:{tool}:{target_key}"
        counters = [
            Counter(key, HOUR),
            Counter(
                ALL_WRITES,
                MINUTE,
                s.writes_per_minute,
                f"rate limit: at most {s.writes_per_minute} write calls per minute overall;"
                " next slot in {wait_s:.0f}s",
            ),
        ]
        if s.per_target_write_interval_s > 0:
            counters.append(
                Counter(
                    key,
                    s.per_target_write_interval_s,
                    1,
                    f"budget: one {tool} per {target_key} every {s.per_target_write_interval_s:.0f}s"
                    " (including writes still running); next allowed in {wait_s:.0f}s",
                )
            )
        return counters

    @staticmethod
    def _recent(tool: str, target_key: str, counts: dict[tuple[str, float], int]) -> dict[str, int]:
        return {
            "target_1h": counts.get((f"write:{tool}:{target_key}", HOUR), 0),
            "global_1m": counts.get((ALL_WRITES, MINUTE), 0),
        }

    def recent(self, tool: str, target_key: str) -> dict[str, int]:
        """Counts the policy sees: this tool's writes on this target in the last hour, all writes in a minute."""
        counters = self.write_counters(tool, target_key)[:2]
        return self._recent(tool, target_key, self.store.counts(counters, self._clock()))

    def reserve(self, tool: str, target_key: str) -> tuple[Reservation, dict[str, int]]:
        """Take this real write's events (or refuse); the counts before it, for the policy."""
        holder = "rsv_" + secrets.token_hex(10)
        reservation = self.store.reserve(self.write_counters(tool, target_key), holder, self._clock())
        return reservation, self._recent(tool, target_key, reservation.counts)

    def settle(self, reservation: Reservation, *, applied: bool) -> None:
        if reservation.refused is not None:
            return
        if applied:
            self.store.keep(reservation.id)
        else:
            self.store.release(reservation.id)

    # -- breakers -----------------------------------------------------------------------------

    def breaker_refusal(self, target_key: str) -> str | None:
        """Why a real write on `target_key` is refused by its breaker, or None."""
        state = self.store.breaker(target_key)
        if state.opened_at is None:
            return None
        now = self._clock()
        cooldown = self.settings.breaker_cooldown_s
        if now - state.opened_at >= cooldown:
            self.store.breaker_reset(target_key)  # half-open: the next write decides
            return None
        left = cooldown - (now - state.opened_at)
        return (
            f"circuit breaker open for writes to {target_key} after {state.failures} consecutive failed writes; "
            f"escalate to a human (it closes by itself in {left:.0f}s); read tools are not affected"
        )

    def write_result(self, target_key: str, *, ok: bool) -> None:
        """Record a real write's outcome: consecutive failures open the target's breaker."""
        self.store.breaker_result(target_key, ok=ok, threshold=self.settings.breaker_failures, now=self._clock())

    def close(self) -> None:
        self.store.close()
