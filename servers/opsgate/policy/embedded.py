"""The embedded policy engine: `data.opsgate.decision` evaluated in process by regorus.

regorus (a Rust Rego implementation; PyPI build `gordon-to-regorus`, import name `regorus`) offers two
evaluators. Decisions run on its compiled VM (`Program` + `Rvm`): about 4x faster than its tree-walking
interpreter, and it stops any evaluation after a fixed instruction budget, so a decision cannot hang.
That bound is why `decide` runs inline on the event loop's thread: both evaluators hold the GIL
while they run, so a worker thread would not keep the loop responsive during a runaway evaluation
anyway, and the hand-off to it would cost more than a whole decision (see docs/rego-engines.md).

regorus objects are pinned to the thread that created them (a use from another thread panics), so
each thread gets its own VM, built on first use from the same compiled sources.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import regorus
import yaml
from pydantic_core import to_json

from opsgate.policy.data_schema import validate_policy_data
from opsgate.policy.decision import Decision, PolicyError, parse_decision, parse_decision_json
from opsgate.policy.engine import DECISION_PATH

ENTRY_POINT = "data." + DECISION_PATH.replace("/", ".")
DATA_FILE_NAMES = ("data.json", "data.yaml", "data.yml")
_RVM_UNDEFINED = '"<undefined>"'
_LOCATION = re.compile(r"-->\s*(?P<file>[^\n]+?):(?P<line>\d+):(?P<col>\d+)")


def policy_modules(policy_dir: Path) -> list[tuple[str, str]]:
    """Every `*.rego` under `policy_dir` except unit tests, as (relative path, source), sorted."""
    if not policy_dir.is_dir():
        raise PolicyError(f"policy directory {policy_dir} does not exist")
    modules = [
        (path.relative_to(policy_dir).as_posix(), path.read_text(encoding="utf-8"))
        for path in sorted(policy_dir.rglob("*.rego"))
        if not path.name.endswith("_test.rego")
    ]
    if not modules:
        raise PolicyError(f"policy directory {policy_dir} holds no .rego policy files")
    return modules


def policy_test_modules(policy_dir: Path) -> list[tuple[str, str]]:
    """Every `*_test.rego` under `policy_dir`, as (relative path, source), sorted."""
    return [
        (path.relative_to(policy_dir).as_posix(), path.read_text(encoding="utf-8"))
        for path in sorted(policy_dir.rglob("*_test.rego"))
    ]


def load_policy_data(
    policy_dir: Path, extra: Mapping[str, Any] | None = None, *, validate: bool = True
) -> dict[str, Any]:
    """`policy_dir/data.json` (or .yaml/.yml), deep-merged with `extra` (extra wins).

    The merged document is checked against the published schema (`opsgate.policy.data_schema`): data
    the rules cannot read raises PolicyError naming the entry. `validate=False` exists only for the
    tests that prove the Rego rules deny on bad data by themselves.
    """
    base: dict[str, Any] = {}
    source = f"in {policy_dir} (no data.json)"
    for name in DATA_FILE_NAMES:
        path = policy_dir / name
        if path.is_file():
            base = _read_data_file(path)
            source = str(path)
            break
    merged = _deep_merge(base, dict(extra or {}))
    if validate and ("opsgate_config" in merged or _reads_opsgate_config(policy_dir)):
        validate_policy_data(merged, source + (" merged with [policy.data]" if extra else ""))
    return merged


def _reads_opsgate_config(policy_dir: Path) -> bool:
    """Whether any policy module reads `data.opsgate_config` (a folder of other rules needs no data)."""
    return any("data.opsgate_config" in source for _, source in policy_modules(policy_dir))


def policy_revision(modules: list[tuple[str, str]], data: Mapping[str, Any]) -> str:
    """Short sha256 over the policy files (names and text) and the canonical data document."""
    digest = hashlib.sha256()
    for name, source in modules:
        digest.update(name.encode() + b"\0" + source.encode() + b"\0")
    digest.update(json.dumps(data, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()[:12]


def rego_error(exc: BaseException, what: str) -> PolicyError:
    """A PolicyError from a regorus exception: the `file:line:col` and message, no Rust backtrace."""
    text = str(exc).split("Stack backtrace:")[0].strip()
    message = (
        next(
            (line.strip() for line in text.splitlines() if line.strip().startswith("error:")),
            text.splitlines()[-1] if text else type(exc).__name__,
        )
        .removeprefix("error:")
        .strip()
    )
    where = _LOCATION.search(text)
    if where:
        return PolicyError(f"{what} at {where['file']}:{where['line']}:{where['col']}: {message}")
    return PolicyError(f"{what}: {message}")


def new_interpreter(modules: list[tuple[str, str]], data: Mapping[str, Any]) -> regorus.Engine:
    """A regorus interpreter with the modules and data loaded; a bad module raises PolicyError."""
    engine = regorus.Engine()
    for name, source in modules:
        try:
            engine.add_policy(name, source)
        except Exception as exc:
            raise rego_error(exc, f"Rego error in {name}") from None
    engine.add_data(dict(data))
    return engine


class EmbeddedEngine:
    """Evaluates `data.opsgate.decision` in process (see the module docstring for the threading)."""

    name = "embedded"
    # Evaluated inline on the caller's thread under the VM's instruction limit (see module docstring);
    # the gate does not wrap it in a timer that could never fire.
    bounded_inline = True

    def __init__(self, policy_dir: Path, data: dict[str, Any] | None = None, *, validate_data: bool = True) -> None:
        self.policy_dir = Path(policy_dir)
        self._modules = policy_modules(self.policy_dir)
        self._data = load_policy_data(self.policy_dir, data, validate=validate_data)
        self._data_json = json.dumps(self._data)
        self._revision = policy_revision(self._modules, self._data)
        # The interpreter reports parse and compile errors with their file and line; the VM is compiled
        # only from sources that passed it.
        new_interpreter(self._modules, self._data)
        self._local = threading.local()
        self._vm()

    @property
    def revision(self) -> str:
        return self._revision

    async def decide(self, policy_input: dict[str, Any]) -> Decision:
        return self.decide_sync(policy_input)

    def decide_sync(self, policy_input: Mapping[str, Any]) -> Decision:
        """One decision, on the calling thread."""
        raw = self._execute(policy_input)
        return parse_decision(None) if raw == _RVM_UNDEFINED else parse_decision_json(raw)

    def evaluate(self, policy_input: Mapping[str, Any]) -> Any:
        """The raw `data.opsgate.decision` value (None when undefined)."""
        raw = self._execute(policy_input)
        return None if raw == _RVM_UNDEFINED else json.loads(raw)

    def _execute(self, policy_input: Mapping[str, Any]) -> str:
        """The VM's JSON text of `data.opsgate.decision` (`_RVM_UNDEFINED` when undefined)."""
        try:
            # pydantic's serializer: the same JSON as json.dumps (NaN and Infinity included, which the
            # VM then refuses), in a quarter of the time.
            input_json = to_json(policy_input, inf_nan_mode="constants").decode()
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"policy input is not JSON-serialisable: {exc}") from None
        vm = self._vm()
        try:
            vm.set_input_json(input_json)
            raw: str = vm.execute_entry_point(ENTRY_POINT)
        except Exception as exc:
            raise rego_error(exc, "policy evaluation failed") from None
        return raw

    async def aclose(self) -> None:
        self._local = threading.local()

    def _vm(self) -> regorus.Rvm:
        vm: regorus.Rvm | None = getattr(self._local, "vm", None)
        if vm is None:
            try:
                program = regorus.Program.compile_from_modules(self._data_json, self._modules, [ENTRY_POINT])
                vm = regorus.Rvm()
                vm.load_program(program)
                vm.set_data_json(self._data_json)
            except Exception as exc:
                raise rego_error(exc, "Rego policy failed to compile") from None
            self._local.vm = vm
        return vm


def _read_data_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise PolicyError(f"policy data file {path} is unreadable: {exc}") from None
    if not isinstance(loaded, dict):
        raise PolicyError(f"policy data file {path} must hold an object at the top level")
    return loaded


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
