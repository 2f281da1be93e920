"""The embedded state backend: SQLite files in the state directory (0700, files 0600).

`audit.db` holds the audit trail (one chain shared by every process on the machine: an insert must
extend the head a trigger checks, or it aborts and the writer re-reads the head). `limits.db` holds
limit events and breakers; a reservation runs in one `BEGIN IMMEDIATE` transaction, so processes
sharing the state directory cannot both take the last slot.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from opsgate.state.base import (
    AUDIT_COLUMNS,
    FINDABLE,
    GENESIS,
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
from opsgate.state.files import private_file
from opsgate.state.sql import SqlApiKeys, SqlLimitReads, T

_AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    call_id TEXT NOT NULL,
    decision_id TEXT,
    tool TEXT NOT NULL,
    subject TEXT NOT NULL,
    outcome TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    v INTEGER NOT NULL DEFAULT 2
);
CREATE INDEX IF NOT EXISTS audit_call ON audit(call_id);
CREATE INDEX IF NOT EXISTS audit_tool_ts ON audit(tool, ts);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT OR IGNORE INTO audit_head (id, seq, hash) VALUES (1, 0, printf('%.64c', '0'));
CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_checkpoints (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL);
-- A record must extend the current head. Another process (a second stdio server, the CLI) may have
-- appended since this one last looked: the insert then aborts, and the writer re-reads the head.
CREATE TRIGGER IF NOT EXISTS audit_extends_head BEFORE INSERT ON audit
WHEN NEW.seq != (SELECT seq FROM audit_head WHERE id = 1) + 1
  OR NEW.prev_hash != (SELECT hash FROM audit_head WHERE id = 1)
BEGIN
    SELECT RAISE(ABORT, 'opsgate: stale audit head');
END;
-- The head moves in the same statement (one implicit transaction) as the insert.
CREATE TRIGGER IF NOT EXISTS audit_move_head AFTER INSERT ON audit BEGIN
    INSERT INTO audit_head (id, seq, hash) VALUES (1, NEW.seq, NEW.hash)
    ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash;
END;
"""

_COLUMNS = AUDIT_COLUMNS
_INSERT = f"INSERT INTO audit ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
_MAX_ATTEMPTS = 100


def _connect(path: Path | str) -> sqlite3.Connection:
    if str(path) != ":memory:":
        private_file(Path(path))
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA busy_timeout=5000")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    if str(path) != ":memory:":
        private_file(Path(path))
    return db


class SqliteAuditStore:
    """The audit trail's rows in one SQLite file (WAL); writes of write calls are fsynced."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.location = str(path)
        self._lock = threading.Lock()
        self._db = _connect(path)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(audit)").fetchall()}
        if columns and "v" not in columns:
            # a trail written before every column was hashed: its rows keep the old rule (version 1)
            self._db.execute("ALTER TABLE audit ADD COLUMN v INTEGER NOT NULL DEFAULT 1")
        self._db.executescript(_AUDIT_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO audit_meta (key, value) VALUES ('chain_id', ?)", ("chn_" + secrets.token_hex(8),)
        )
        self._seq, self._hash = self.head()

    def chain_id(self) -> str:
        with self._lock:
            row = self._db.execute("SELECT value FROM audit_meta WHERE key = 'chain_id'").fetchone()
        return str(row[0]) if row else ""

    def append(self, make: RowMaker, *, durable: bool) -> AuditRow:
        with self._lock:
            db = self._db
            if durable:
                db.execute("PRAGMA synchronous=FULL")
            try:
                for _ in range(_MAX_ATTEMPTS):
                    row = make(self._seq + 1, self._hash)
                    try:
                        db.execute(_INSERT, row.values())
                    except (sqlite3.IntegrityError, sqlite3.OperationalError) as exc:
                        if "stale audit head" not in str(exc) and "locked" not in str(exc):
                            raise
                        self._seq, self._hash = self._read_head()
                        continue
                    self._seq, self._hash = row.seq, row.hash
                    return row
                raise StateUnavailable(f"could not append to {self.path}: other writers kept moving the head")
            finally:
                if durable:
                    db.execute("PRAGMA synchronous=NORMAL")

    def _read_head(self) -> tuple[int, str]:
        row = self._db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    def head(self) -> tuple[int, str]:
        with self._lock:
            return self._read_head()

    def rows(self) -> Iterator[AuditRow]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY seq").fetchall()
        for r in rows:
            yield audit_row(r)

    def tail(self, n: int) -> list[AuditRow]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY seq DESC LIMIT ?", (max(0, n),)).fetchall()
        return [audit_row(r) for r in reversed(rows)]

    def row(self, seq: int) -> AuditRow | None:
        with self._lock:
            r = self._db.execute(f"SELECT {_COLUMNS} FROM audit WHERE seq = ?", (seq,)).fetchone()
        return audit_row(r) if r else None

    def find(self, where: dict[str, str]) -> list[str]:
        unknown = set(where) - FINDABLE
        if unknown:
            raise ValueError(f"cannot filter audit records by {sorted(unknown)}")
        clause = " AND ".join(f"{k} = ?" for k in where) or "1=1"
        with self._lock:
            rows = self._db.execute(
                f"SELECT body FROM audit WHERE {clause} ORDER BY seq", tuple(where.values())
            ).fetchall()
        return [str(r[0]) for r in rows]

    def add_checkpoint(self, seq: int, body: str, *, durable: bool) -> None:
        with self._lock:
            if durable:
                self._db.execute("PRAGMA synchronous=FULL")
            try:
                self._db.execute("INSERT INTO audit_checkpoints (seq, body) VALUES (?, ?)", (seq, body))
            finally:
                if durable:
                    self._db.execute("PRAGMA synchronous=NORMAL")

    def checkpoints(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM audit_checkpoints ORDER BY id").fetchall()
        return [str(r[0]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


_LIMITS_SCHEMA = """
CREATE TABLE IF NOT EXISTS limit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    ts REAL NOT NULL,
    reservation TEXT NOT NULL,
    kept INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS limit_events_key ON limit_events(key, ts);
CREATE INDEX IF NOT EXISTS limit_events_reservation ON limit_events(reservation);
CREATE TABLE IF NOT EXISTS breakers (key TEXT PRIMARY KEY, failures INTEGER NOT NULL, opened_at REAL);
CREATE TABLE IF NOT EXISTS api_keys (
    sha256 TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    roles TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
"""


class SqliteLimitStore(SqlApiKeys, SqlLimitReads):
    """Limit events and breakers in `limits.db`, shared by every process using the state directory."""

    def __init__(self, path: Path | str) -> None:
        self.location = str(path)
        self._lock = threading.Lock()
        self._db = _connect(path)
        self._db.executescript(_LIMITS_SCHEMA)

    def reserve(self, counters: Sequence[Counter], holder: str, now: float) -> Reservation:
        reservation = Reservation(id=holder)
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for counter in counters:
                    count, oldest = db.execute(
                        "SELECT count(*), min(ts) FROM limit_events WHERE key = ? AND ts > ?",
                        (counter.key, now - counter.window_s),
                    ).fetchone()
                    reservation.counts[(counter.key, counter.window_s)] = int(count)
                    if counter.limit is not None and count >= counter.limit and reservation.refused is None:
                        reservation.refused = refusal(counter, int(count), oldest, now)
                if reservation.refused is not None:
                    db.execute("ROLLBACK")
                    return reservation
                for key in dict.fromkeys(c.key for c in counters):
                    db.execute("INSERT INTO limit_events (key, ts, reservation) VALUES (?, ?, ?)", (key, now, holder))
                db.execute("DELETE FROM limit_events WHERE ts < ?", (now - PRUNE_AFTER_S,))
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise StateUnavailable(f"limit store {self.location}: {exc}") from exc
        return reservation

    def breaker_result(self, key: str, *, ok: bool, threshold: int, now: float) -> BreakerState:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                if ok:
                    db.execute("DELETE FROM breakers WHERE key = ?", (key,))
                    db.execute("COMMIT")
                    return BreakerState(0, None)
                row = db.execute("SELECT failures, opened_at FROM breakers WHERE key = ?", (key,)).fetchone()
                failures = (int(row[0]) if row else 0) + 1
                opened = (None if row is None or row[1] is None else float(row[1])) or (
                    now if failures >= threshold else None
                )
                db.execute(
                    "INSERT INTO breakers (key, failures, opened_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE"
                    " SET failures = excluded.failures, opened_at = excluded.opened_at",
                    (key, failures, opened),
                )
                db.execute("COMMIT")
                return BreakerState(failures, opened)
            except sqlite3.Error:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _run(self, work: Callable[[Any], T]) -> T:
        with self._lock:
            return work(self._db)

    def close(self) -> None:
        with self._lock:
            self._db.close()
