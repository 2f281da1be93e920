"""Shared fixtures: settings in a temporary state dir, built apps, and MCP clients of both wire generations."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from opsgate.config import Settings
from opsgate.contracts import Capability
from opsgate.server import App, build_app

REPO = Path(__file__).resolve().parents[1]
# The Loghub and NAB data live beside the clone (`../shared/datasets`), not in it. A test that reads them
# is marked `@pytest.mark.shared_data("loghub")`: it skips, saying why, when the data is absent (a fresh
# clone passes), and fails instead under OPSGATE_REQUIRE_SHARED_DATA=1 (set by `.ci/run`, so CI never
# silently skips). OPSGATE_SHARED_DATASETS points elsewhere.
DATASETS = Path(os.environ.get("OPSGATE_SHARED_DATASETS") or REPO.parent / "shared" / "datasets")
REQUIRE_SHARED_DATA = "OPSGATE_REQUIRE_SHARED_DATA"

pytest_plugins = ["tests.support.kube", "tests.support.postgres"]

# The two MCP wire generations clients use today: 2025-11-25 (initialize handshake, sessions) and
# 2026-07-28 (stateless requests). The SDK client speaks the first with mode="legacy".
WIRE_MODES = ["legacy", "2026-07-28"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "shared_data(name, ...): needs ../shared/datasets/<name> (skips when absent)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("shared_data"):
        for name in mark.args:
            path = DATASETS / str(name)
            if path.is_dir():
                continue
            reason = f"needs the shared dataset {name!r} at {path}, which is absent"
            if os.environ.get(REQUIRE_SHARED_DATA, "") not in ("", "0"):
                pytest.fail(f"{reason} ({REQUIRE_SHARED_DATA} is set, so it is required)", pytrace=False)
            pytest.skip(reason)


REQUIRE_SYSTEM_DEPS = "OPSGATE_REQUIRE_SYSTEM_DEPS"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Under OPSGATE_REQUIRE_SYSTEM_DEPS=1 (set by `.ci/run`), a test skipped because a system package or
    test-only tool is not installed (prometheus-alertmanager, kubectl, PostgreSQL, OpenSSH, real OPA) fails
    instead: CI installs them all, so such a skip means CI would silently test less."""
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or os.environ.get(REQUIRE_SYSTEM_DEPS, "") in ("", "0"):
        return
    reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if "not installed" in reason:
        report.outcome = "failed"
        report.longrepr = f"{reason} ({REQUIRE_SYSTEM_DEPS} is set, so it is required)"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state")


@pytest.fixture
def make_app(settings: Settings) -> Callable[..., App]:
    def make(names: Sequence[str] = ("runbooks",), capabilities: Sequence[Capability] = (), **kw: Any) -> App:
        return build_app(kw.pop("settings", settings), names, capabilities=capabilities, **kw)

    return make


@pytest.fixture(params=WIRE_MODES)
def wire_mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def app(make_app: Callable[..., App]) -> AsyncIterator[App]:
    from tests.support import testkit

    built = make_app(("runbooks",), capabilities=[testkit.build()])
    yield built
    await built.aclose()
