"""The policy means the same on both engines, malformed input included (issue 10, "Policy engine trouble
means deny").

Many policy inputs are generated from the decision table (decision_cases.yaml) and the alert-silence base
of fail_closed_cases.yaml, with one to three fields altered to odd values: missing, null, wrong types
(target as a string, list or number; environment as a number, null or object; caller.roles as a string;
args not an object), malformed times, odd facts and approvals. Each goes through the embedded engine
(regorus's VM, what the gate uses) and through real OPA's Go evaluator; the two decision documents must be
identical, and defined. OPA evaluates with strict builtin errors here: a builtin that errors (an operand
of the wrong type, a time that does not parse) is an error on OPA but an undefined value on regorus, so
the policy must never let a builtin error either.

The inputs come from a fixed seed, so every run checks the same ones.
"""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsgate.policy.embedded import EmbeddedEngine
from tests.policy.cases import POLICY_DIR, load_cases

SEED = 20261130
COUNT = 2500
MISSING = object()  # the field is removed

# Odd values any field may get.
ODD: list[Any] = [
    MISSING,
    None,
    "",
    "x",
    0,
    1,
    -1,
    2.5,
    1e21,
    12345678.9,
    True,
    False,
    [],
    ["sre"],
    {},
    {"a": 1},
]
TIMES = [
    "2026-11-23",
    "2026-11-23T05:00:00",
    "2026-11-23T05:00:00+01:00",
    "2026-11-23T05:00:00.123Z",
    "2026-12-25T00:00:00Z",  # inside the shipped year-end freeze
    "2026-11-23t05:00:00z",
    "2026-11-23T5:00:00+01:00",
    "2026-11-23T23:59:60Z",
    "2026-11-23T05:00:00+24:00",
    "2026-11-23T05:00:00+01:60",
    "2026-02-29T05:00:00Z",
    "2028-02-29T05:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-11-31T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2026-11-23T05:00:00Zjunk",
    "2026-11-23T05:00:00.Z",
    "2026-11-23 05:00:00Z",
]
# Values that mean something to the policy, for the fields that read them.
MEANINGFUL: dict[str, list[Any]] = {
    "target.environment": ["prod", "production", "staging", "*", {"name": "prod"}, ["prod"]],
    "caller.roles": ["sre", ["sre", 1], [["sre"]], {"role": "sre"}],
    "caller.auth": ["local", "api_key", "oidc"],
    "caller.scopes": ["opsgate:write", ["opsgate:write"], [1, None]],
    "caller.subject": ["alice"],
    "context.autonomy": ["read-only", "advised", "approved", "autonomous"],
    "context.write_scope": ["opsgate:write"],
    "context.now": TIMES,
    "context.recent.TOOL.target_1h": [3, 2.5, 3.0, 10],
    "context.recent.TOOL.global_1m": [5, 4.5],
    "context.recent.TOOL.target_last_s": [12.5, 599.5, 600, 1e21],
    "args.dry_run": ["true", 1],
    "args.raw_query": ["  ", "up", 5],
    "facts.estimated_points": [11000, 11000.5, 40000, 1e21, "many"],
    "facts.duration_s": [3600, 7200.5, 99999, 1e21, "1h"],
    "facts.matches_everything": ["false", 0],
    "approval": [
        {"id": "apr_1", "granted_by": "alice", "roles": ["sre"], "kind": "grant", "channel": "ssh-signature"},
        {"id": "apr_2", "granted_by": "bob", "roles": ["sre"], "kind": "confirmation", "channel": "confirmation"},
        "apr_1",
    ],
    "approval.kind": ["grant", "confirmation", "revoke"],
    "approval.channel": ["ssh-signature", "oidc", "confirmation", "hmac"],
    "approval.roles": ["sre", ["sre"], [1]],
    "approval.granted_by": ["alice", "agent@claude-code", ["alice"]],
    "approval.id": ["apr_1", 7, {"id": 1}],
    "tool": ["alert_silence", "metrics_query", "rollback_deployment"],
    "scope": ["read", "write", "admin"],
}
PATHS = [
    "target",
    "target.environment",
    "caller",
    "caller.roles",
    "caller.authenticated",
    "caller.subject",
    "caller.auth",
    "caller.scopes",
    "args",
    "args.dry_run",
    "args.raw_query",
    "context",
    "context.now",
    "context.autonomy",
    "context.recent",
    "context.recent.TOOL",
    "context.recent.TOOL.target_1h",
    "context.recent.TOOL.global_1m",
    "context.recent.TOOL.target_last_s",
    "context.write_scope",
    "facts",
    "facts.estimated_points",
    "facts.duration_s",
    "facts.matches_everything",
    "approval",
    "approval.kind",
    "approval.channel",
    "approval.roles",
    "approval.granted_by",
    "approval.id",
    "tool",
    "scope",
]
COMPARED = ("allow", "rule", "reasons", "require_approval", "approvers", "approvals_needed", "alternative", "obligations")


def base_inputs() -> list[dict[str, Any]]:
    silence = yaml.safe_load(Path(__file__).with_name("fail_closed_cases.yaml").read_text(encoding="utf-8"))
    return [case.input for case in load_cases()] + [silence["bases"]["silence_write"]]


def alter(doc: dict[str, Any], path: str, value: Any) -> None:
    """Sets `path` (dotted; TOOL is the input's tool) to `value`, making objects on the way."""
    keys = path.replace("TOOL", str(doc.get("tool"))).split(".")
    node: Any = doc
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if value is MISSING:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = copy.deepcopy(value)


def generate(seed: int = SEED, count: int = COUNT) -> Iterator[tuple[list[tuple[str, Any]], dict[str, Any]]]:
    """`count` altered inputs, each with the list of (path, value) alterations made."""
    rng = random.Random(seed)
    bases = base_inputs()
    for _ in range(count):
        doc = copy.deepcopy(rng.choice(bases))
        alterations = []
        for _ in range(rng.choice((1, 1, 2, 3))):
            path = rng.choice(PATHS)
            pool = MEANINGFUL.get(path, []) + ODD if rng.random() < 0.5 else ODD
            value = rng.choice(pool)
            alter(doc, path, value)
            alterations.append((path, "<missing>" if value is MISSING else value))
        yield alterations, doc


def _compared(decision: Any) -> Any:
    return {k: decision.get(k) for k in COMPARED} if isinstance(decision, dict) else decision


@pytest.fixture(scope="module")
def real_opa() -> Iterator[Any]:
    pytest.importorskip("opa_bindings", reason="real OPA bindings (opa-golib-python-bindings) not installed")
    from tests.policy.real_opa import RealOpa

    opa = RealOpa(POLICY_DIR)
    yield opa
    opa.close()


def test_generated_inputs_are_odd_and_many() -> None:
    inputs = list(generate())
    assert len(inputs) == COUNT
    assert list(generate(count=50)) == inputs[:50], "not deterministic"
    altered = Counter(path for alterations, _ in inputs for path, _ in alterations)
    assert set(altered) == set(PATHS)


def test_engines_agree_on_altered_inputs(real_opa: Any) -> None:
    embedded = EmbeddedEngine(POLICY_DIR)
    mismatches: list[str] = []
    kinds: Counter[tuple[Any, Any]] = Counter()
    for alterations, doc in generate():
        try:
            ours: Any = embedded.evaluate(doc)
        except Exception as exc:  # a PolicyError: the gate would deny, but OPA must say the same
            ours = f"error: {exc}"
        try:
            theirs: Any = real_opa.decision(doc)
        except Exception as exc:  # OPA's eval_error (a builtin that errored under strict builtin errors)
            theirs = f"error: {exc}"
        if ours is None or theirs is None or _compared(ours) != _compared(theirs):
            kind = tuple(d.get("rule") if isinstance(d, dict) else str(d)[:40] for d in (ours, theirs))
            kinds[kind] += 1
            if kinds[kind] == 1:
                mismatches.append(
                    f"{alterations}:\n  embedded: {json.dumps(_compared(ours))[:600]}\n"
                    f"  real OPA: {json.dumps(_compared(theirs))[:600]}"
                )
    summary = ", ".join(f"{n} x {k[0]} / {k[1]}" for k, n in kinds.most_common())
    assert not mismatches, f"{sum(kinds.values())} of {COUNT} inputs differ ({summary}); first of each kind:\n" + (
        "\n".join(mismatches)
    )
