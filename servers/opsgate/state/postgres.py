"""State on PostgreSQL, shared by every replica (`state_url = "postgresql://..."`).

psycopg 3 with a connection pool. Schema changes are numbered migrations applied once, under an
advisory lock, so replicas starting together do not race. Appends to the audit trail lock the head
row (`SELECT ... FOR UPDATE`) in the transaction that inserts the record, so the chain stays one chain
across replicas. A limit reservation counts and inserts under a transaction-scoped advisory lock.

When the database is down or the pool has no connection within `timeout_s`, every operation raises
`StateUnavailable` with the server named (never the password): real writes are refused before they
run (fail closed), and any call, read or write, whose audit record cannot be stored gets an error
instead of its result (the gate withholds what it cannot audit).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from opsgate.state import State
from opsgate.state.base import (
    AUDIT_COLUMNS,
    FINDABLE,
    PRUNE_AFTER_S,
    AuditRow,
    BreakerState,
    Counter,
    Reservation,
    RowMaker,
    StateUnavailable,
    audit_row,
    refusal,
)
from opsgate.state.sql import SqlApiKeys, SqlLimitReads

T = TypeVar("T")

_LIMITS_LOCK = 0x6F70_7367  # "opsg": one advisory lock serialises reservations
_MIGRATION_LOCK = 0x6F70_7368

MIGRATIONS: list[str] = [
    # 1: audit trail, limits, breakers, API keys
    """
    CREATE TABLE IF NOT EXISTS audit (
        seq BIGINT PRIMARY KEY,
        v INTEGER NOT NULL,
        ts TEXT NOT NULL,
        call_id TEXT NOT NULL,
        decision_id TEXT,
        tool TEXT NOT NULL,
        subject TEXT NOT NULL,
        outcome TEXT NOT NULL,
        body TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS audit_call ON audit(call_id);
    CREATE INDEX IF NOT EXISTS audit_tool_ts ON audit(tool, ts);
    CREATE TABLE IF NOT EXISTS audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL
    );
    INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, repeat('0', 64)) ON CONFLICT DO NOTHING;
    CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS audit_checkpoints (id BIGSERIAL PRIMARY KEY, seq BIGINT NOT NULL, body TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS limit_events (
        id BIGSERIAL PRIMARY KEY,
        key TEXT NOT NULL,
        ts DOUBLE PRECISION NOT NULL,
        reservation TEXT NOT NULL,
        kept BOOLEAN NOT NULL DEFAULT false
    );
    CREATE INDEX IF NOT EXISTS limit_events_key ON limit_events(key, ts);
    CREATE INDEX IF NOT EXISTS limit_events_reservation ON limit_events(reservation);
    CREATE TABLE IF NOT EXISTS breakers (key TEXT PRIMARY KEY, failures INTEGER NOT NULL, opened_at DOUBLE PRECISION);
    CREATE TABLE IF NOT EXISTS api_keys (
        sha256 TEXT PRIMARY KEY,
        subject TEXT NOT NULL,
        roles TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        revoked_at DOUBLE PRECISION
    );
    """,
    # 2: approvals (the opsgate.approvals.ApprovalStore interface, see opsgate.state.approvals_pg)
    """
    CREATE TABLE IF NOT EXISTS approvals (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        tool TEXT NOT NULL,
        args_digest TEXT NOT NULL,
        args TEXT NOT NULL,
        target TEXT NOT NULL,
        requester TEXT NOT NULL,
        call_id TEXT NOT NULL,
        reasons TEXT NOT NULL,
        approvers TEXT NOT NULL,
        plan TEXT NOT NULL,
        plan_digest TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at BIGINT NOT NULL,
        decided_by TEXT,
        decided_roles TEXT,
        decided_at DOUBLE PRECISION,
        decision_note TEXT,
        channel TEXT,
        proof TEXT,
        used_at DOUBLE PRECISION,
        used_by_call TEXT
    );
    CREATE INDEX IF NOT EXISTS approvals_lookup ON approvals(args_digest, target, requester, status);
    """,
]

_COLUMNS = AUDIT_COLUMNS


def safe_url(url: str) -> str:
    """`url` without its password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, "", ""))


class PgDatabase:
    """A pool, migrations, and one place that turns connection errors into `StateUnavailable`."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10, timeout_s: float = 5.0) -> None:
        self.url = url
        self.location = safe_url(url)
        self._sizes = (min_size, max_size)
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._closed = False
        self.pool = self._new_pool()
        try:
            self.pool.open(wait=True, timeout=timeout_s)
        except (PoolTimeout, psycopg.Error) as exc:
            self.pool.close()
            raise StateUnavailable(f"PostgreSQL state store {self.location} is unavailable: {exc}") from None
        self.run(self._migrate)

    def _new_pool(self) -> ConnectionPool:
        return ConnectionPool(
            self.url,
            min_size=self._sizes[0],
            max_size=self._sizes[1],
            timeout=self._timeout_s,
            open=False,
            check=ConnectionPool.check_connection,  # a replica outlives a database restart
            kwargs={"connect_timeout": max(1, int(self._timeout_s))},
            name="opsgate-state",
        )

    def run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run `work` in one transaction on a pooled connection."""
        try:
            with self.pool.connection() as conn, conn.transaction():
                return work(conn)
        except (PoolTimeout, psycopg.OperationalError, psycopg.InterfaceError) as first:
            error: Exception = first
        if self._reopen():
            # the database is back but the pool was still backing off its reconnects: once more
            try:
                with self.pool.connection() as conn, conn.transaction():
                    return work(conn)
            except (PoolTimeout, psycopg.OperationalError, psycopg.InterfaceError) as again:
                error = again
        raise StateUnavailable(f"PostgreSQL state store {self.location} is unavailable: {error}") from None

    def _reopen(self) -> bool:
        """A fresh pool when the database answers a direct connection again (True), else False."""
        try:
            psycopg.connect(self.url, connect_timeout=max(1, int(self._timeout_s))).close()
        except psycopg.Error:
            return False
        with self._lock:
            if self._closed:
                return False
            old, self.pool = self.pool, self._new_pool()
            self.pool.open(wait=False)
        old.close(timeout=0)
        return True

    @staticmethod
    def _migrate(conn: psycopg.Connection[Any]) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS opsgate_schema (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM opsgate_schema").fetchone()
        current = int(row[0]) if row and row[0] is not None else 0
        for version, sql in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            conn.execute(sql)
            conn.execute("INSERT INTO opsgate_schema (version) VALUES (%s)", (version,))

    def schema_version(self) -> int:
        row = self.run(lambda c: c.execute("SELECT max(version) FROM opsgate_schema").fetchone())
        return int(row[0]) if row and row[0] is not None else 0

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.pool.close()


class PgAuditStore:
    def __init__(self, db: PgDatabase) -> None:
        self.db = db
        self.location = db.location
        chain = "chn_" + secrets.token_hex(8)

        def init(conn: psycopg.Connection[Any]) -> str:
            conn.execute("INSERT INTO audit_meta (key, value) VALUES ('chain_id', %s) ON CONFLICT DO NOTHING", (chain,))
            row = conn.execute("SELECT value FROM audit_meta WHERE key = 'chain_id'").fetchone()
            return str(row[0]) if row else ""

        self._chain = db.run(init)

    def chain_id(self) -> str:
        return self._chain

    def append(self, make: RowMaker, *, durable: bool) -> AuditRow:
        def work(conn: psycopg.Connection[Any]) -> AuditRow:
            if not durable:
                conn.execute("SET LOCAL synchronous_commit = off")
            head = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE").fetchone()
            assert head is not None
            row = make(int(head[0]) + 1, str(head[1]))
            conn.execute(
                f"INSERT INTO audit ({_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                row.values(),
            )
            conn.execute("UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1", (row.seq, row.hash))
            return row

        return self.db.run(work)

    def head(self) -> tuple[int, str]:
        row = self.db.run(lambda c: c.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone())
        return (int(row[0]), str(row[1])) if row else (0, "0" * 64)

    def rows(self) -> Iterator[AuditRow]:
        last = 0
        while True:
            batch = self._batch(last)
            if not batch:
                return
            for r in batch:
                yield audit_row(r)
            last = int(batch[-1][0])

    def _batch(self, after: int) -> list[Any]:
        return self.db.run(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM audit WHERE seq > %s ORDER BY seq LIMIT 5000", (after,)
            ).fetchall()
        )

    def tail(self, n: int) -> list[AuditRow]:
        rows = self.db.run(
            lambda c: c.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY seq DESC LIMIT %s", (max(0, n),)).fetchall()
        )
        return [audit_row(r) for r in reversed(rows)]

    def row(self, seq: int) -> AuditRow | None:
        r = self.db.run(lambda c: c.execute(f"SELECT {_COLUMNS} FROM audit WHERE seq = %s", (seq,)).fetchone())
        return audit_row(r) if r else None

    def find(self, where: dict[str, str]) -> list[str]:
        unknown = set(where) - FINDABLE
        if unknown:
            raise ValueError(f"cannot filter audit records by {sorted(unknown)}")
        clause = " AND ".join(f"{k} = %s" for k in where) or "true"
        rows = self.db.run(
            lambda c: c.execute(
                f"SELECT body FROM audit WHERE {clause} ORDER BY seq",
                tuple(where.values()),
            ).fetchall()
        )
        return [str(r[0]) for r in rows]

    def add_checkpoint(self, seq: int, body: str, *, durable: bool) -> None:
        def work(conn: psycopg.Connection[Any]) -> None:
            if not durable:
                conn.execute("SET LOCAL synchronous_commit = off")
            conn.execute("INSERT INTO audit_checkpoints (seq, body) VALUES (%s, %s)", (seq, body))

        self.db.run(work)

    def checkpoints(self) -> list[str]:
        rows = self.db.run(lambda c: c.execute("SELECT body FROM audit_checkpoints ORDER BY id").fetchall())
        return [str(r[0]) for r in rows]

    def close(self) -> None:
        """The pool belongs to the State; closing a store leaves it to the State."""


class PgApiKeyStore(SqlApiKeys):
    """API keys (their SHA-256) shared by every replica; a revocation holds on all of them at once."""

    _PARAM = "%s"

    def __init__(self, db: PgDatabase) -> None:
        self.db = db

    def _run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        return self.db.run(work)


class PgLimitStore(SqlLimitReads):
    _PARAM = "%s"

    def __init__(self, db: PgDatabase) -> None:
        self.db = db
        self.location = db.location

    def _run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        return self.db.run(work)

    def reserve(self, counters: Sequence[Counter], holder: str, now: float) -> Reservation:
        reservation = Reservation(id=holder)

        class _Refused(Exception):
            pass

        def work(conn: psycopg.Connection[Any]) -> None:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LIMITS_LOCK,))
            for counter in counters:
                row = conn.execute(
                    "SELECT count(*), min(ts) FROM limit_events WHERE key = %s AND ts > %s",
                    (counter.key, now - counter.window_s),
                ).fetchone()
                assert row is not None
                count, oldest = int(row[0]), row[1]
                reservation.counts[(counter.key, counter.window_s)] = count
                if counter.limit is not None and count >= counter.limit and reservation.refused is None:
                    reservation.refused = refusal(counter, count, oldest, now)
            if reservation.refused is not None:
                raise _Refused
            for key in dict.fromkeys(c.key for c in counters):
                conn.execute("INSERT INTO limit_events (key, ts, reservation) VALUES (%s, %s, %s)", (key, now, holder))
            conn.execute("DELETE FROM limit_events WHERE ts < %s", (now - PRUNE_AFTER_S,))

        with contextlib.suppress(_Refused):
            self.db.run(work)
        return reservation

    def breaker_result(self, key: str, *, ok: bool, threshold: int, now: float) -> BreakerState:
        def work(conn: psycopg.Connection[Any]) -> BreakerState:
            if ok:
                conn.execute("DELETE FROM breakers WHERE key = %s", (key,))
                return BreakerState(0, None)
            conn.execute(
                "INSERT INTO breakers (key, failures, opened_at) VALUES (%s, 0, NULL) ON CONFLICT DO NOTHING", (key,)
            )
            row = conn.execute("SELECT failures, opened_at FROM breakers WHERE key = %s FOR UPDATE", (key,)).fetchone()
            assert row is not None
            failures = int(row[0]) + 1
            opened = (None if row[1] is None else float(row[1])) or (now if failures >= threshold else None)
            conn.execute("UPDATE breakers SET failures = %s, opened_at = %s WHERE key = %s", (failures, opened, key))
            return BreakerState(failures, opened)

        return self.db.run(work)

    def close(self) -> None:
        """The pool belongs to the State."""


def open_postgres_state(url: str, *, approval_ttl_s: float | None = None) -> State:
    from opsgate.state.approvals_pg import PgApprovalStore

    db = PgDatabase(url)
    approvals = PgApprovalStore(db) if approval_ttl_s is None else PgApprovalStore(db, ttl_s=approval_ttl_s)
    return State(
        audit_store=PgAuditStore(db),
        limits=PgLimitStore(db),
        api_keys=PgApiKeyStore(db),
        approvals=approvals,
        backend="postgresql",
        _closers=[db.close],
    )
