"""Run the policies' Rego unit tests (`*_test.rego`, rules named `test_*`) and one-off evaluations.

Behind `opsgate policy test` and `opsgate policy eval --input FILE`. Unit tests run on regorus's
interpreter, which supports `with` (the tests' way to swap input and data); a test passes when its
rule is `true`, as with `opa test`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsgate.policy.decision import PolicyError
from opsgate.policy.embedded import (
    EmbeddedEngine,
    load_policy_data,
    new_interpreter,
    policy_modules,
    policy_test_modules,
    rego_error,
)

_PACKAGE = re.compile(r"^package\s+([\w.]+)", re.MULTILINE)
_TEST_RULE = re.compile(r"^(test_\w+)\b", re.MULTILINE)


@dataclass(frozen=True)
class PolicyTestResult:
    """One `test_*` rule's outcome."""

    file: str
    package: str
    name: str
    passed: bool
    duration_us: float
    error: str | None = None

    @property
    def qualified_name(self) -> str:
        return f"data.{self.package}.{self.name}"


@dataclass(frozen=True)
class PolicyTestReport:
    results: list[PolicyTestResult]

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.passed)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    @property
    def ok(self) -> bool:
        return bool(self.results) and self.failed == 0

    def summary(self) -> str:
        return f"{self.passed} passed, {self.failed} failed"


def discover_tests(source: str) -> tuple[str, list[str]]:
    """The package of a test module and its `test_*` rule names, in file order, without repeats."""
    package = _PACKAGE.search(source)
    if package is None:
        raise PolicyError("test module has no package declaration")
    names = list(dict.fromkeys(_TEST_RULE.findall(source)))
    return package.group(1), names


def run_policy_tests(policy_dir: Path, data: dict[str, Any] | None = None) -> PolicyTestReport:
    """Run every `test_*` rule of every `*_test.rego` under `policy_dir` against its policies."""
    policy_dir = Path(policy_dir)
    modules = policy_modules(policy_dir)
    tests = policy_test_modules(policy_dir)
    engine = new_interpreter(modules + tests, load_policy_data(policy_dir, data))
    engine.set_input({})
    results: list[PolicyTestResult] = []
    for file, source in tests:
        package, names = discover_tests(source)
        for name in names:
            started = time.perf_counter()
            error: str | None = None
            try:
                passed = engine.eval_rule(f"data.{package}.{name}") is True
            except Exception as exc:
                passed = False
                error = str(rego_error(exc, "evaluation error"))
            elapsed = (time.perf_counter() - started) * 1e6
            results.append(PolicyTestResult(file, package, name, passed, elapsed, error))
    return PolicyTestReport(results)


def eval_decision(policy_dir: Path, input_doc: dict[str, Any], data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The raw `data.opsgate.decision` for one input (raises PolicyError when it is undefined)."""
    raw = EmbeddedEngine(Path(policy_dir), data).evaluate(input_doc)
    if not isinstance(raw, dict) or not raw:
        raise PolicyError(f"data.opsgate.decision is undefined or not an object for this input: {raw!r}")
    return raw
