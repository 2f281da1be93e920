"""Rate limits per caller with a global ceiling, write limits reserved before a write runs, breakers.

- Call rates (every call): per caller subject and tool, and a ceiling over all callers, in memory
  per process (they protect this process and its backends).
- Write budgets are policy data (`opsgate_config.budgets`, the one source): the policy sees the counts
  (`context.recent`: this tool's writes on the target in the hour, all writes in the minute, seconds
  since this tool last wrote to the target; in-flight writes included) and denies a write over budget
  with its reason. An allowed real write carries its budget (`decision.obligations.budget`), and before
  anything runs it *reserves* one event on each counter of that budget, atomically in the shared state
  store (`opsgate.state`), or is refused: so writes that passed the policy concurrently, on one
  replica or several, cannot outrun it, and a restart forgets nothing. An applied write keeps its
  events; one that applied nothing releases them; one that ended in an error keeps them (it may have
  changed something). The store only knows counters with limits (`Counter`), not where they came from.
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
from opsgate.policy.decision import WriteBudget
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

    def write_counters(self, tool: str, target_key: str, budget: WriteBudget | None) -> list[Counter]:
        """The counters a real write of `tool` on `target_key` takes, limited by `budget` when given."""
        key = f"write:{tool}:{target_key}"
        if budget is None:
            return [Counter(key, HOUR), Counter(ALL_WRITES, MINUTE)]
        counters = [
            Counter(
                key,
                HOUR,
                budget.target_1h,
                f"budget: at most {budget.target_1h} {tool} per {target_key} per hour"
                " (including writes still running); next slot in {wait_s:.0f}s",
            ),
            Counter(
                ALL_WRITES,
                MINUTE,
                budget.global_1m,
                f"budget: at most {budget.global_1m} writes per minute overall (including writes still running);"
                " next slot in {wait_s:.0f}s",
            ),
        ]
        if budget.target_interval_s > 0:
            counters.append(
                Counter(
                    key,
                    budget.target_interval_s,
                    1,
                    f"budget: one {tool} per {target_key} every {budget.target_interval_s:.0f}s"
                    " (including writes still running); next allowed in {wait_s:.0f}s",
                )
            )
        return counters

    def recent(self, tool: str, target_key: str) -> dict[str, int | float | None]:
        """Counts the policy sees: this tool's writes on this target in the last hour, all writes in a
        minute, and the seconds since this tool last wrote to this target (None: not within the hour)."""
        now = self._clock()
        counters = self.write_counters(tool, target_key, None)
        counts = self.store.counts(counters, now)  # one read: counts and the target's newest write
        target_1h, last = counts.get((counters[0].key, HOUR), (0, None))
        return {
            "target_1h": target_1h,
            "global_1m": counts.get((ALL_WRITES, MINUTE), (0, None))[0],
            "target_last_s": None if last is None else round(max(0.0, now - last), 3),
        }

    def reserve(self, tool: str, target_key: str, budget: WriteBudget) -> Reservation:
        """Take this real write's events under `budget` (or refuse, taking nothing)."""
        holder = "rsv_" + secrets.token_hex(10)
        return self.store.reserve(self.write_counters(tool, target_key, budget), holder, self._clock())

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
