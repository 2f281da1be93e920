"""What a change replaced, for the benchmarks that compare with it: an opsgate package as it was at an
earlier commit, read with ``git show`` and imported under another name beside today's; or a benchmark
run in a process of another checkout (`in_tree`)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def package_at(commit: str, package: str, modules: Sequence[str], name: str) -> ModuleType | None:
    """``servers/opsgate/<package>`` (its ``modules``) at ``commit``, imported as module ``name`` (its
    absolute imports of itself rewritten to that name); None without git history."""
    target = Path(tempfile.mkdtemp(prefix="opsgate-baseline-")) / name
    target.mkdir()
    dotted = "opsgate." + package.replace("/", ".")
    try:
        for module in modules:
            source = subprocess.run(
                ["git", "-C", str(REPO), "show", f"{commit}:servers/opsgate/{package}/{module}.py"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            (target / f"{module}.py").write_text(source.replace(dotted, name))
    except (OSError, subprocess.CalledProcessError):
        return None
    sys.path.insert(0, str(target.parent))
    return importlib.import_module(name)


def in_tree(root: Path, script: Path, args: Sequence[str]) -> str:
    """The stdout of `script` run with another checkout's `servers/` and root first on the path (and
    OPSGATE_BENCH_ROOT naming it, for scripts that put the root on sys.path themselves)."""
    env = {**os.environ, "OPSGATE_BENCH_ROOT": str(root), "PYTHONPATH": f"{root / 'servers'}:{root}"}
    cmd = [sys.executable, str(script), *args]
    return subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
