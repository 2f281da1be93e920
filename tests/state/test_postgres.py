"""The PostgreSQL state backend against a real PostgreSQL: one audit chain for many writers, tamper
detection, reservations shared by stores that do not share a process pool, migrations, and clear
errors (fail closed) when the database is down."""

from __future__ import annotations

import contextlib
import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from opsgate.audit import AuditLog
from opsgate.caller import Caller
from opsgate.config import Settings
from opsgate.server import build_app
from opsgate.state import StateUnavailable, open_audit, open_state
from opsgate.state.base import Counter
from opsgate.state.postgres import MIGRATIONS, PgDatabase, PgLimitStore
from tests.support import testkit
from tests.support.postgres import PostgresServer, start_postgres

AGENT = Caller(subject="agent", roles=["responder"], client="pytest", authenticated=True)


def _settings(tmp_path: Path, url: str, name: str = "state", **kw: object) -> Settings:
    """One replica's settings: its own state dir and export; the signing key every replica mounts."""
    kw.setdefault("audit", {"signing_key": tmp_path / "secret" / "ed25519.pem"})
    return Settings(state_dir=tmp_path / name, state_url=url, **kw)  # type: ignore[arg-type]


def test_many_writers_keep_one_chain(tmp_path: Path, pg_url: str) -> None:
    # two "replicas": separate pools and exports, one database, the signing key from one Secret
    logs = [open_audit(_settings(tmp_path, pg_url, f"r{i}")) for i in range(2)]

    def worker(k: int) -> None:
        for i in range(60):
            logs[k % 2].append({"tool": "t", "outcome": "ok", "k": k, "i": i}, durable=i % 10 == 0)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sinks = [log.cp.sink for log in logs if log.cp and log.cp.sink]
    report = logs[0].verify(sinks)
    assert report.ok, report.problems
    assert report.records == 240 and report.exported >= 2 * 12
    for log in logs:
        log.close()


def test_edits_in_postgres_are_detected(tmp_path: Path, pg_url: str) -> None:
    log = open_audit(_settings(tmp_path, pg_url))
    for i in range(5):
        log.append({"tool": "t", "outcome": "ok", "caller": {"subject": "agent"}, "i": i}, durable=bool(i % 2))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE audit SET subject = 'someone-else' WHERE seq = 2")
    report = log.verify()
    assert not report.ok and any("record 2" in p for p in report.problems)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE audit SET subject = 'agent' WHERE seq = 2")
        conn.execute("DELETE FROM audit WHERE seq > 2")
        conn.execute("DELETE FROM audit_checkpoints")
        conn.execute("UPDATE audit_head SET seq = 2, hash = (SELECT hash FROM audit WHERE seq = 2)")
    report = log.verify()
    assert not report.ok and any("truncated" in p for p in report.problems)
    log.close()


def test_a_dropped_database_is_noticed_at_start(tmp_path: Path, postgres: PostgresServer) -> None:
    name = "t_dropped"
    url = postgres.create_database(name)
    settings = _settings(tmp_path, url)
    app = build_app(settings, [], capabilities=[testkit.build()])
    app.gate.audit.append({"tool": "t", "outcome": "ok"}, durable=True)
    app.gate.audit.close()
    if app.state is not None:
        app.state.close()
    with psycopg.connect(postgres.admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}"')  # type: ignore[arg-type]
    postgres.create_database(name)
    with pytest.raises(Exception, match="deleted, replaced or cut short"):
        build_app(settings, [], capabilities=[testkit.build()])


def test_reservations_hold_across_pools(pg_url: str) -> None:
    a, b = PgDatabase(pg_url), PgDatabase(pg_url)
    sa, sb = PgLimitStore(a), PgLimitStore(b)
    counter = [Counter("write:x", 600, 1, "one per {window_s:.0f}s")]
    results: list[str | None] = []

    def take(store: PgLimitStore, i: int) -> None:
        results.append(store.reserve(counter, f"r{i}", 1000.0 + i * 0.001).refused)

    threads = [threading.Thread(target=take, args=(sa if i % 2 else sb, i)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(None) == 1 and len(results) == 8
    assert a.schema_version() == len(MIGRATIONS)
    a.close()
    b.close()


async def test_gate_on_postgres_reserves_and_audits(tmp_path: Path, pg_url: str) -> None:
    settings = _settings(tmp_path, pg_url, autonomy="autonomous")
    app = build_app(settings, [], capabilities=[testkit.build()])
    other = build_app(
        _settings(tmp_path, pg_url, "replica-b", autonomy="autonomous"), [], capabilities=[testkit.build()]
    )
    write = {"namespace": "shop", "service": "checkout", "value": 1, "dry_run": False}
    first = await app.gate.call_tool("testkit_write", write, AGENT)
    assert not first.is_error
    second = await other.gate.call_tool("testkit_write", write, AGENT)
    # replica B's policy sees replica A's write in its counts
    assert second.is_error and "write.budget.target_interval" in str(second.content[0])
    assert app.gate.audit.verify().ok
    outcomes = [r.record["outcome"] for r in other.gate.audit.records()]
    assert outcomes == ["started", "ok", "denied"]
    await app.aclose()
    await other.aclose()


async def test_database_down_fails_writes_closed_with_a_clear_error(tmp_path: Path) -> None:
    server = start_postgres()
    try:
        url = server.create_database("t_down")
        settings = _settings(tmp_path, url, autonomy="autonomous")
        app = build_app(settings, [], capabilities=[testkit.build()])
        ledger = app.capabilities[0].ledger  # type: ignore[attr-defined]
        server.stop()
        write = {"namespace": "shop", "service": "checkout", "value": 1, "dry_run": False}
        result = await app.gate.call_tool("testkit_write", write, AGENT)
        assert result.is_error
        message = str(result.content[0])
        assert "unavailable" in message and f"127.0.0.1:{server.port}" in message
        assert ledger.executed == []  # nothing ran
        read = await app.gate.call_tool("testkit_echo", {"text": "x"}, AGENT)
        assert read.is_error and "could not record" in str(read.content[0])  # withheld: it cannot be audited
        with pytest.raises(StateUnavailable, match="unavailable"):
            open_state(settings)
        server.start()
        again = await app.gate.call_tool("testkit_write", write, AGENT)
        assert not again.is_error, again.content
        await app.aclose()
    finally:
        with contextlib.suppress(Exception):
            server.stop()

        shutil.rmtree(server.root, ignore_errors=True)


def test_audit_log_from_a_store_instance(tmp_path: Path, pg_url: str) -> None:
    state = open_state(_settings(tmp_path, pg_url))
    log = AuditLog(state.audit_store)
    log.append({"tool": "t", "outcome": "ok"})
    assert log.verify().ok and log.store.location.startswith("postgresql://postgres@127.0.0.1")
    state.close()


def test_an_audit_log_opened_alone_closes_its_pool(tmp_path: Path, pg_url: str) -> None:
    # `opsgate audit verify|tail|reset` on PostgreSQL: the log's pool must not outlive the log
    log = open_audit(_settings(tmp_path, pg_url))
    log.append({"tool": "t", "outcome": "ok"})
    pool = log.store.db.pool  # type: ignore[attr-defined]
    assert not pool.closed
    log.close()
    assert pool.closed
