"""Rate limits per tool, write budgets per target and across targets, and a circuit breaker per target.

In memory, per server process. Write budgets are configured once, in the policy data
(`opsgate_config.budgets`): the policy sees the counts (`recent`, in `context.recent`) and denies a
write over budget with its reason; an allowed real write comes with its budget
(`decision.obligations.budget`), which `check` enforces. The per-tool rate and the breaker protect the
server and its backends and are configured in `[limits]`.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from opsgate.config import LimitSettings
from opsgate.policy.decision import WriteBudget


@dataclass
class Breaker:
    failures: int = 0
    opened_at: float | None = None


class Limiter:
    def __init__(self, settings: LimitSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._tool_calls: dict[str, deque[float]] = defaultdict(deque)
        self._writes: deque[float] = deque()
        self._target_writes: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._breakers: dict[str, Breaker] = defaultdict(Breaker)

    @staticmethod
    def _trim(events: deque[float], horizon: float) -> None:
        while events and events[0] < horizon:
            events.popleft()

    def recent(self, tool: str, target_key: str) -> dict[str, int | float | None]:
        """Counts the policy sees: this tool's writes on this target in the last hour, all writes in a
        minute, and the seconds since this tool last wrote to this target (None: not within the hour)."""
        now = self._clock()
        with self._lock:
            target_events = self._target_writes.get((tool, target_key), deque())
            self._trim(target_events, now - 3600)
            self._trim(self._writes, now - 60)
            last = round(now - target_events[-1], 3) if target_events else None
            return {"target_1h": len(target_events), "global_1m": len(self._writes), "target_last_s": last}

    def check(self, tool: str, target_key: str, write: bool, budget: WriteBudget | None = None) -> str | None:
        """A reason to refuse this call now, or None. Admits (counts) the call when it returns None.

        `write` is a real write; it is held to `budget` (the policy's), and refused without one.
        """
        now = self._clock()
        s = self.settings
        with self._lock:
            breaker = self._breakers.get(target_key)
            if breaker is not None and breaker.opened_at is not None:
                if now - breaker.opened_at < s.breaker_cooldown_s:
                    left = s.breaker_cooldown_s - (now - breaker.opened_at)
                    return (
                        f"circuit breaker open for {target_key} after {breaker.failures} consecutive failures; "
                        f"escalate to a human (it closes by itself in {left:.0f}s, or when the server restarts)"
                    )
                breaker.opened_at, breaker.failures = None, 0
            calls = self._tool_calls[tool]
            self._trim(calls, now - 60)
            if len(calls) >= s.per_tool_per_minute:
                return f"rate limit: {tool} is limited to {s.per_tool_per_minute} calls per minute"
            if write:
                if budget is None:
                    return "the policy gave no write budget for this real write (obligations.budget); denied"
                self._trim(self._writes, now - 60)
                if len(self._writes) >= budget.global_1m:
                    return f"budget: at most {budget.global_1m} writes per minute overall"
                events = self._target_writes[(tool, target_key)]
                self._trim(events, now - 3600)
                if len(events) >= budget.target_1h:
                    return f"budget: at most {budget.target_1h} {tool} per {target_key} per hour"
                if events and now - events[-1] < budget.target_interval_s:
                    wait = budget.target_interval_s - (now - events[-1])
                    return (
                        f"budget: one {tool} per {target_key} every {budget.target_interval_s:.0f}s; "
                        f"next allowed in {wait:.0f}s"
                    )
            calls.append(now)
            return None

    def record(self, tool: str, target_key: str, *, write: bool, ok: bool, applied: bool) -> None:
        """Record an executed call's outcome: failures trip the breaker, applied writes use budget."""
        now = self._clock()
        with self._lock:
            if write and applied:
                self._writes.append(now)
                self._target_writes[(tool, target_key)].append(now)
            breaker = self._breakers[target_key]
            if ok:
                breaker.failures = 0
                return
            breaker.failures += 1
            if breaker.failures >= self.settings.breaker_failures:
                breaker.opened_at = now
