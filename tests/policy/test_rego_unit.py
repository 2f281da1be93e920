"""The shipped policies' Rego unit tests, run by opsgate's runner (regorus) and by real OPA."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from opsgate.policy.embedded import policy_test_modules
from opsgate.policy.testing import discover_tests, eval_decision, run_policy_tests
from tests.policy.cases import POLICY_DIR, load_cases
from tests.policy.real_opa import RealOpa


def test_all_rego_unit_tests_pass() -> None:
    report = run_policy_tests(POLICY_DIR)
    failures = [f"{r.file}:{r.name}: {r.error}" for r in report.results if not r.passed]
    assert failures == []
    assert report.passed > 30
    assert report.ok and report.summary() == f"{report.passed} passed, 0 failed"


def test_every_rule_id_has_a_unit_test() -> None:
    sources = "\n".join(source for _, source in policy_test_modules(POLICY_DIR))
    policies = "\n".join(
        p.read_text() for p in (POLICY_DIR / "opsgate").glob("*.rego") if not p.name.endswith("_test.rego")
    )
    rule_ids = set(re.findall(r'"((?:read|write|caller|autonomy|default)\.[a-z_.0-9]+)"', policies))
    assert len(rule_ids) >= 15
    assert sorted(r for r in rule_ids if f'"{r}"' not in sources) == []


def test_same_unit_tests_pass_on_real_opa() -> None:
    opa = RealOpa(POLICY_DIR, with_tests=True)
    try:
        for _, source in policy_test_modules(POLICY_DIR):
            package, names = discover_tests(source)
            for name in names:
                assert opa.document(f"{package}.{name}") is True, f"{package}.{name} fails on OPA"
    finally:
        opa.close()


def test_a_broken_policy_fails_its_unit_tests(tmp_path: Path) -> None:
    broken = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, broken)
    approvals = broken / "opsgate" / "approvals.rego"
    # Let anyone approve their own request.
    source = approvals.read_text()
    rule = "\tinput.approval.granted_by != input.caller.subject\n"
    assert rule in source
    approvals.write_text(source.replace(rule, "\ttrue\n"))
    report = run_policy_tests(broken)
    failed = {r.name for r in report.results if not r.passed}
    assert "test_self_approval_denied" in failed
    assert not report.ok


def test_eval_decision_returns_the_raw_document() -> None:
    case = next(c for c in load_cases() if c.name == "prod dry run")
    decision = eval_decision(POLICY_DIR, case.input)
    assert decision["allow"] is True
    assert decision["obligations"]["dry_run_only"] is True


def test_readme_policy_figures_are_current() -> None:
    """The README's policy section states how many unit tests, fail-closed cases and table cases exist."""
    import yaml

    readme = (POLICY_DIR.parent / "README.md").read_text(encoding="utf-8")
    unit = re.search(r"the _test\.rego unit tests \((\d+)\)", readme)
    broken = re.search(r"\((\d+) cases over (\d+) rules", readme)
    table = re.search(r"decision_cases\.yaml`, (\d+) cases", readme)
    assert unit and broken and table, "the README's policy section lost its figures"
    report = run_policy_tests(POLICY_DIR)
    cases = yaml.safe_load((POLICY_DIR.parent / "tests/policy/fail_closed_cases.yaml").read_text())["cases"]
    stated = (int(unit[1]), int(broken[1]), int(broken[2]), int(table[1]))
    actual = (len(report.results), len(cases), len({c["rule"] for c in cases}), len(load_cases()))
    assert stated == actual, f"update the README's policy section: (unit tests, cases, rules, table) = {actual}"
