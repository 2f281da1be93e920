"""`opsgate check` makes one cheap real request to every configured backend and reports each."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsgate.cli import main
from tests.support.loopback import free_port


def test_check_probes_each_backend_and_fails_on_an_unreachable_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSGATE_STATE_DIR", str(tmp_path / "state"))
    config = tmp_path / "opsgate.toml"
    closed = free_port()  # free again once found: nothing listens there
    config.write_text(f'[metrics]\nbackend = "prometheus"\n[metrics.prometheus]\nurl = "http://127.0.0.1:{closed}"\n')
    assert main(["--config", str(config), "check", "runbooks", "logs", "metrics"]) == 1
    out = capsys.readouterr().out
    assert "backend folder: ok (5 runbook(s)" in out
    assert "backend files: ok (answered a query" in out
    assert "backend prometheus: FAIL (unreachable: " in out

    assert main(["--config", str(config), "check", "runbooks", "logs"]) == 0
    assert "FAIL" not in capsys.readouterr().out
