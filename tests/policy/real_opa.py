"""Real OPA (its Go engine, in process through `opa-golib-python-bindings`) for cross-checking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opa_bindings import OpaEngine, OpaUndefinedError

from opsgate.policy.embedded import load_policy_data, policy_modules, policy_test_modules


class RealOpa:
    """OPA's own evaluator loaded with the same policy files and data as the embedded engine."""

    def __init__(
        self, policy_dir: Path, with_tests: bool = False, data: dict[str, Any] | None = None, *, validate: bool = True
    ) -> None:
        """`data` is merged over the folder's data file; `validate=False` loads data that fails the schema."""
        self._engine = OpaEngine()
        modules = policy_modules(policy_dir) + (policy_test_modules(policy_dir) if with_tests else [])
        for name, source in modules:
            self._engine.add_policy(name, source)
        self._engine.add_data(load_policy_data(policy_dir, data, validate=validate))

    def document(self, path: str, policy_input: Any = None) -> Any:
        """`data.<path>` (dotted), or None when undefined."""
        try:
            return self._engine.eval_document(path, policy_input)
        except OpaUndefinedError:
            return None

    def decision(self, policy_input: dict[str, Any]) -> Any:
        return self.document("opsgate.decision", policy_input)

    def close(self) -> None:
        self._engine.close()
