"""The package's shape, enforced (DESIGN.md "Layout"): who may import whom.

Every import in `servers/opsgate` is read from the source (AST: module level, inside functions, under
TYPE_CHECKING, relative ones, and `importlib.import_module("opsgate...")` with a literal name) and
checked against these layers:

- a capability (`logs`, `metrics`, ...) imports only the core and itself: never another capability,
  the sandbox or the application that assembles them;
- the core (gate, contracts, audit, policy, config, caller, limits, approvals, state, ... : every
  module that is named nowhere else here) imports only the core;
- the sandbox imports the core, the application's `server` (its demo assembles one) and itself,
  never a capability: it reaches capabilities the way any backend does, through the assembly;
APPLICATION = frozenset({"server", "launch", "cli", "__main__", "evaluation", "composition"})
- `contracts` never imports `gate` (the gate imports contracts: no cycle); the package imports nothing
  from `tests` or a test framework, and ships no test-only module.

Triage is the one composite capability: it reads the others only through the source protocols it
declares in one place (`opsgate.triage.sources`), which the composition (`opsgate.composition`) wires
to the other capabilities; triage itself imports no other capability at all (`TRIAGE_MAY_IMPORT`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "servers" / "opsgate"

CAPABILITIES = frozenset({"logs", "metrics", "rollback", "runbooks", "workloads", "alerts", "triage"})
SANDBOX = "sandbox"
APPLICATION = frozenset({"server", "launch", "cli", "__main__", "evaluation", "composition"})
# What the sandbox may use of the application (the demo builds the same app `opsgate serve all` does).
SANDBOX_MAY_USE = frozenset({"opsgate.server"})
# The one place the composite (triage) may read other capabilities through: their service interfaces.
# A capability offers one by adding its module here (and keeping it free of MCP and backend details).
COMPOSITES = frozenset({"triage"})
SERVICE_INTERFACES = frozenset({"opsgate.interfaces"} | {f"opsgate.{c}.service" for c in CAPABILITIES})
# Triage's own allowance is narrower: the modules of other capabilities it may import. None: what it
# reads is declared in opsgate.triage.sources and wired in opsgate.composition.
TRIAGE_MAY_IMPORT: frozenset[str] = frozenset()

# Known violations being removed (issue 10: "metrics and rollback import the sandbox and the sandbox
# imports metrics"). The sandbox's owner deletes each entry as the import goes; an entry that no
# longer matches an import fails the test, so the list can only shrink.
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()

TEST_ONLY_MODULES = ("testkit", "conformance_fixtures", "accuracy")
TEST_FRAMEWORKS = frozenset({"tests", "pytest", "hypothesis", "_pytest"})


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name
    imported: str  # dotted module name (resolved; `from pkg import mod` names the module when it is one)
    line: int

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported} (line {self.line})"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = ("opsgate", *path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str, root: Path) -> bool:
    rel = Path(*dotted.split(".")[1:]) if "." in dotted else Path()
    return (root / rel).with_suffix(".py").is_file() or (root / rel / "__init__.py").is_file()


def imports_of(path: Path, root: Path = PACKAGE) -> Iterator[Import]:
    """Every import `path` makes, wherever it stands in the file."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(me, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                named_module = source.split(".")[0] == "opsgate" and _is_module(candidate, root)
                yield Import(me, candidate if named_module else source, node.lineno)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield Import(me, node.args[0].value, node.lineno)


def all_imports(root: Path = PACKAGE) -> list[Import]:
    return [imp for path in sorted(root.rglob("*.py")) for imp in imports_of(path, root)]


def layer(module: str) -> tuple[str, str]:
    """(layer, unit): unit is the capability's name for a capability, else the layer's name."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top in CAPABILITIES:
        return "capability", top
    if top == SANDBOX:
        return "sandbox", SANDBOX
    if top in APPLICATION:
        return "application", top
    return "core", "core"


def violation(imp: Import) -> str | None:
    """Why `imp` breaks a boundary, or None when it is allowed."""
    if imp.imported.split(".")[0] in TEST_FRAMEWORKS:
        return "the package imports test-only code"
    if imp.imported.split(".")[0] != "opsgate":
        return None
    (src_layer, src_unit), (dst_layer, dst_unit) = layer(imp.importer), layer(imp.imported)
    if imp.importer == "opsgate.contracts" and imp.imported == "opsgate.gate":
        return "contracts must not import gate (the gate imports contracts; a cycle otherwise)"
    if src_layer == "application":
        return None
    if dst_layer == "application" and not (src_layer == "sandbox" and imp.imported in SANDBOX_MAY_USE):
        return f"the {src_layer} imports the application ({imp.imported})"
    if src_layer == "core" and dst_layer != "core":
        return f"the core imports the {dst_layer} {dst_unit!r}"
    if src_layer == "capability" and dst_layer == "sandbox":
        return f"capability {src_unit!r} imports the sandbox"
    if src_layer == "capability" and dst_layer == "capability" and dst_unit != src_unit:
        if src_unit == "triage":
            return None if imp.imported in TRIAGE_MAY_IMPORT else f"triage imports capability {dst_unit!r}"
        if src_unit in COMPOSITES and imp.imported in SERVICE_INTERFACES:
            return None
        return f"capability {src_unit!r} imports capability {dst_unit!r}"
    if src_layer == "sandbox" and dst_layer == "capability":
        return f"the sandbox imports capability {dst_unit!r}"
    return None


def test_no_import_crosses_a_boundary() -> None:
    found = [(imp, why) for imp in all_imports() if (why := violation(imp)) is not None]
    unexpected = [f"{imp}: {why}" for imp, why in found if (imp.importer, imp.imported) not in KNOWN_VIOLATIONS]
    assert not unexpected, "imports across a boundary:\n" + "\n".join(unexpected)


def test_known_violations_still_exist_so_the_list_only_shrinks() -> None:
    present = {(imp.importer, imp.imported) for imp in all_imports() if violation(imp) is not None}
    stale = sorted(KNOWN_VIOLATIONS - present)
    assert not stale, f"fixed, so delete from KNOWN_VIOLATIONS: {stale}"


def test_no_test_only_module_ships_in_the_package() -> None:
    shipped = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.stem in TEST_ONLY_MODULES)
    assert not shipped, f"test-only code belongs under tests/support/: {shipped}"


# -- the checker itself, on a throwaway package: each rule catches what it should ---------------------


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "opsgate"
    for rel, text in {"__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(root).parents:
            (root / parent / "__init__.py").touch()
        path.write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # a capability importing another, at module level, in a function, relatively, by name
        ({"logs/a.py": "from opsgate.metrics import series\n", "metrics/series.py": ""}, "imports capability"),
        (
            {"logs/a.py": "def f():\n    import opsgate.rollback.server\n", "rollback/server.py": ""},
            "imports capability",
        ),
        ({"logs/a.py": "from ..metrics.series import x\n", "metrics/series.py": "x = 1\n"}, "imports capability"),
        ({"logs/a.py": "import importlib\nimportlib.import_module('opsgate.runbooks.store')\n"}, "imports capability"),
        ({"logs/a.py": "from opsgate.sandbox.world import W\n"}, "imports the sandbox"),
        (
            {"gate.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from opsgate.logs.server import x\n"},
            "the core imports the capability",
        ),
        ({"audit.py": "from opsgate import sandbox\n", "sandbox/__init__.py": ""}, "the core imports the sandbox"),
        ({"limits.py": "from opsgate.server import build_app\n"}, "imports the application"),
        ({"contracts.py": "if False:\n    from opsgate.gate import CallContext\n"}, "must not import gate"),
        ({"sandbox/demo.py": "from opsgate.metrics.server import build\n"}, "the sandbox imports capability"),
        ({"triage/rank.py": "from opsgate.logs.backends.files import FilesBackend\n"}, "imports capability"),
        ({"triage/rank.py": "from opsgate.logs.service import LogsService\n"}, "triage imports capability"),
        ({"redaction.py": "from tests.support import testkit\n"}, "test-only"),
    ],
)
def test_checker_catches(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    root = _package(tmp_path, files)
    problems = [why for imp in all_imports(root) if (why := violation(imp)) is not None]
    assert any(expected in why for why in problems), problems


@pytest.mark.parametrize(
    "files",
    [
        {"logs/a.py": "from opsgate.contracts import Page\nfrom opsgate.logs.records import R\nfrom . import b\n"},
        {"sandbox/demo.py": "from opsgate.server import build_app\nfrom opsgate.config import Settings\n"},
        {"cli.py": "from opsgate.sandbox import demo\nfrom opsgate.logs import server\n"},
        {"triage/rank.py": "from opsgate.triage.sources import Sources\nfrom opsgate.contracts import Page\n"},
        {"composition.py": "from opsgate.logs.service import LogsService\nfrom opsgate.triage.server import b\n"},
        {
            "gate.py": "from opsgate.context import CallContext\n",
            "contracts.py": "from opsgate.context import Target\n",
        },
    ],
)
def test_checker_allows(tmp_path: Path, files: dict[str, str]) -> None:
    root = _package(tmp_path, files)
    assert [str(imp) for imp in all_imports(root) if violation(imp) is not None] == []
