"""What opsgate keeps between calls, and the interfaces each state backend (SQLite, PostgreSQL) provides.

- `AuditStore`: the rows of the hash-chained audit trail, a head, a chain id and stored checkpoints.
  The store serialises appends (one chain across threads, processes and replicas); the hashing and
  verification rules live in `opsgate.audit`, once for every backend.
- `LimitStore`: counters with limits, reserved before a write runs. A reservation takes one event on
  each counter in one transaction, but only if every counter with a maximum has room; it is then kept
  (the write was applied) or released (it was not). Events of a process that died stay counted until
  they leave their window (fail closed). Whatever decides the limits (TOML settings, policy data)
  hands `Counter`s to `reserve`; the store knows nothing about where the numbers came from.
- Breakers: consecutive failures of writes per target, opened at a threshold for a cool-down.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

GENESIS = "0" * 64  # the previous hash of a trail's first record
# Columns an `AuditStore.find` filters by (each store refuses others).
FINDABLE = frozenset({"call_id", "tool", "outcome", "subject", "decision_id"})
# Limit events older than this are pruned (no window is longer).
PRUNE_AFTER_S = 7 * 86400.0


class StateError(Exception):
    """State that cannot be used as it is: a store that is down, or an audit trail that is not the one it
    should be. A server refuses to start on it."""


class StateUnavailable(StateError):
    """The state store cannot be reached or used; writes fail closed."""


@dataclass(frozen=True)
class AuditRow:
    seq: int
    v: int
    ts: str
    call_id: str
    decision_id: str | None
    tool: str
    subject: str
    outcome: str
    body: str
    prev_hash: str
    hash: str

    def values(self) -> tuple[object, ...]:
        """The columns in `AUDIT_COLUMNS` order, as both stores insert them (no deep copy: a hot path)."""
        return (
            self.seq, self.v, self.ts, self.call_id, self.decision_id, self.tool,
            self.subject, self.outcome, self.body, self.prev_hash, self.hash,
        )  # fmt: skip


AUDIT_COLUMNS = "seq, v, ts, call_id, decision_id, tool, subject, outcome, body, prev_hash, hash"


def audit_row(values: Sequence[Any]) -> AuditRow:
    """An `AuditRow` from the columns in `AUDIT_COLUMNS` order, as both stores select them."""
    seq, v, ts, call_id, decision_id, tool, subject, outcome, body, prev_hash, hash_ = values
    return AuditRow(
        seq=int(seq),
        v=int(v),
        ts=str(ts),
        call_id=str(call_id),
        decision_id=None if decision_id is None else str(decision_id),
        tool=str(tool),
        subject=str(subject),
        outcome=str(outcome),
        body=str(body),
        prev_hash=str(prev_hash),
        hash=str(hash_),
    )


RowMaker = Callable[[int, str], AuditRow]


class AuditStore(Protocol):
    location: str

    def chain_id(self) -> str: ...

    def append(self, make: RowMaker, *, durable: bool) -> AuditRow:
        """Build the next row from (seq, prev_hash) under the store's lock and commit it with the head."""
        ...

    def head(self) -> tuple[int, str]: ...

    def rows(self) -> Iterator[AuditRow]: ...

    def tail(self, n: int) -> list[AuditRow]: ...

    def row(self, seq: int) -> AuditRow | None: ...

    def find(self, where: dict[str, str]) -> list[str]:
        """Bodies of rows whose indexed columns match, in order."""
        ...

    def add_checkpoint(self, seq: int, body: str, *, durable: bool) -> None: ...

    def checkpoints(self) -> list[str]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Counter:
    """One counter a write takes an event on: `key` counted over the last `window_s` seconds.

    With `limit`, the reservation fails when `limit` events are already in the window; `message`
    (formatted with `count`, `limit`, `window_s`, `wait_s`) says why.
    """

    key: str
    window_s: float
    limit: int | None = None
    message: str = "limit: {count} of {limit} in {window_s:.0f}s"


def refusal(counter: Counter, count: int, oldest: float | None, now: float) -> str:
    """Why `counter` refuses a reservation: its message, with the wait until its oldest event leaves the window."""
    wait = max(0.0, (oldest + counter.window_s - now) if oldest is not None else counter.window_s)
    return counter.message.format(count=count, limit=counter.limit, window_s=counter.window_s, wait_s=wait)


@dataclass
class Reservation:
    """Events taken by one write; `counts` are the events each counter held before this one."""

    id: str
    counts: dict[tuple[str, float], int] = field(default_factory=dict)
    refused: str | None = None

    def count(self, key: str, window_s: float) -> int:
        return self.counts.get((key, window_s), 0)


@dataclass(frozen=True)
class BreakerState:
    failures: int
    opened_at: float | None


@dataclass(frozen=True)
class StoredKey:
    """An API key kept in the state store (its SHA-256 only), shared by every replica."""

    sha256: str
    subject: str
    roles: list[str]
    created_at: float
    revoked_at: float | None = None


def stored_key(row: Sequence[Any]) -> StoredKey:
    """A `StoredKey` from (sha256, subject, roles JSON, created_at, revoked_at), as both stores select them."""
    return StoredKey(
        sha256=str(row[0]),
        subject=str(row[1]),
        roles=list(json.loads(row[2])),
        created_at=float(row[3]),
        revoked_at=None if row[4] is None else float(row[4]),
    )


class ApiKeyStore(Protocol):
    def add_key(self, sha256: str, subject: str, roles: list[str], now: float) -> None: ...

    def revoke_key(self, sha256: str, now: float) -> bool:
        """Revoke a key; False when no such (unrevoked) key exists."""
        ...

    def lookup_key(self, sha256: str) -> StoredKey | None:
        """The key with this hash unless it is revoked."""
        ...

    def list_keys(self) -> list[StoredKey]: ...


class LimitStore(Protocol):
    def reserve(self, counters: Sequence[Counter], holder: str, now: float) -> Reservation:
        """Atomically count and take one event on every counter, or take nothing and say why."""
        ...

    def counts(self, counters: Sequence[Counter], now: float) -> dict[tuple[str, float], tuple[int, float | None]]:
        """Per counter, in one read: its events in the window and the time of the newest (None: none)."""
        ...

    def keep(self, reservation_id: str) -> None: ...

    def release(self, reservation_id: str) -> None: ...

    def breaker(self, key: str) -> BreakerState: ...

    def breaker_result(self, key: str, *, ok: bool, threshold: int, now: float) -> BreakerState: ...

    def breaker_reset(self, key: str) -> None: ...

    def close(self) -> None: ...
