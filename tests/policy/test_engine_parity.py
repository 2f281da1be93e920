"""The policy means the same on both engines, malformed input included (issue 10, "Policy engine trouble
means deny").

Many policy inputs are generated from the decision table (decision_cases.yaml) and the alert-silence base
of fail_closed_cases.yaml, with one to three fields altered to odd values: missing, null, wrong types
(target as a string, list or number; environment as a number, null or object; caller.roles as a string;
args not an object), malformed times, odd facts and approvals, strings with control and other
characters the engines print differently in a list. Each goes through the embedded engine
(regorus's VM, what the gate uses) and through real OPA's Go evaluator; the two decision documents must be
identical, and defined. OPA evaluates with strict builtin errors here: a builtin that errors (an operand
of the wrong type, a time that does not parse) is an error on OPA but an undefined value on regorus, so
the policy must never let a builtin error either.

The same holds for odd policy data (malformed freeze windows, roles, budgets and limits, as when data
reaches OPA without opsgate's schema check) and, directly, for the times the policy parses.

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
import regorus
import yaml

from opsgate.policy.embedded import EmbeddedEngine, load_policy_data, policy_modules
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
    -0.0,
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
    "target.environment": ["prod", "production", "staging", "*", {"name": "prod"}, ["prod"], "st\u0085ging"],
    "caller.roles": ["sre", ["sre", 1], [["sre"]], {"role": "sre"}, ["\u0001sre", "r\u00e9le", "\u2028", "\x7f"]],
    "caller.auth": ["local", "api_key", "oidc"],
    "caller.scopes": ["opsgate:write", ["opsgate:write"], [1, None], ["\u00a0", "\ufeffopsgate:read"]],
    "caller.subject": ["alice"],
    "context.autonomy": ["read-only", "advised", "approved", "autonomous", "\u001b[31mautonomous"],
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
    "approval.channel": ["ssh-signature", "oidc", "confirmation", "hmac", "oidc\u2028"],
    "approval.roles": ["sre", ["sre"], [1], ["\u0000", "dev\u0085"]],
    "approval.granted_by": ["alice", "agent@claude-code", ["alice"]],
    "approval.id": ["apr_1", 7, {"id": 1}, "apr_\u0007"],
    "tool": ["alert_silence", "metrics_query", "rollback_deployment", "logs\u2028query"],
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
COMPARED = (
    "allow",
    "rule",
    "reasons",
    "require_approval",
    "approvers",
    "approvals_needed",
    "alternative",
    "obligations",
)


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


def _differences(embedded: EmbeddedEngine, opa: Any, inputs: Iterator[tuple[Any, dict[str, Any]]]) -> list[str]:
    found = []
    for label, doc in inputs:
        try:
            ours: Any = embedded.evaluate(doc)
        except Exception as exc:
            ours = f"error: {exc}"
        try:
            theirs: Any = opa.decision(doc)
        except Exception as exc:
            theirs = f"error: {exc}"
        if ours is None or theirs is None or _compared(ours) != _compared(theirs):
            found.append(f"{label}:\n  embedded: {json.dumps(_compared(ours))[:400]}\n  real OPA: {str(theirs)[:400]}")
    return found


def odd_windows(rng: random.Random) -> list[Any]:
    """A freeze_windows list with one or two windows, some of their fields odd."""
    windows: list[Any] = []
    for _ in range(rng.choice((1, 2))):
        window: Any = {
            "start": "2026-11-20T00:00:00Z",
            "end": "2026-11-30T00:00:00Z",
            "environments": ["prod", "production"],
            "reason": "a freeze",
        }
        for _ in range(rng.choice((1, 2))):
            key = rng.choice(("start", "end", "environments", "reason", None))
            if key is None:
                window = rng.choice(ODD)
                break
            value = rng.choice(TIMES + ODD if key in ("start", "end") else [["*"], "prod", [1], ["staging"], *ODD])
            if value is MISSING:
                window.pop(key)
            else:
                window[key] = value
        if window is not MISSING:
            windows.append(window)
    return windows


# Policy data the schema would refuse (opsgate validates its data; OPA may be given a bundle it never saw).
ODD_DATA: dict[str, list[Any]] = {
    "approver_roles": [["sre", 1], "sre", [], [["sre"]], ["\u0001sre"]],
    "raw_query_roles": [["sre", None], "admin", ["r\u2028"]],
    "approval_channels": [{"production": "oidc"}, {"other": [1, "confirmation"]}, "oidc", {"production": ["\x7f"]}],
    "production_environments": ["prod", [1], None],
    "approvals_needed": ["1", None, 2.5],
    "max_points": ["11000", None, 2.5, 1e21],
    "max_items": [None, "200", 1e21],
    "max_items_by_tool": [{"logs_query": "5"}, [], {"logs_query": 12345678.9}],
    "default_autonomy": [None, 5, "autonomous"],
    "redact_patterns": [None, "x", [1]],
    "budgets": [
        {"default": {"target_interval_s": "600", "target_1h": 10, "global_1m": 5}},
        {"default": None},
        {"rollback_deployment": {"target_interval_s": 600.5, "target_1h": 2.5, "global_1m": 1e21}},
    ],
    "alert_silence_max_s": [{"production": "7200", "default": 14400}, None, {"production": 7200.5, "default": 1e21}],
}


def odd_data(rng: random.Random) -> dict[str, Any]:
    """Policy data with freeze windows or another entry made odd."""
    config: dict[str, Any] = {}
    if rng.random() < 0.5:
        config["freeze_windows"] = odd_windows(rng)
    for _ in range(rng.choice((0, 1, 2))):
        key = rng.choice(sorted(ODD_DATA))
        config[key] = rng.choice(ODD_DATA[key])
    if not config:
        config["freeze_windows"] = odd_windows(rng)
    return {"opsgate_config": config}


def test_engines_agree_on_odd_policy_data(real_opa: Any) -> None:
    """Malformed data (freeze windows, roles, budgets, limits) means the same on both engines."""
    from tests.policy.real_opa import RealOpa

    rng = random.Random(SEED)
    bases = base_inputs()
    differences: list[str] = []
    for _ in range(60):
        data = odd_data(rng)
        embedded = EmbeddedEngine(POLICY_DIR, data, validate_data=False)
        opa = RealOpa(POLICY_DIR, data=data, validate=False)
        try:
            docs = []
            for _ in range(10):
                doc = copy.deepcopy(rng.choice(bases))
                if rng.random() < 0.5:
                    alter(doc, "context.now", rng.choice(TIMES + ["2026-11-25T00:00:00Z"] * 4))
                if rng.random() < 0.3:
                    path = rng.choice(PATHS)
                    alter(doc, path, rng.choice(MEANINGFUL.get(path, []) + ODD))
                docs.append((f"data {data}, input {doc}", doc))
            differences += _differences(embedded, opa, iter(docs))
        finally:
            opa.close()
    assert not differences, f"{len(differences)} differ; first:\n" + "\n".join(differences[:5])


def time_strings(seed: int = SEED, count: int = 3000) -> list[str]:
    """Valid RFC 3339 times changed in a character or two (one-digit fields, a comma, a leap second,
    a +24:00 offset, ...), and the TIMES list."""
    rng = random.Random(seed)
    valid = [
        "2026-11-23T05:00:00Z",
        "2026-11-23T05:00:00.123Z",
        "2026-11-23T05:00:00+01:00",
        "2024-02-29T23:59:59.5-05:30",
    ]
    alphabet = "0123456789-:T.Z+ ,tz"
    found = list(TIMES)
    for _ in range(count):
        chars = list(rng.choice(valid))
        for _ in range(rng.choice((1, 1, 2))):
            i = rng.randrange(len(chars))
            operation = rng.random()
            if operation < 0.7:
                chars[i] = rng.choice(alphabet)
            elif operation < 0.85:
                del chars[i]
            else:
                chars.insert(i, rng.choice(alphabet))
        found.append("".join(chars))
    return found


def test_times_parse_alike(real_opa: Any) -> None:
    """`now_ns` for many near-valid times: the same instant on both engines, or undefined on both (OPA
    raising an error for a time it cannot parse counts as a difference)."""
    data = load_policy_data(POLICY_DIR)
    modules = policy_modules(POLICY_DIR)
    program = regorus.Program.compile_from_modules(json.dumps(data), modules, ["data.opsgate.now_ns"])
    vm = regorus.Rvm()
    vm.load_program(program)
    vm.set_data_json(json.dumps(data))
    differences = []
    parsed = 0
    for ts in time_strings():
        doc = {"context": {"now": ts}}
        vm.set_input_json(json.dumps(doc))
        raw = vm.execute_entry_point("data.opsgate.now_ns")
        ours = None if raw == '"<undefined>"' else json.loads(raw)
        try:
            theirs = real_opa.document("opsgate.now_ns", doc)
        except Exception as exc:
            theirs = f"error: {exc}"
        parsed += ours is not None
        if ours != theirs:
            differences.append(f"{ts!r}: embedded {ours}, real OPA {theirs}")
    assert not differences, f"{len(differences)} times differ:\n" + "\n".join(differences[:10])
    assert parsed > 300, "too few of the altered times are valid to show anything"
