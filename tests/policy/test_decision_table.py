"""The decision table through the embedded engine and through real OPA, and the pinned snapshot.

Regenerate the snapshot after an intended policy change with OPSGATE_UPDATE_SNAPSHOTS=1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsgate.policy.embedded import EmbeddedEngine
from tests.policy.cases import POLICY_DIR, DecisionCase, load_cases
from tests.policy.real_opa import RealOpa

CASES = load_cases()
SNAPSHOT = Path(__file__).with_name("decision_snapshot.json")


@pytest.fixture(scope="module")
def embedded() -> EmbeddedEngine:
    return EmbeddedEngine(POLICY_DIR)


@pytest.fixture(scope="module")
def real_opa() -> Iterator[RealOpa]:
    opa = RealOpa(POLICY_DIR)
    yield opa
    opa.close()


def test_table_is_big_and_names_are_unique() -> None:
    assert len(CASES) >= 25
    assert len({c.name for c in CASES}) == len(CASES)


def expected_view(decision: dict[str, Any]) -> dict[str, Any]:
    return {k: decision[k] for k in ("allow", "require_approval", "rule")}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_embedded_engine_matches_table(embedded: EmbeddedEngine, case: DecisionCase) -> None:
    decision = embedded.decide_sync(case.input).model_dump()
    assert expected_view(decision) == case.expect


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_real_opa_matches_table_and_embedded(embedded: EmbeddedEngine, real_opa: RealOpa, case: DecisionCase) -> None:
    opa_decision = real_opa.decision(case.input)
    assert expected_view(opa_decision) == case.expect
    assert opa_decision == embedded.evaluate(case.input)


def test_snapshot(embedded: EmbeddedEngine) -> None:
    current = {case.name: embedded.evaluate(case.input) for case in CASES}
    if os.environ.get("OPSGATE_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    pinned = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert current == pinned, "policy decisions changed; rerun with OPSGATE_UPDATE_SNAPSHOTS=1 if intended"
