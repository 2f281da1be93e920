"""The audit trail: one hash-chained record per call, in SQLite (WAL).

Each record's hash covers the previous record's hash and the record's canonical JSON, and a head
row holds the last sequence number and hash, so an edited, deleted or re-ordered record, or a
truncated tail, is detected by `verify`. Records of write calls are committed with
`synchronous=FULL` before the call's result is returned.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GENESIS = "0" * 64

_SCHEMA = """
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
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_call ON audit(call_id);
CREATE INDEX IF NOT EXISTS audit_tool_ts ON audit(tool, ts);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT OR IGNORE INTO audit_head (id, seq, hash) VALUES (1, 0, printf('%.64c', '0'));
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


_INSERT = (
    "INSERT INTO audit (seq, ts, call_id, decision_id, tool, subject, outcome, body, prev_hash, hash)"
    " VALUES (?,?,?,?,?,?,?,?,?,?)"
)
_MAX_ATTEMPTS = 100


class AuditError(Exception):
    """The audit trail cannot take a record; the call's result must not be returned as a success."""


def canonical_json(value: Any) -> str:
    """The one serialisation that digests and hashes are computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(value).encode()).hexdigest()


def chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


@dataclass(frozen=True)
class StoredRecord:
    seq: int
    record: dict[str, Any]
    hash: str


@dataclass
class VerifyReport:
    ok: bool
    records: int
    problems: list[str] = field(default_factory=list)


class AuditLog:
    """Append-only, hash-chained audit records in one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._seq, self._hash = self._read_head()

    def append(self, record: dict[str, Any], *, durable: bool = False) -> int:
        """Append one record; with `durable`, the commit is fsynced before this returns."""
        body = canonical_json(record)
        row = (
            record.get("ts", ""),
            record.get("call_id", ""),
            (record.get("decision") or {}).get("decision_id"),
            record.get("tool", ""),
            (record.get("caller") or {}).get("subject", ""),
            record.get("outcome", ""),
            body,
        )
        with self._lock:
            db = self._db
            if durable:
                db.execute("PRAGMA synchronous=FULL")
            try:
                for _ in range(_MAX_ATTEMPTS):
                    seq, prev_hash = self._seq + 1, self._hash
                    new_hash = chain_hash(prev_hash, body)
                    try:
                        db.execute(_INSERT, (seq, *row, prev_hash, new_hash))
                    except (sqlite3.IntegrityError, sqlite3.OperationalError) as exc:
                        if "stale audit head" not in str(exc) and "locked" not in str(exc):
                            raise
                        self._seq, self._hash = self._read_head()
                        continue
                    self._seq, self._hash = seq, new_hash
                    return seq
                raise AuditError(f"could not append to {self.path}: other writers kept moving the head")
            finally:
                if durable:
                    db.execute("PRAGMA synchronous=NORMAL")

    def _read_head(self) -> tuple[int, str]:
        row = self._db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    def tail(self, n: int = 20) -> list[StoredRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body, hash FROM audit ORDER BY seq DESC LIMIT ?", (max(0, n),)
            ).fetchall()
        return [StoredRecord(int(s), json.loads(b), str(h)) for s, b, h in reversed(rows)]

    def records(self) -> Iterator[StoredRecord]:
        with self._lock:
            rows = self._db.execute("SELECT seq, body, hash FROM audit ORDER BY seq").fetchall()
        for s, b, h in rows:
            yield StoredRecord(int(s), json.loads(b), str(h))

    def find(self, **where: str) -> list[dict[str, Any]]:
        """Records whose indexed columns (call_id, tool, outcome, subject, decision_id) match."""
        allowed = {"call_id", "tool", "outcome", "subject", "decision_id"}
        unknown = set(where) - allowed
        if unknown:
            raise ValueError(f"cannot filter audit records by {sorted(unknown)}")
        clause = " AND ".join(f"{k} = ?" for k in where) or "1=1"
        with self._lock:
            rows = self._db.execute(
                f"SELECT body FROM audit WHERE {clause} ORDER BY seq", tuple(where.values())
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def verify(self) -> VerifyReport:
        """Recompute the chain; report every break, edit, gap and a truncated tail."""
        problems: list[str] = []
        with self._lock:
            rows = self._db.execute("SELECT seq, body, prev_hash, hash FROM audit ORDER BY seq").fetchall()
            head = self._db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        expected_prev, expected_seq = GENESIS, 1
        for seq, body, prev_hash, stored_hash in rows:
            if seq != expected_seq:
                problems.append(f"record {expected_seq} to {seq - 1} missing (sequence jumps to {seq})")
            if prev_hash != expected_prev:
                problems.append(f"record {seq}: does not link to the record before it (deleted or reordered)")
            if chain_hash(prev_hash, body) != stored_hash:
                problems.append(f"record {seq}: content does not match its hash (edited)")
            expected_prev, expected_seq = stored_hash, seq + 1
        last_seq = rows[-1][0] if rows else 0
        if head is None:
            if rows:
                problems.append("head marker missing")
        elif head[0] != last_seq or head[1] != expected_prev:
            problems.append(
                f"head marker says record {head[0]} is last but the trail ends at {last_seq} (records removed)"
            )
        return VerifyReport(ok=not problems, records=len(rows), problems=problems)

    def head(self) -> tuple[int, str]:
        with self._lock:
            row = self._db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    def close(self) -> None:
        with self._lock:
            self._db.close()
