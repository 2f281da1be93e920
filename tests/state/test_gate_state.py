"""The gate's limit and audit steps against shared state: per-caller rates, breakers that only writes
open, reservations that survive a restart, secrets kept out of audit records, and a failing audit store
after a real write."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from opsgate.audit import digest
from opsgate.caller import Caller
from opsgate.config import Settings
from opsgate.contracts import Capability, Contract, Target, ToolInput, WriteInput, WriteOutput
from opsgate.gate import CallContext
from opsgate.server import App, build_app
from tests.support import testkit

AGENT = Caller(subject="agent-a", roles=["responder"], client="pytest", authenticated=True)
OTHER = Caller(subject="agent-b", roles=["responder"], client="pytest", authenticated=True)
# write budgets are policy data: no interval between writes of one target (the hour's count still holds)
NO_INTERVAL = {"opsgate_config": {"budgets": {"default": {"target_interval_s": 0}}}}
WRITE = {"namespace": "shop", "service": "checkout", "value": 1, "dry_run": False}


def _text(result: Any) -> str:
    return str(getattr(result.content[0], "text", ""))


def _outcome(result: Any) -> str:
    return str((result.meta or {}).get("opsgate/outcome", "ok"))


class ProbeInput(ToolInput):
    namespace: str = Field(pattern=r"^[a-z0-9-]{1,63}$")
    service: str = Field(pattern=r"^[a-z0-9-]{1,63}$")
    blob: str = Field(default="", max_length=20000)


class ProbeOutput(WriteOutput):
    applied: bool = False


def probes(on_write: Callable[[], None] = lambda: None) -> Capability:
    """A read that always fails with an internal error, and a write that runs `on_write` as it applies."""

    async def broken_read(args: ProbeInput, ctx: CallContext) -> ProbeOutput:
        raise RuntimeError("backend exploded")

    class WriteIn(ProbeInput, WriteInput):
        pass

    async def write(args: WriteIn, ctx: CallContext) -> ProbeOutput:
        if not args.dry_run:
            on_write()
        return ProbeOutput(applied=not args.dry_run)

    def target(args: ProbeInput) -> Target:
        return Target(namespace=args.namespace, service=args.service)

    return Capability(
        name="probe",
        contracts=[
            Contract(
                name="probe_read",
                capability="probe",
                purpose="A read that fails (test-only).",
                input_model=ProbeInput,
                output_model=ProbeOutput,
                scope="read",
                risk="low",
                handler=broken_read,
                target=target,
            ),
            Contract(
                name="probe_write",
                capability="probe",
                purpose="A write (test-only).",
                input_model=WriteIn,
                output_model=ProbeOutput,
                scope="write",
                risk="high",
                handler=write,
                target=target,
            ),
        ],
    )


def _app(state: Path, *caps: Capability, **overrides: Any) -> App:
    settings = Settings(state_dir=state, autonomy="autonomous", **overrides)
    return build_app(settings, [], capabilities=list(caps) or [testkit.build()])


async def test_one_callers_load_does_not_refuse_another_caller(tmp_path: Path) -> None:
    app = _app(tmp_path / "state", limits={"per_tool_per_minute": 3})
    for _ in range(3):
        assert not (await app.gate.call_tool("testkit_echo", {"text": "x"}, AGENT)).is_error
    refused = await app.gate.call_tool("testkit_echo", {"text": "x"}, AGENT)
    assert refused.is_error and "per caller" in _text(refused)
    first = await app.gate.call_tool("testkit_echo", {"text": "x"}, OTHER)
    assert not first.is_error, _text(first)
    await app.aclose()


async def test_the_global_ceiling_holds_over_all_callers(tmp_path: Path) -> None:
    app = _app(tmp_path / "state", limits={"per_tool_per_minute": 100, "global_per_minute": 4})
    callers = [Caller(subject=f"c{i}", roles=["responder"], client="t", authenticated=True) for i in range(5)]
    results = [await app.gate.call_tool("testkit_echo", {"text": "x"}, c) for c in callers]
    assert [r.is_error for r in results] == [False] * 4 + [True]
    assert "from all callers" in _text(results[-1])
    await app.aclose()


async def test_failing_reads_do_not_lock_out_a_write_on_the_target(tmp_path: Path) -> None:
    app = _app(tmp_path / "state", probes(), limits={"breaker_failures": 3}, policy={"data": NO_INTERVAL})
    target = {"namespace": "shop", "service": "checkout"}
    for _ in range(5):
        failed = await app.gate.call_tool("probe_read", target, AGENT)
        assert failed.is_error and "internal error" in _text(failed)
    write = await app.gate.call_tool("probe_write", {**target, "dry_run": False}, AGENT)
    assert not write.is_error, _text(write)
    assert write.structured_content["applied"] is True
    await app.aclose()


async def test_the_per_target_interval_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    app = _app(state)
    assert not (await app.gate.call_tool("testkit_write", WRITE, AGENT)).is_error
    await app.aclose()
    restarted = _app(state)
    again = await restarted.gate.call_tool("testkit_write", WRITE, AGENT)
    assert again.is_error and _outcome(again) == "denied" and "write.budget.target_interval" in _text(again)
    # a dry run is not a write: it is not refused and takes nothing
    assert not (await restarted.gate.call_tool("testkit_write", {**WRITE, "dry_run": True}, AGENT)).is_error
    await restarted.aclose()


async def test_a_refused_or_unapplied_write_releases_its_reservation(tmp_path: Path) -> None:
    app = _app(tmp_path / "state")
    app.gate.settings.autonomy = "read-only"  # the policy refuses every write
    refused = await app.gate.call_tool("testkit_write", WRITE, AGENT)
    assert refused.is_error and _outcome(refused) == "denied"
    app.gate.settings.autonomy = "autonomous"
    ok = await app.gate.call_tool("testkit_write", WRITE, AGENT)
    assert not ok.is_error, _text(ok)
    await app.aclose()


async def test_secrets_in_arguments_are_not_stored_in_the_audit_trail(tmp_path: Path) -> None:
    app = _app(tmp_path / "state")
    args = {"text": "login with password=hunter2-Secret99 and Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"}
    result = await app.gate.call_tool("testkit_echo", args, AGENT)
    assert not result.is_error
    bad = await app.gate.call_tool("testkit_echo", {"text": "password=hunter2-Secret99", "extra": 1}, AGENT)
    assert bad.is_error
    await app.aclose()
    raw = (tmp_path / "state" / "audit.db").read_bytes()
    assert b"hunter2" not in raw and b"c2lnbmF0dXJl" not in raw
    records = [r.record for r in build_app(Settings(state_dir=tmp_path / "state"), []).gate.audit.records()]
    assert "[REDACTED:" in records[0]["args"]["text"] and records[0]["args_redacted"] >= 1
    # the digest still binds the exact arguments
    assert records[0]["args_digest"] == digest({"tool": "testkit_echo", "args": args})


async def test_audit_failure_after_a_real_write_says_it_was_applied_and_refuses_more_writes(tmp_path: Path) -> None:
    applied: list[int] = []
    holder: dict[str, App] = {}

    def disk_fills_up() -> None:
        # the disk fills while the change is applied: the audit store can no longer grow
        applied.append(1)
        if len(applied) > 1:
            return
        db = holder["app"].gate.audit.store._db  # type: ignore[attr-defined]
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")

    app = _app(tmp_path / "state", probes(disk_fills_up), policy={"data": NO_INTERVAL})
    holder["app"] = app
    target = {"namespace": "shop", "service": "checkout", "blob": "x" * 12000}
    result = await app.gate.call_tool("probe_write", {**target, "dry_run": False}, AGENT)
    assert applied == [1]
    assert result.is_error and _outcome(result) == "audit_failed"
    assert "WAS APPLIED" in _text(result) and "Do not retry" in _text(result)
    assert (result.meta or {})["opsgate/applied"] is True

    refused = await app.gate.call_tool("probe_write", {**target, "dry_run": False}, AGENT)
    assert refused.is_error and "refused while the audit store fails" in _text(refused)
    assert applied == [1]

    # space comes back: the kept record is appended first, and writes run again
    app.gate.audit.store._db.execute("PRAGMA max_page_count = 1073741823")  # type: ignore[attr-defined]
    again = await app.gate.call_tool("probe_write", {**target, "blob": "", "dry_run": False}, AGENT)
    assert not again.is_error, _text(again)
    assert applied == [1, 1]
    outcomes = [r.record["outcome"] for r in app.gate.audit.records() if r.record["tool"] == "probe_write"]
    assert outcomes.count("ok") == 2 and "started" in outcomes
    assert app.gate.audit.verify().ok
    await app.aclose()


def test_limits_db_is_shared_by_processes_on_one_state_dir(tmp_path: Path) -> None:
    from opsgate.state.base import Counter
    from opsgate.state.sqlite import SqliteLimitStore

    a, b = SqliteLimitStore(tmp_path / "state.db"), SqliteLimitStore(tmp_path / "state.db")
    counter = [Counter("k", 600, 1, "one per {window_s:.0f}s, next in {wait_s:.0f}s")]
    first = a.reserve(counter, "r1", 1000.0)
    second = b.reserve(counter, "r2", 1001.0)
    assert first.refused is None and second.refused == "one per 600s, next in 599s"
    a.release("r1")
    assert b.reserve(counter, "r3", 1002.0).refused is None
    assert sqlite3.connect(tmp_path / "state.db").execute("SELECT count(*) FROM limit_events").fetchone()[0] == 1


class _Together:
    """A policy engine wrapper: real writes get their decision only once `n` of them have one, so every
    write decides on the same counts (none of the others has reserved yet)."""

    def __init__(self, engine: Any, shared: dict[str, Any]) -> None:
        self.engine, self.shared = engine, shared
        self.name, self.revision = engine.name, engine.revision

    async def decide(self, policy_input: dict[str, Any]) -> Any:
        decision = await self.engine.decide(policy_input)
        if policy_input["args"].get("dry_run") is False:
            self.shared["waiting"] += 1
            if self.shared["waiting"] >= self.shared["n"]:
                self.shared["go"].set()
            await self.shared["go"].wait()
        return decision

    async def aclose(self) -> None:
        await self.engine.aclose()


async def test_writes_the_policy_allowed_together_cannot_outrun_the_budget(tmp_path: Path) -> None:
    """Two servers on one state dir decide on the same counts (both allowed); the reservation lets one run."""
    state = tmp_path / "state"
    a, b = _app(state), _app(state)
    shared: dict[str, Any] = {"n": 2, "waiting": 0, "go": asyncio.Event()}
    for app in (a, b):
        app.gate.engine = _Together(app.gate.engine, shared)  # type: ignore[assignment]
    results = await asyncio.gather(*(app.gate.call_tool("testkit_write", WRITE, AGENT) for app in (a, b)))
    ran = [r for r in results if not r.is_error]
    refused = [r for r in results if r.is_error]
    assert len(ran) == 1 and len(refused) == 1
    assert _outcome(refused[0]) == "rate_limited" and "including writes still running" in _text(refused[0])
    for app in (a, b):
        await app.aclose()
