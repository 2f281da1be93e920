"""SQL both state backends run, written once: statements use `?` parameters, and each backend says how a
unit of work runs on its connection (`_run`) and how its driver writes parameters (`_PARAM`).

SQLite runs a unit under the store's thread lock on one autocommit connection; PostgreSQL runs it in
one transaction on a pooled connection. What differs between them (reserving limit events, counting a
breaker's failures, appending to the audit chain) stays in `opsgate.state.sqlite` and `.postgres`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from opsgate.state.base import BreakerState, Counter, StoredKey, stored_key

T = TypeVar("T")


class SqlRunner:
    _PARAM = "?"

    def _run(self, work: Callable[[Any], T]) -> T:
        raise NotImplementedError

    def _sql(self, statement: str) -> str:
        return statement if self._PARAM == "?" else statement.replace("?", self._PARAM)


class SqlApiKeys(SqlRunner):
    """`opsgate.state.base.ApiKeyStore` on the `api_keys` table."""

    def add_key(self, sha256: str, subject: str, roles: list[str], now: float) -> None:
        sql = self._sql(
            "INSERT INTO api_keys (sha256, subject, roles, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (sha256) DO UPDATE SET subject = excluded.subject, roles = excluded.roles,"
            " revoked_at = NULL"
        )
        self._run(lambda c: c.execute(sql, (sha256.lower(), subject, json.dumps(roles), now)))

    def revoke_key(self, sha256: str, now: float) -> bool:
        sql = self._sql("UPDATE api_keys SET revoked_at = ? WHERE sha256 = ? AND revoked_at IS NULL")
        changed: int = self._run(lambda c: c.execute(sql, (now, sha256.lower())).rowcount)
        return changed == 1

    def lookup_key(self, sha256: str) -> StoredKey | None:
        sql = self._sql(
            "SELECT sha256, subject, roles, created_at, revoked_at FROM api_keys"
            " WHERE sha256 = ? AND revoked_at IS NULL"
        )
        row = self._run(lambda c: c.execute(sql, (sha256.lower(),)).fetchone())
        return stored_key(row) if row else None

    def list_keys(self) -> list[StoredKey]:
        sql = "SELECT sha256, subject, roles, created_at, revoked_at FROM api_keys ORDER BY created_at"
        rows = self._run(lambda c: c.execute(sql).fetchall())
        return [stored_key(r) for r in rows]


class SqlLimitReads(SqlRunner):
    """The `opsgate.state.base.LimitStore` methods that are one plain statement on either backend."""

    def counts(self, counters: Sequence[Counter], now: float) -> dict[tuple[str, float], tuple[int, float | None]]:
        sql = self._sql("SELECT count(*), max(ts) FROM limit_events WHERE key = ? AND ts > ?")

        def work(conn: Any) -> dict[tuple[str, float], tuple[int, float | None]]:
            out: dict[tuple[str, float], tuple[int, float | None]] = {}
            for c in counters:
                count, newest = conn.execute(sql, (c.key, now - c.window_s)).fetchone()
                out[(c.key, c.window_s)] = (int(count), None if newest is None else float(newest))
            return out

        return self._run(work)

    def keep(self, reservation_id: str) -> None:
        sql = self._sql("UPDATE limit_events SET kept = ? WHERE reservation = ?")
        self._run(lambda c: c.execute(sql, (True, reservation_id)))

    def release(self, reservation_id: str) -> None:
        sql = self._sql("DELETE FROM limit_events WHERE reservation = ?")
        self._run(lambda c: c.execute(sql, (reservation_id,)))

    def breaker(self, key: str) -> BreakerState:
        sql = self._sql("SELECT failures, opened_at FROM breakers WHERE key = ?")
        row = self._run(lambda c: c.execute(sql, (key,)).fetchone())
        return BreakerState(int(row[0]), None if row[1] is None else float(row[1])) if row else BreakerState(0, None)

    def breaker_reset(self, key: str) -> None:
        sql = self._sql("DELETE FROM breakers WHERE key = ?")
        self._run(lambda c: c.execute(sql, (key,)))
