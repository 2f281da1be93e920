"""What the README tells a new user to run, and the tools it says an agent gets, match the code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from opsgate.cli import main
from opsgate.launch import CAPABILITIES

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
SERVED = [t["name"] for t in json.loads((REPO / "tests/snapshots/tools.json").read_text())]


def _agent_table() -> list[list[str]]:
    section = README.split("## What an agent gets", 1)[1].split("\n\n", 2)[1]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("|")]
    return rows[2:]  # after the header and its rule


def test_the_agent_table_lists_every_capability_and_tool_served() -> None:
    rows = _agent_table()
    capabilities = [r[0] for r in rows]
    assert set(CAPABILITIES) <= set(capabilities), f"rows missing: {set(CAPABILITIES) - set(capabilities)}"
    named = {name for r in rows for name in re.findall(r"`([a-z0-9_]+)`", r[1])}
    assert set(SERVED) <= named, f"tools served but not in the table: {set(SERVED) - named}"
    assert "submit_diagnosis" in named and "submit_diagnosis" not in SERVED  # eval-only, said so in its row
    stated = re.search(r"\((\d+) tools\)", README.split("## Two commands", 1)[0])
    assert stated and int(stated[1]) == len(SERVED), f"the introduction should say ({len(SERVED)} tools)"


def test_the_serve_line_names_every_capability() -> None:
    line = re.search(r"opsgate serve \[([a-z|]+)\]", README)
    assert line, "the README lost its `opsgate serve [...]` line"
    assert line[1].split("|") == [*CAPABILITIES, "all"]


def test_the_scenario_count_is_current() -> None:
    stated = re.search(r"`scenarios/\*\.yaml` \((\d+) shipped", README)
    assert stated and int(stated[1]) == len(list((REPO / "scenarios").glob("*.yaml")))


def test_serve_with_no_config_refuses_an_unknown_capability_at_once(tmp_path: Path) -> None:
    """It used to start, answer `initialize`, and fail only at the first `tools/list`."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path), "OPSGATE_STATE_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "opsgate.cli", "serve", "logz"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "unknown capability 'logz'" in proc.stderr


def test_check_with_no_config_checks_what_serve_serves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`opsgate check` on a fresh machine probes the sandbox's world, as `opsgate serve` with no config
    serves it; it used to probe an unconfigured cluster and a Prometheus on :9090 and exit 1."""
    monkeypatch.delenv("OPSGATE_CONFIG", raising=False)
    monkeypatch.setenv("OPSGATE_STATE_DIR", str(tmp_path / "state"))
    assert main(["check", "rollback", "workloads"]) == 0
    out = capsys.readouterr().out
    assert "the sandbox's default scenario" in out
    assert out.count("backend kubernetes: ok") == 2, out


def test_every_benchmark_the_readme_quotes_exists_takes_its_flags_and_finds_tests_support() -> None:
    """`python bench/X.py --flag` as quoted runs from a fresh checkout: the script exists, declares each flag,
    and puts the repository root on sys.path before importing `tests.` (run as a script, only `bench/` is
    there: bench_metrics_response.py failed with "No module named 'tests'")."""
    quoted = re.findall(r"`python (bench/[a-z_]+\.py)((?: --[a-z-]+(?: [^`\s]+)?)*)`", README)
    assert len({path for path, _ in quoted}) >= 10, quoted
    for path, flags in quoted:
        source = (REPO / path).read_text(encoding="utf-8")
        for flag in re.findall(r"--[a-z-]+", flags):
            assert f'"{flag}"' in source, f"{path} has no {flag}"
        lines = source.splitlines()
        imports = [i for i, ln in enumerate(lines) if re.match(r"(from|import) tests\b", ln)]
        if imports:
            inserts = [i for i, ln in enumerate(lines) if "sys.path.insert(0" in ln]
            assert inserts and inserts[0] < imports[0], f"{path} imports tests. before putting the root on sys.path"
