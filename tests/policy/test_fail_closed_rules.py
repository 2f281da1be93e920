"""Policy that fails closed on its own errors (issue 9 item 4, "A freeze that silently stops freezing").

Every denial rule is broken on purpose (fail_closed_cases.yaml: malformed input, or policy data the
rule cannot read) starting from a call the policy allows; the decision must be a deny through the
embedded engine, through the OPA Data API (OpaServerEngine against the loopback stand-in) and through
real OPA's Go engine. The data is loaded with schema validation off: the loaders refuse it, so this
proves the Rego holds by itself (OPA may be given a bundle opsgate never saw).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsgate.policy.decision import Decision, PolicyError
from opsgate.policy.embedded import EmbeddedEngine, load_policy_data
from opsgate.policy.opa import OpaServerEngine
from tests.policy.cases import POLICY_DIR
from tests.policy.opa_data_api_server import ServerBehaviour, serve

CASES_FILE = Path(__file__).with_name("fail_closed_cases.yaml")
# Rules that are not denial checks: the fallback deny, and the denial of a check that failed.
NOT_CHECKS = {"default.deny", "policy.check_failed"}
# Owned by the approvals work (policies/opsgate/approvals*.rego); listed by its own tests.
APPROVAL_RULES = re.compile(r"^write\.(prod\.)?(requires_approval|approval\.)")


def _merge(base: Any, override: Any) -> Any:
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    merged = copy.deepcopy(base)
    for key, value in override.items():
        merged[key] = _merge(merged.get(key), value) if key in merged else copy.deepcopy(value)
    return merged


@dataclass(frozen=True)
class BrokenCase:
    name: str
    rule: str
    input: dict[str, Any]
    base_input: dict[str, Any]
    data: dict[str, Any] | None

    @property
    def data_key(self) -> str:
        return yaml.safe_dump(self.data, sort_keys=True)


def load_broken_cases() -> list[BrokenCase]:
    table = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
    cases = []
    for case in table["cases"]:
        base = table["bases"][case["base"]]
        data = case.get("data")
        cases.append(
            BrokenCase(
                name=case["name"],
                rule=case["rule"],
                input=_merge(base, case.get("input") or {}),
                base_input=base,
                data={"opsgate_config": data} if data is not None else None,
            )
        )
    return cases


CASES = load_broken_cases()
_ENGINES: dict[str, EmbeddedEngine] = {}


def engine_for(case: BrokenCase) -> EmbeddedEngine:
    """The embedded engine loaded with this case's (unvalidated) data; one per distinct data."""
    if case.data_key not in _ENGINES:
        _ENGINES[case.data_key] = EmbeddedEngine(POLICY_DIR, case.data, validate_data=False)
    return _ENGINES[case.data_key]


def assert_denied(decision: Decision | dict[str, Any], case: BrokenCase) -> None:
    doc = decision.model_dump() if isinstance(decision, Decision) else decision
    assert doc["allow"] is False, f"{case.name}: {case.rule} broken, yet allowed: {doc}"
    assert doc["reasons"] and doc["rule"], doc


def denial_rule_ids() -> set[str]:
    """The rule id of every `deny(priority, "rule", ...)` in the shipped policies."""
    sources = "\n".join(
        p.read_text(encoding="utf-8")
        for p in sorted((POLICY_DIR / "opsgate").glob("*.rego"))
        if not p.name.endswith("_test.rego")
    )
    return set(re.findall(r'deny\(\s*\d+,\s*"([a-z_.0-9]+)"', sources))


def test_every_denial_rule_is_broken_on_purpose() -> None:
    rules = {r for r in denial_rule_ids() - NOT_CHECKS if not APPROVAL_RULES.match(r)}
    assert len(rules) >= 9
    covered = {case.rule for case in CASES}
    assert sorted(rules - covered) == [], "add a case to fail_closed_cases.yaml for each new denial rule"
    assert covered <= rules, sorted(covered - rules)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_unbroken_base_is_allowed(case: BrokenCase) -> None:
    # so each deny below is the broken rule's doing, not the base's
    assert EmbeddedEngine(POLICY_DIR).decide_sync(case.base_input).allow is True


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_embedded_engine_denies(case: BrokenCase) -> None:
    assert_denied(engine_for(case).decide_sync(case.input), case)


@dataclass
class StandIn:
    url: str
    behaviour: ServerBehaviour
    # regorus VMs must be dropped on the thread that made them: the engines (with the VMs the server
    # thread built) live until that thread has ended
    engines: dict[str, EmbeddedEngine]


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    engines: dict[str, EmbeddedEngine] = {}
    with serve(POLICY_DIR) as (url, behaviour):
        yield StandIn(url, behaviour, engines)
        behaviour.engine = None
    engines.clear()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_opa_data_api_denies(standin: StandIn, case: BrokenCase) -> None:
    if case.data_key not in standin.engines:
        standin.engines[case.data_key] = EmbeddedEngine(POLICY_DIR, case.data, validate_data=False)
    standin.behaviour.mode = "ok"
    standin.behaviour.engine = standin.engines[case.data_key]
    opa = OpaServerEngine(standin.url, timeout_s=5.0)
    try:
        assert_denied(await opa.decide(case.input), case)
    finally:
        await opa.aclose()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_real_opa_denies(case: BrokenCase) -> None:
    pytest.importorskip("opa_bindings", reason="real OPA bindings (opa-golib-python-bindings) not installed")
    from tests.policy.real_opa import RealOpa

    opa = RealOpa(POLICY_DIR, data=case.data, validate=False)
    try:
        decision = opa.decision(case.input)
    finally:
        opa.close()
    assert decision is not None, f"{case.name}: undefined decision on OPA"
    assert_denied(decision, case)


@pytest.mark.parametrize("case", [c for c in CASES if c.data is not None], ids=lambda c: c.name)
def test_the_same_data_is_refused_at_load(case: BrokenCase) -> None:
    # Where a case breaks the data, the schema refuses it before any rule runs, naming the entry.
    assert case.data is not None
    with pytest.raises(PolicyError, match=r"opsgate_config\.\w+"):
        load_policy_data(POLICY_DIR, case.data)
