"""A fresh clone: the suite passes without ../shared (and CI still requires it), no test depends on the
time of day, and `opsgate` can be put on PATH in one documented step."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _pytest(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_shared_data_tests_skip_with_a_reason_when_absent_and_fail_when_required(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPSGATE_REQUIRE_SHARED_DATA"}
    env["OPSGATE_SHARED_DATASETS"] = str(tmp_path / "no-such-datasets")
    target = ["tests/logs/test_patterns.py", "-k", "loghub_mean or ids_are_stable", "-rs"]
    skipped = _pytest(*target, env=env)
    assert skipped.returncode == 0, skipped.stdout[-2000:]
    assert "1 passed, 1 skipped" in skipped.stdout, skipped.stdout[-2000:]
    assert "needs the shared dataset 'loghub'" in skipped.stdout and str(tmp_path) in skipped.stdout

    required = _pytest(*target, env={**env, "OPSGATE_REQUIRE_SHARED_DATA": "1"})
    assert required.returncode == 1, required.stdout[-2000:]
    assert "1 passed" in required.stdout and ("1 failed" in required.stdout or "1 error" in required.stdout)
    assert "OPSGATE_REQUIRE_SHARED_DATA is set" in required.stdout


def test_ci_requires_the_shared_data() -> None:
    run = (REPO / ".ci" / "run").read_text()
    assert "OPSGATE_REQUIRE_SHARED_DATA=1" in run


def test_the_metrics_test_incident_does_not_follow_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.metrics.incident as incident

    ends = []
    for shift in (0.0, 5 * 3600.0, 13 * 3600.0):
        monkeypatch.setattr(time, "time", lambda shift=shift: 1_800_000_000.0 + shift)
        ends.append(importlib.reload(incident).END)
    monkeypatch.undo()
    importlib.reload(incident)
    assert len(set(ends)) == 1


def test_install_puts_a_working_opsgate_on_path_from_any_folder(tmp_path: Path) -> None:
    bindir, elsewhere = tmp_path / "bin", tmp_path / "somewhere" / "deep"
    elsewhere.mkdir(parents=True)
    venv_bin = Path(sys.executable).parent
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-bin.sh"), str(venv_bin / "opsgate"), str(bindir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    link = bindir / "opsgate"
    assert link.is_symlink() and link.readlink().is_absolute()
    assert str(link) in done.stdout
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}/usr/bin:/bin"}
    ran = subprocess.run(["opsgate", "--help"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and "serve" in ran.stdout, ran.stderr
    makefile = (REPO / "Makefile").read_text()
    assert "install:" in makefile and "scripts/install-bin.sh" in makefile
    readme = (REPO / "README.md").read_text()
    assert "make install" in readme
    assert "-- .venv/bin/opsgate" not in readme  # relative: fails from a subfolder


def test_a_missing_system_tool_skips_with_a_reason_and_fails_when_required() -> None:
    # kubectl found nowhere on PATH: the real-kubectl tests skip on a developer machine, fail in CI
    env = {k: v for k, v in os.environ.items() if k != "OPSGATE_REQUIRE_SYSTEM_DEPS"}
    env["PATH"] = str(Path(sys.executable).parent)
    target = ["tests/sandbox/test_kubectl.py", "-rs"]
    skipped = _pytest(*target, env=env)
    assert skipped.returncode == 0 and "kubectl is not installed" in skipped.stdout, skipped.stdout[-2000:]
    required = _pytest(*target, env={**env, "OPSGATE_REQUIRE_SYSTEM_DEPS": "1"})
    assert required.returncode == 1, required.stdout[-2000:]
    assert "OPSGATE_REQUIRE_SYSTEM_DEPS is set, so it is required" in required.stdout


def test_ci_requires_the_system_packages() -> None:
    assert "OPSGATE_REQUIRE_SYSTEM_DEPS=1" in (REPO / ".ci" / "run").read_text()
