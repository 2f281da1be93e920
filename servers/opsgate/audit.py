"""The audit trail: one hash-chained record per call, signed checkpoints of its head, and `verify`.

Every column of a record is in its hash (sequence number, time, call id, decision id, tool, subject,
outcome, the record's canonical JSON and the previous hash), so editing any of them breaks the chain.
A chain alone cannot show that someone who can write the database cut the tail and moved the head, or
rewrote a record and recomputed every hash after it: *checkpoints* do. A checkpoint is the chain's
head (chain id, sequence number, hash) signed with an Ed25519 key kept apart from the database; one is
made after every record of a write call, every `checkpoint_every` records, every
`checkpoint_interval_s` while the head moved (a timer in servers, `start_periodic`) and on a clean
close. Each goes into the database and to an append-only export (a JSON-lines file on another path,
optionally syslog). `verify` recomputes the
chain and checks every checkpoint's signature and that the trail still holds the record each one
names, with the same hash; the export is what survives a deleted or emptied database, so a server
started on a trail that lacks the last exported checkpoint refuses to start. See docs/audit-threat-model.md.

Storage is a `opsgate.state.base.AuditStore` (SQLite by default, PostgreSQL for replicas); the rules
here are the same for both.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from opsgate.audit_keys import JsonlSink, check_entry, key_id, sign_entry
from opsgate.state.base import GENESIS, AuditRow, AuditStore, StateError, StateUnavailable

logger = logging.getLogger(__name__)
RECORD_VERSION = 2
_REDACTOR: Any = None
_SECRET_KEYS = ("password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "credential")


class AuditError(StateError):
    """The audit trail cannot take a record, or is not the trail it should be."""


def canonical_json(value: Any) -> str:
    """The one serialisation that digests and hashes are computed over: sorted keys, no spaces, UTF-8.

    orjson writes strings, integers and null exactly as `json.dumps(sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)` does, so hashes of earlier records verify unchanged. What orjson refuses (a lone
    surrogate, a key that is not a string, an integer past 64 bits) goes through the json module: the
    same value always takes the same path. orjson writes NaN and Infinity as null; the gate refuses
    arguments that hold them, so no binding digest ever meets one.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()
    except (orjson.JSONEncodeError, UnicodeDecodeError):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(value).encode()).hexdigest()


def chain_hash(prev_hash: str, body: str) -> str:
    """Version 1 (trails written before every column was hashed): the body and the previous hash only."""
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def row_hash(row: AuditRow) -> str:
    if row.v == 1:
        return chain_hash(row.prev_hash, row.body)
    r = row
    return columns_hash(r.v, r.seq, r.ts, r.call_id, r.decision_id, r.tool, r.subject, r.outcome, r.body, r.prev_hash)


def columns_hash(*columns: object) -> str:
    """Version 2: every column but the hash itself, in `AUDIT_COLUMNS` order, as canonical JSON."""
    return hashlib.sha256(canonical_json(list(columns)).encode()).hexdigest()


def _columns(record: dict[str, Any]) -> tuple[str, str, str | None, str, str, str]:
    decision = record.get("decision") or {}
    caller = record.get("caller") or {}
    return (
        str(record.get("ts", "")),
        str(record.get("call_id", "")),
        decision.get("decision_id") if isinstance(decision, dict) else None,
        str(record.get("tool", "")),
        str(caller.get("subject", "") if isinstance(caller, dict) else ""),
        str(record.get("outcome", "")),
    )


def redact_for_storage(value: Any) -> tuple[Any, int]:
    """`value` (tool arguments) with secrets masked, for storing in audit or approval records.

    Digests that bind a grant to a call stay computed over the exact arguments; only what is stored
    is masked. Masks the redactor's secret shapes in every string, and any string under a key that
    names a secret (`password`, `token`, `api_key`, ...).
    """
    global _REDACTOR
    if _REDACTOR is None:
        from opsgate.redaction import DEFAULT_REDACTOR

        _REDACTOR = DEFAULT_REDACTOR
    redact_text = _REDACTOR.redact_text

    def walk(obj: Any) -> tuple[Any, int]:
        if isinstance(obj, dict):
            out: dict[Any, Any] = {}
            total = 0
            for k, v in obj.items():
                if isinstance(k, str) and isinstance(v, str) and v and any(s in k.lower() for s in _SECRET_KEYS):
                    out[k], n = "[REDACTED:argument]", 1
                else:
                    out[k], n = walk(v)
                total += n
            return out, total
        if isinstance(obj, list):
            items, total = [], 0
            for v in obj:
                r, n = walk(v)
                items.append(r)
                total += n
            return items, total
        if isinstance(obj, str):
            return redact_text(obj) if len(obj) >= 6 else (obj, 0)
        return obj, 0

    return walk(value)


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
    checkpoints: int = 0
    exported: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class Checkpoints:
    """How checkpoints are signed, exported and checked."""

    signing_key: Ed25519PrivateKey | None
    sink: JsonlSink | None
    public_keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    every: int = 100
    interval_s: float = 60.0

    def __post_init__(self) -> None:
        if self.signing_key is not None:
            public = self.signing_key.public_key()
            self.public_keys.setdefault(key_id(public), public)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditLog:
    """Append-only, hash-chained audit records with signed, exported checkpoints."""

    def __init__(
        self,
        store: AuditStore | Path | str,
        *,
        checkpoints: Checkpoints | None = None,
        check_anchor: bool = True,
    ) -> None:
        if isinstance(store, Path | str):
            from opsgate.state.sqlite import SqliteAuditStore

            store = SqliteAuditStore(store)
        self.store: AuditStore = store
        self.path = Path(store.location) if not store.location.startswith("postgresql") else Path()
        self.cp = checkpoints
        self._lock = threading.Lock()
        self._last_cp_seq = 0
        self._last_cp_time = time.monotonic()
        self._chain_id = store.chain_id()
        self._stop_periodic: threading.Event | None = None
        if checkpoints is not None and check_anchor:
            self.check_anchor()

    def start_periodic(self) -> None:
        """Checkpoint the head every `interval_s` while it has moved, also when no new record arrives
        (a server that goes quiet after a burst of reads still gets its last records signed)."""
        if self.cp is None or self.cp.signing_key is None or self._stop_periodic is not None:
            return
        stop = self._stop_periodic = threading.Event()
        cp = self.cp

        def loop() -> None:
            while not stop.wait(cp.interval_s):
                try:
                    seq, _ = self.store.head()
                    if seq > self._last_cp_seq:
                        self.checkpoint()
                except Exception:  # a failing store is reported by the calls that append; keep trying
                    logger.warning("periodic audit checkpoint failed", exc_info=True)

        threading.Thread(target=loop, name="opsgate-audit-checkpoints", daemon=True).start()

    # -- writing ------------------------------------------------------------------------------

    def append(self, record: dict[str, Any], *, durable: bool = False) -> int:
        """Append one record; with `durable`, it is committed to disk (and checkpointed) before this returns."""
        body = canonical_json(record)
        ts, call_id, decision_id, tool, subject, outcome = _columns(record)

        def make(seq: int, prev_hash: str) -> AuditRow:
            columns = (seq, RECORD_VERSION, ts, call_id, decision_id, tool, subject, outcome, body, prev_hash)
            hash_ = columns_hash(RECORD_VERSION, seq, *columns[2:])
            return AuditRow(*columns, hash_)

        try:
            row = self.store.append(make, durable=durable)
        except StateUnavailable as exc:
            raise AuditError(str(exc)) from exc
        if self.cp is not None and self.cp.signing_key is not None:
            due = (
                durable
                or row.seq - self._last_cp_seq >= self.cp.every
                or time.monotonic() - self._last_cp_time >= self.cp.interval_s
            )
            if due:
                self._checkpoint(row.seq, row.hash, durable=durable)
        return row.seq

    def _checkpoint(self, seq: int, hash_: str, *, durable: bool) -> dict[str, Any]:
        assert self.cp is not None and self.cp.signing_key is not None
        entry = sign_entry(
            self.cp.signing_key,
            {"type": "checkpoint", "v": 1, "chain": self._chain_id, "seq": seq, "hash": hash_, "ts": _now_iso()},
        )
        with self._lock:
            self.store.add_checkpoint(seq, canonical_json(entry), durable=durable)
            if self.cp.sink is not None:
                self.cp.sink.write(entry, durable=durable)
            self._last_cp_seq, self._last_cp_time = seq, time.monotonic()
        return entry

    def checkpoint(self) -> dict[str, Any] | None:
        """Sign and export the current head now (if there is a key and a record)."""
        if self.cp is None or self.cp.signing_key is None:
            return None
        seq, hash_ = self.store.head()
        if seq == 0:
            return None
        return self._checkpoint(seq, hash_, durable=True)

    def check_anchor(self) -> None:
        """Refuse a trail that lacks the last exported checkpoint (deleted, replaced or cut short)."""
        if self.cp is None or self.cp.sink is None:
            return
        last = self.cp.sink.last()
        if last is None:
            return
        if last.get("type") == "reset":
            problem = check_entry(last, self.cp.public_keys)
            if problem is None and last.get("chain") == self._chain_id:
                return
            raise AuditError(
                f"the last entry of the audit export {self.cp.sink.path} is a reset "
                + (f"that does not verify ({problem})" if problem else f"for another chain ({last.get('chain')})")
                + "; refusing to start"
            )
        if last.get("type") != "checkpoint":
            return
        seq, hash_, chain = last.get("seq"), last.get("hash"), last.get("chain")
        row = self.store.row(seq) if isinstance(seq, int) else None
        if chain == self._chain_id and row is not None and row.hash == hash_:
            return
        have, _ = self.store.head()
        raise AuditError(
            f"audit trail {self.store.location} does not contain the last exported checkpoint (record {seq} of "
            f"chain {chain}, exported to {self.cp.sink.path}); the trail holds {have} record(s) of chain "
            f"{self._chain_id}: the audit database was deleted, replaced or cut short. Refusing to start. "
            "Investigate with `opsgate audit verify`; to start a new chain deliberately, run "
            "`opsgate audit reset --reason TEXT` (the reset is recorded in the export)."
        )

    def reset(self, reason: str, by: str) -> dict[str, Any]:
        """Record in the export that an operator starts this (new) chain after losing the old one."""
        if self.cp is None or self.cp.signing_key is None or self.cp.sink is None:
            raise AuditError("no signing key or export configured: nothing to reset")
        previous = self.cp.sink.last()
        entry = sign_entry(
            self.cp.signing_key,
            {
                "type": "reset",
                "v": 1,
                "chain": self._chain_id,
                "ts": _now_iso(),
                "reason": reason,
                "by": by,
                "previous": {k: previous.get(k) for k in ("chain", "seq", "hash")} if previous else None,
            },
        )
        self.cp.sink.write(entry, durable=True)
        return entry

    # -- reading ------------------------------------------------------------------------------

    def tail(self, n: int = 20) -> list[StoredRecord]:
        return [StoredRecord(r.seq, json.loads(r.body), r.hash) for r in self.store.tail(n)]

    def records(self) -> Iterator[StoredRecord]:
        for r in self.store.rows():
            yield StoredRecord(r.seq, json.loads(r.body), r.hash)

    def find(self, **where: str) -> list[dict[str, Any]]:
        """Records whose indexed columns (call_id, tool, outcome, subject, decision_id) match."""
        return [json.loads(body) for body in self.store.find(where)]

    def head(self) -> tuple[int, str]:
        return self.store.head()

    @property
    def chain_id(self) -> str:
        return self._chain_id

    def verify(self, exports: list[JsonlSink] | None = None) -> VerifyReport:
        """Recompute the chain; check every stored and exported checkpoint against it."""
        problems: list[str] = []
        warnings: list[str] = []
        hashes: dict[int, str] = {}
        expected_prev, expected_seq, count, seen_v2 = GENESIS, 1, 0, False
        for row in self.store.rows():
            count += 1
            seq = row.seq
            if seq != expected_seq:
                problems.append(f"record {expected_seq} to {seq - 1} missing (sequence jumps to {seq})")
            if row.prev_hash != expected_prev:
                problems.append(f"record {seq}: does not link to the record before it (deleted or reordered)")
            if row.v == 1 and seen_v2:
                problems.append(f"record {seq}: an old-format record after new ones (downgraded to escape hashing)")
            seen_v2 = seen_v2 or row.v != 1
            if row_hash(row) != row.hash:
                problems.append(f"record {seq}: content does not match its hash (edited)")
            elif row.v != 1:
                try:
                    cols = _columns(json.loads(row.body))
                except ValueError:
                    cols = None
                if cols != (row.ts, row.call_id, row.decision_id, row.tool, row.subject, row.outcome):
                    problems.append(f"record {seq}: columns disagree with its body (edited)")
            hashes[seq] = row.hash
            expected_prev, expected_seq = row.hash, seq + 1
        last_seq = expected_seq - 1
        head_seq, head_hash = self.store.head()
        if head_seq != last_seq or head_hash != expected_prev:
            problems.append(
                f"head marker says record {head_seq} is last but the trail ends at {last_seq} (records removed)"
            )
        keys = self.cp.public_keys if self.cp is not None else {}

        if self.cp is None and self.store.checkpoints():
            warnings.append("no public keys given: checkpoint signatures not checked (use `opsgate audit verify`)")

        def check(entry: dict[str, Any], where: str) -> None:
            if entry.get("type") != "checkpoint":
                return
            seq = entry.get("seq")
            problem = check_entry(entry, keys) if self.cp is not None else None
            if problem is not None:
                problems.append(f"{where} checkpoint at record {seq}: {problem}")
                return
            if entry.get("chain") != self._chain_id:
                problems.append(
                    f"{where} checkpoint at record {seq} is of chain {entry.get('chain')}, this trail is chain "
                    f"{self._chain_id} (the database was deleted or replaced)"
                )
            elif not isinstance(seq, int) or seq not in hashes:
                problems.append(
                    f"{where} checkpoint says the trail reached record {seq}, but it ends at {last_seq}"
                    " (truncated or emptied)"
                )
            elif hashes[seq] != entry.get("hash"):
                problems.append(f"record {seq}: hash differs from its signed {where} checkpoint (rewritten)")

        stored = [json.loads(body) for body in self.store.checkpoints()]
        for entry in stored:
            check(entry, "stored")
        exported_count = 0
        sinks = exports if exports is not None else ([self.cp.sink] if self.cp and self.cp.sink else [])
        for sink in sinks:
            entries = sink.entries()
            # checkpoints since the last verified reset belong to this chain
            start = 0
            for i, entry in enumerate(entries):
                if entry.get("type") == "reset":
                    problem = check_entry(entry, keys)
                    if problem is not None:
                        problems.append(f"export {sink.path}: reset entry at line {i + 1}: {problem}")
                        continue
                    warnings.append(
                        f"export {sink.path}: the chain was reset at {entry.get('ts')} by {entry.get('by')}: "
                        f"{entry.get('reason')} (previous chain {(entry.get('previous') or {}).get('chain')})"
                    )
                    start = i + 1
                elif entry.get("type") == "unreadable":
                    problems.append(f"export {sink.path}: line {i + 1} is not JSON")
            for entry in entries[start:]:
                exported_count += 1
                check(entry, f"exported ({sink.path.name})")
            if not entries:
                warnings.append(f"export {sink.path}: no checkpoints exported yet")
        if count and not stored and self.cp is not None and self.cp.signing_key is not None:
            warnings.append("no stored checkpoints")
        return VerifyReport(
            ok=not problems,
            records=count,
            problems=problems,
            checkpoints=len(stored),
            exported=exported_count,
            warnings=warnings,
        )

    def close(self) -> None:
        if self._stop_periodic is not None:
            self._stop_periodic.set()
        if self.cp is not None and self.cp.signing_key is not None:
            try:
                seq, _ = self.store.head()
                if seq > self._last_cp_seq:
                    self.checkpoint()
            except Exception:  # closing must not fail on a broken store; verify will tell
                pass
            if self.cp.sink is not None:
                self.cp.sink.close()
        self.store.close()
