"""The audit trail: hash chain, tamper detection, durability flag, concurrent appends."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from opsgate.audit import AuditLog, canonical_json


def _fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.append({"ts": f"t{i}", "call_id": f"c{i}", "tool": "runbook_search", "outcome": "ok", "i": i})


def test_chain_verifies_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    log = AuditLog(path)
    _fill(log, 5)
    log.close()
    reopened = AuditLog(path)
    reopened.append({"tool": "x", "outcome": "ok"}, durable=True)
    report = reopened.verify()
    assert report.ok, report.problems
    assert report.records == 6
    assert [r.seq for r in reopened.tail(3)] == [4, 5, 6]


def test_edited_record_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    log = AuditLog(path)
    _fill(log, 4)
    db = sqlite3.connect(path)
    db.execute('UPDATE audit SET body = replace(body, \'"outcome":"ok"\', \'"outcome":"denied"\') WHERE seq = 2')
    db.commit()
    report = log.verify()
    assert not report.ok
    assert any("record 2" in p and "edited" in p for p in report.problems)


def test_deleted_record_and_truncated_tail_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    log = AuditLog(path)
    _fill(log, 5)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM audit WHERE seq = 3")
    db.commit()
    report = log.verify()
    assert not report.ok
    assert any("missing" in p for p in report.problems)

    other = AuditLog(tmp_path / "b.db")
    _fill(other, 3)
    db = sqlite3.connect(tmp_path / "b.db")
    db.execute("DELETE FROM audit WHERE seq = 3")
    db.commit()
    report = other.verify()
    assert not report.ok
    assert any("head marker" in p for p in report.problems)


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")

    def worker(k: int) -> None:
        for i in range(50):
            log.append({"tool": "t", "outcome": "ok", "k": k, "i": i}, durable=(i % 10 == 0))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = log.verify()
    assert report.ok and report.records == 200


def test_find_by_call_id_rejects_unknown_columns(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")
    _fill(log, 3)
    assert [r["i"] for r in log.find(call_id="c1")] == [1]
    try:
        log.find(body="x")
    except ValueError as exc:
        assert "body" in str(exc)
    else:
        raise AssertionError("unknown column accepted")


def test_two_writers_on_one_file_keep_one_chain(tmp_path: Path) -> None:
    """Two stdio servers (or a server and the CLI) share one audit file."""
    first, second = AuditLog(tmp_path / "audit.db"), AuditLog(tmp_path / "audit.db")
    for i in range(10):
        (first if i % 2 else second).append({"tool": "t", "outcome": "ok", "i": i}, durable=i == 3)
    report = first.verify()
    assert report.ok, report.problems
    assert [r.record["i"] for r in second.records()] == list(range(10))


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_JSON_VALUES)
def test_canonical_json_is_the_json_modules_sorted_compact_form(value: object) -> None:
    """Records written before orjson hashed their columns with the json module: they must verify unchanged."""
    assert canonical_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_canonical_json_takes_the_json_module_for_what_orjson_refuses() -> None:
    for value in ["lone \ud800 surrogate", {1: "integer key"}, 2**70, [{"deep": "\udfff"}]]:
        assert canonical_json(value) == json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        )
