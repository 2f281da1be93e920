"""The CLI a human uses: audit verify before and after tampering, policy test and eval, check, keys."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from opsgate.caller import Caller
from opsgate.cli import main
from opsgate.config import Settings
from opsgate.http_auth import hash_key
from opsgate.server import build_app

POLICIES = Path(__file__).resolve().parents[2] / "policies"


async def _fill_audit(state: Path) -> Path:
    app = build_app(Settings(state_dir=state), ["runbooks"])
    caller = Caller(subject="cli-test", roles=["responder"], client="pytest", authenticated=True)
    await app.gate.call_tool("runbook_search", {"query": "latency"}, caller)
    await app.gate.call_tool("runbook_fetch", {"id": "pod-crashloop"}, caller)
    await app.gate.call_tool("runbook_fetch", {"id": "../x"}, caller)
    await app.aclose()
    return state / "audit.db"


async def test_audit_verify_passes_then_fails_after_an_edit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = await _fill_audit(tmp_path)
    assert main(["audit", "verify", "--file", str(db)]) == 0
    assert "3 records, hash chain intact" in capsys.readouterr().out
    assert main(["audit", "tail", "-n", "2", "--json", "--file", str(db)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["outcome"] for r in lines] == ["ok", "invalid"]

    conn = sqlite3.connect(db)
    conn.execute("UPDATE audit SET body = replace(body, 'cli-test', 'someone-else') WHERE seq = 2")
    conn.commit()
    conn.close()
    assert main(["audit", "verify", "--file", str(db)]) == 1
    out = capsys.readouterr().out
    assert "TAMPERED" in out and "record 2" in out


def test_policy_test_and_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "test", "--dir", str(POLICIES)]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out and "PASS data.opsgate" in out
    doc = {
        "tool": "rollback_deployment",
        "capability": "rollback",
        "scope": "write",
        "risk": "high",
        "args": {"namespace": "shop", "deployment": "checkout", "dry_run": False},
        "target": {"environment": "prod", "namespace": "shop", "service": "checkout"},
        "facts": {},
        "caller": {"subject": "agent", "roles": ["responder"], "client": "x", "authenticated": True, "auth": "local"},
        "approval": None,
        "context": {
            "now": "2026-11-23T05:00:00Z",
            "autonomy": "approved",
            "recent": {"rollback_deployment": {"target_1h": 0, "global_1m": 0, "target_last_s": None}},
        },
    }
    path = tmp_path / "input.json"
    path.write_text(json.dumps(doc))
    assert main(["policy", "eval", "--input", str(path), "--dir", str(POLICIES)]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["allow"] is False and decision["require_approval"] is True and "sre" in decision["approvers"]
    path.write_text("{not json")
    assert main(["policy", "eval", "--input", str(path)]) == 2
    assert "cannot read policy input" in capsys.readouterr().err


def test_policy_test_reports_a_failing_rego_test(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "p" / "opsgate"
    folder.mkdir(parents=True)
    (folder / "decision.rego").write_text('package opsgate\n\ndecision := {"allow": false}\n')
    (folder / "decision_test.rego").write_text(
        "package opsgate_test\n\ntest_allows if {\n\tdata.opsgate.decision.allow\n}\n"
    )
    assert main(["policy", "test", "--dir", str(tmp_path / "p")]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_check_and_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSGATE_STATE_DIR", str(tmp_path))
    assert main(["check", "runbooks"]) == 0
    out = capsys.readouterr().out
    assert "capability runbooks: runbook_search, runbook_fetch" in out and "chain intact" in out
    assert main(["keys", "new", "--subject", "agent@ci", "--role", "responder"]) == 0
    out = capsys.readouterr().out
    secret = out.split("shown once): ")[1].split()[0]
    assert f'sha256 = "{hash_key(secret)}"' in out


def test_bad_config_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "opsgate.toml"
    bad.write_text('autonomy = "yolo"\n')
    assert main(["--config", str(bad), "check"]) == 2
    err = capsys.readouterr().err
    assert "autonomy" in err and str(bad) in err
    bad.write_text("autonomy = \n")
    assert main(["--config", str(bad), "check"]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "missing.toml"), "check"]) == 2
    assert "does not exist" in capsys.readouterr().err
