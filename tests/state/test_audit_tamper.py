"""Probes of issue 9: someone who can write the audit database edits, cuts, rewrites or deletes it.

Each probe goes through the shipped surface (the server's audit trail, `opsgate audit verify`), as an
attacker with the database file but without the checkpoint signing key would meet it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from opsgate.cli import main
from opsgate.config import Settings
from opsgate.server import build_app


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _attacker_hash(row: dict[str, Any]) -> str:
    """What an attacker who read audit.py computes for a row (every column is public knowledge)."""
    if row.get("v", 1) == 1:
        return hashlib.sha256(f"{row['prev_hash']}\n{row['body']}".encode()).hexdigest()
    material = [row["v"], row["seq"], row["ts"], row["call_id"], row["decision_id"], row["tool"], row["subject"]]
    material += [row["outcome"], row["body"], row["prev_hash"]]
    return hashlib.sha256(_canonical(material).encode()).hexdigest()


def _rows(db: sqlite3.Connection) -> list[dict[str, Any]]:
    db.row_factory = sqlite3.Row
    return [dict(r) for r in db.execute("SELECT * FROM audit ORDER BY seq").fetchall()]


def _rechain(db: sqlite3.Connection, rows: list[dict[str, Any]], *, renumber: bool = False) -> None:
    """Recompute every hash (and, with `renumber`, every seq) and move the head: a full rewrite."""
    db.execute("DELETE FROM audit")
    prev = "0" * 64
    for i, row in enumerate(rows, start=1):
        if renumber:
            row["seq"] = i
        row["prev_hash"] = prev
        row["hash"] = _attacker_hash(row)
        prev = row["hash"]
    db.execute("DROP TRIGGER IF EXISTS audit_extends_head")
    for row in rows:
        cols = ", ".join(row)
        db.execute(f"INSERT INTO audit ({cols}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
    db.execute("UPDATE audit_head SET seq = ?, hash = ?", (rows[-1]["seq"] if rows else 0, prev))
    db.commit()


def _drop_checkpoints(db: sqlite3.Connection, where: str = "1=1") -> None:
    """The attacker also removes the checkpoints stored in the database (where there are any)."""
    if db.execute("SELECT name FROM sqlite_master WHERE name = 'audit_checkpoints'").fetchone():
        db.execute(f"DELETE FROM audit_checkpoints WHERE {where}")
    db.commit()


async def _trail(state: Path, n: int = 6) -> Path:
    """A server's trail with `n` records, every second one a write record (durable, checkpointed)."""
    app = build_app(Settings(state_dir=state), ["runbooks"])
    for i in range(n):
        record = {"ts": f"2026-11-30T00:00:0{i}Z", "call_id": f"call_{i}", "tool": "runbook_search"}
        record |= {"caller": {"subject": "agent"}, "outcome": "ok", "scope": "write" if i % 2 else "read"}
        app.gate.audit.append(record, durable=bool(i % 2))
    await app.aclose()
    return state / "audit.db"


def _delete_database(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def _verify(db: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["audit", "verify", "--file", str(db)])
    return code, capsys.readouterr().out


async def test_clean_trail_verifies_with_its_checkpoints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = await _trail(tmp_path / "state")
    code, out = _verify(db, capsys)
    assert code == 0, out
    assert "6 records, hash chain intact" in out and "exported checkpoint(s) verified" in out


@pytest.mark.parametrize("column,value", [("subject", "someone-else"), ("outcome", "denied"), ("tool", "x")])
async def test_editing_an_indexed_column_is_detected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], column: str, value: str
) -> None:
    db = await _trail(tmp_path / "state")
    conn = sqlite3.connect(db)
    conn.execute(f"UPDATE audit SET {column} = ? WHERE seq = 2", (value,))
    conn.commit()
    code, out = _verify(db, capsys)
    assert code == 1 and "record 2" in out, out


async def test_truncated_tail_with_the_head_moved_is_detected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = await _trail(tmp_path / "state")
    conn = sqlite3.connect(db)
    keep = _rows(conn)[:3]
    conn.execute("DELETE FROM audit WHERE seq > 3")
    _drop_checkpoints(conn, "seq > 3")
    conn.execute("UPDATE audit_head SET seq = 3, hash = ?", (keep[-1]["hash"],))
    conn.commit()
    code, out = _verify(db, capsys)
    assert code == 1 and "truncated" in out, out


async def test_edit_and_recomputed_chain_is_detected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = await _trail(tmp_path / "state")
    conn = sqlite3.connect(db)
    rows = _rows(conn)
    rows[1]["outcome"] = "denied"
    rows[1]["body"] = rows[1]["body"].replace('"outcome":"ok"', '"outcome":"denied"')
    _rechain(conn, rows)
    _drop_checkpoints(conn)
    conn.commit()
    code, out = _verify(db, capsys)
    assert code == 1 and "rewritten" in out, out


async def test_delete_and_renumber_is_detected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = await _trail(tmp_path / "state")
    conn = sqlite3.connect(db)
    rows = _rows(conn)
    del rows[2]
    _rechain(conn, rows, renumber=True)
    _drop_checkpoints(conn)
    conn.commit()
    code, out = _verify(db, capsys)
    assert code == 1 and ("rewritten" in out or "truncated" in out), out


async def test_emptied_trail_with_head_at_genesis_is_detected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = await _trail(tmp_path / "state")
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM audit")
    _drop_checkpoints(conn)
    conn.execute("UPDATE audit_head SET seq = 0, hash = ?", ("0" * 64,))
    conn.commit()
    code, out = _verify(db, capsys)
    assert code == 1 and "truncated or emptied" in out, out


async def test_restart_after_the_database_was_deleted_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    db = await _trail(state)
    _delete_database(db)
    with pytest.raises(Exception, match="deleted, replaced or cut short"):
        build_app(Settings(state_dir=state), ["runbooks"])
    code, out = _verify_fresh(state, capsys, monkeypatch)
    assert code == 1 and "deleted or replaced" in out, out
    # the operator records a deliberate new chain; the server starts and verify flags the reset loudly
    monkeypatch.setenv("OPSGATE_STATE_DIR", str(state))
    assert main(["audit", "reset", "--reason", "disk replaced"]) == 0
    capsys.readouterr()
    app = build_app(Settings(state_dir=state), ["runbooks"])
    app.gate.audit.append({"tool": "t", "outcome": "ok"}, durable=True)
    await app.aclose()
    code, out = _verify(db, capsys)
    assert code == 0 and "WARNING" in out and "disk replaced" in out, out


def _verify_fresh(state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """`opsgate audit verify` on a state dir whose database was recreated empty."""
    import sqlite3 as _sqlite

    from opsgate.state.sqlite import SqliteAuditStore

    SqliteAuditStore(state / "audit.db").close()
    _sqlite.connect(state / "audit.db").close()
    monkeypatch.setenv("OPSGATE_STATE_DIR", str(state))
    code = main(["audit", "verify"])
    return code, capsys.readouterr().out


async def test_checkpoint_signed_with_another_key_is_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = await _trail(tmp_path / "state")
    # the attacker rewrites the trail and signs fresh checkpoints with a key of their own
    forged = Settings(state_dir=tmp_path / "forger")
    app = build_app(forged, ["runbooks"])
    app.gate.audit.append({"tool": "t", "outcome": "ok"}, durable=True)
    await app.aclose()
    conn = sqlite3.connect(db)
    own = conn.execute("SELECT body FROM audit_checkpoints ORDER BY id DESC LIMIT 1").fetchone()[0]
    entry = json.loads(own)
    other = sqlite3.connect(tmp_path / "forger" / "audit.db")
    forged_entry = json.loads(other.execute("SELECT body FROM audit_checkpoints").fetchone()[0])
    entry["key_id"], entry["sig"] = forged_entry["key_id"], forged_entry["sig"]
    conn.execute("INSERT INTO audit_checkpoints (seq, body) VALUES (?, ?)", (entry["seq"], json.dumps(entry)))
    conn.commit()
    code, out = _verify(db, capsys)
    assert code == 1 and "unknown key" in out, out


async def test_state_directory_and_databases_are_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    db = await _trail(state)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for path in (db, state / "state.db"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    key = tmp_path / "state-audit-key" / "ed25519.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700


def test_a_signing_key_inside_the_state_dir_is_refused(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", audit={"signing_key": tmp_path / "state" / "k.pem"})
    with pytest.raises(Exception, match="keep it apart from the database"):
        build_app(settings, ["runbooks"])


def test_a_quiet_server_still_signs_its_last_records(tmp_path: Path) -> None:
    """Reads after the last checkpoint get signed by the timer, without waiting for another record."""
    from opsgate.state import open_audit

    log = open_audit(Settings(state_dir=tmp_path / "state", audit={"checkpoint_every": 1000}))
    assert log.cp is not None and log.cp.sink is not None
    log.append({"tool": "runbook_search", "outcome": "ok"})  # a read: not checkpointed by itself
    assert [e for e in log.cp.sink.entries() if e.get("seq") == 1] == []
    log.cp.interval_s = 0.05
    log.start_periodic()
    deadline = time.monotonic() + 30
    while not [e for e in log.cp.sink.entries() if e.get("seq") == 1]:
        assert time.monotonic() < deadline, "no periodic checkpoint within 30 s"
        time.sleep(0.01)
    report = log.verify()
    log.close()
    assert report.ok and report.exported >= 1, report.problems
