"""Shared fixtures: settings in a temporary state dir, built apps, and MCP clients of both wire generations."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from opsgate.config import Settings
from opsgate.contracts import Capability
from opsgate.server import App, build_app

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"

pytest_plugins = ["tests.support.kube"]

# The two MCP wire generations clients use today: 2025-11-25 (initialize handshake, sessions) and
# 2026-07-28 (stateless requests). The SDK client speaks the first with mode="legacy".
WIRE_MODES = ["legacy", "2026-07-28"]


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
