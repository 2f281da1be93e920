"""The embedded (regorus) engine: loading, revision, errors, threading, bounded evaluation."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from opsgate.policy.decision import Decision, PolicyError
from opsgate.policy.embedded import EmbeddedEngine
from opsgate.policy.engine import PolicyEngine
from opsgate.policy.loader import make_engine
from opsgate.policy.opa import OpaServerEngine
from tests.policy.cases import POLICY_DIR, load_cases

CASES = {case.name: case for case in load_cases()}


@pytest.fixture
def policy_copy(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, target)
    return target


def write_policy(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    return path


async def test_decides_a_read() -> None:
    engine = EmbeddedEngine(POLICY_DIR)
    assert isinstance(engine, PolicyEngine)
    decision = await engine.decide(CASES["read allowed"].input)
    assert decision.allow is True
    assert decision.rule == "read.allowed"
    assert decision.obligations.max_items == 200
    assert decision.obligations.redact is True
    await engine.aclose()


async def test_prod_write_needs_approval_with_actionable_reason() -> None:
    decision = await EmbeddedEngine(POLICY_DIR).decide(CASES["prod write without approval"].input)
    assert decision.allow is False
    assert decision.require_approval is True
    assert decision.approvers == ["sre"]
    assert decision.approvals_needed == 1
    assert decision.alternative == "call again with dry_run=true"
    assert decision.reasons == ["rollback_deployment in production needs approval by role sre"]


def test_every_deny_in_the_table_has_a_reason() -> None:
    engine = EmbeddedEngine(POLICY_DIR)
    for case in CASES.values():
        decision = engine.decide_sync(case.input)
        if not decision.allow:
            assert decision.reasons and all(r.strip() for r in decision.reasons), case.name


def test_revision_is_a_short_digest_that_follows_policies_and_data(policy_copy: Path) -> None:
    first = EmbeddedEngine(policy_copy).revision
    assert len(first) == 12 and int(first, 16) >= 0
    assert EmbeddedEngine(policy_copy).revision == first
    assert EmbeddedEngine(policy_copy, {"opsgate_config": {"max_items": 5}}).revision != first
    rule_file = policy_copy / "opsgate" / "read.rego"
    rule_file.write_text(rule_file.read_text() + "\n# a comment changes the bundle\n")
    assert EmbeddedEngine(policy_copy).revision != first


def test_data_argument_is_merged_over_data_file() -> None:
    engine = EmbeddedEngine(POLICY_DIR, {"opsgate_config": {"max_items": 7}})
    decision = engine.decide_sync(CASES["read allowed"].input)
    assert decision.obligations.max_items == 7
    assert decision.approvers == []  # the rest of the data file is still there:
    assert engine.decide_sync(CASES["prod write without approval"].input).approvers == ["sre"]


def test_data_yaml_is_read(policy_copy: Path) -> None:
    data = json.loads((policy_copy / "data.json").read_text())
    data["opsgate_config"]["approver_roles"] = ["incident-commander"]
    (policy_copy / "data.json").unlink()
    import yaml

    (policy_copy / "data.yaml").write_text(yaml.safe_dump(data))
    decision = EmbeddedEngine(policy_copy).decide_sync(CASES["prod write without approval"].input)
    assert decision.approvers == ["incident-commander"]


def test_test_files_are_not_loaded(policy_copy: Path) -> None:
    # A broken _test.rego must not stop the policies from loading.
    write_policy(policy_copy, "opsgate/broken_test.rego", "package opsgate_test\n\ntest_x if {\n")
    EmbeddedEngine(policy_copy)


def test_syntax_error_names_file_and_line(policy_copy: Path) -> None:
    write_policy(policy_copy, "opsgate/extra.rego", "package opsgate\n\nimport rego.v1\n\nbad if {\n\tinput.x ==\n}\n")
    with pytest.raises(PolicyError, match=r"opsgate/extra\.rego:7:\d+"):
        EmbeddedEngine(policy_copy)


def test_missing_or_empty_policy_dir(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        EmbeddedEngine(tmp_path / "nope")
    with pytest.raises(PolicyError, match=r"no \.rego"):
        EmbeddedEngine(tmp_path)


def test_undefined_decision_is_a_policy_error(tmp_path: Path) -> None:
    source = 'package opsgate\n\nimport rego.v1\n\ndecision := {"allow": true} if input.magic == 42\n'
    write_policy(tmp_path, "p.rego", source)
    engine = EmbeddedEngine(tmp_path)
    assert engine.decide_sync({"magic": 42}).allow is True
    with pytest.raises(PolicyError, match="undefined"):
        engine.decide_sync({"magic": 1})


def test_conflicting_decision_is_a_policy_error(tmp_path: Path) -> None:
    write_policy(
        tmp_path,
        "p.rego",
        "package opsgate\n\nimport rego.v1\n\n"
        'decision := {"allow": true} if input.a\n\ndecision := {"allow": false} if input.b\n',
    )
    engine = EmbeddedEngine(tmp_path)
    with pytest.raises(PolicyError):
        engine.decide_sync({"a": True, "b": True})


def test_malformed_decision_is_a_policy_error(tmp_path: Path) -> None:
    write_policy(tmp_path, "p.rego", 'package opsgate\n\nimport rego.v1\n\ndecision := {"allow": "yes"}\n')
    with pytest.raises(PolicyError, match="allow"):
        EmbeddedEngine(tmp_path).decide_sync({})


def test_input_that_is_not_json_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="JSON"):
        EmbeddedEngine(POLICY_DIR).decide_sync({"when": object()})


def test_runaway_policy_is_stopped_not_hung(tmp_path: Path) -> None:
    # 25 million iterations: the VM's instruction budget stops it long before.
    write_policy(
        tmp_path,
        "p.rego",
        "package opsgate\n\nimport rego.v1\n\n"
        'decision := {"allow": count([1 | some x in numbers.range(1, 5000); some y in numbers.range(1, 5000)]) > 0}\n',
    )
    engine = EmbeddedEngine(tmp_path)
    started = time.perf_counter()
    with pytest.raises(PolicyError, match="instruction limit"):
        engine.decide_sync({})
    assert time.perf_counter() - started < 1.0


def test_large_realistic_input_fits_the_instruction_budget() -> None:
    doc: dict[str, Any] = json.loads(json.dumps(CASES["prod write with sre grant"].input))
    doc["caller"]["roles"] = [f"role-{i}" for i in range(200)]
    doc["approval"]["roles"] = [f"role-{i}" for i in range(200)] + ["sre"]
    doc["args"]["raw_query"] = "x" * 10_000
    windows = [
        {
            "start": f"2027-01-{d:02d}T00:00:00Z",
            "end": f"2027-01-{d:02d}T12:00:00Z",
            "environments": ["prod"],
            "reason": f"r{d}",
        }
        for d in range(1, 29)
    ]
    engine = EmbeddedEngine(POLICY_DIR, {"opsgate_config": {"freeze_windows": windows}})
    assert engine.decide_sync(doc).rule == "write.approved"


def test_decide_from_other_threads() -> None:
    engine = EmbeddedEngine(POLICY_DIR)
    results: list[Decision | BaseException] = []

    def work() -> None:
        try:
            results.append(engine.decide_sync(CASES["read allowed"].input))
        except BaseException as exc:  # a regorus thread panic is a BaseException
            results.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [getattr(r, "rule", r) for r in results] == ["read.allowed"] * 3


def test_make_engine() -> None:
    embedded = make_engine("embedded", policy_dir=str(POLICY_DIR))
    assert isinstance(embedded, EmbeddedEngine) and embedded.name == "embedded"
    opa = make_engine("opa", url="http://127.0.0.1:8181", timeout_s=0.5)
    assert isinstance(opa, OpaServerEngine) and opa.name == "opa"
    with pytest.raises(PolicyError, match="unknown policy engine 'cedar'"):
        make_engine("cedar")
    with pytest.raises(PolicyError, match="bad setting"):
        make_engine("opa", nonsense=1)
    with pytest.raises(PolicyError, match="policy_dir"):
        make_engine("embedded")
