"""Fixtures for the rollback tests: an opsgate app serving `rollback` against the loopback Kubernetes API,
with the approval hook wired the way the server does by default."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from opsgate.approvals import Approvals
from opsgate.config import Settings
from opsgate.sandbox.kube_api import KubeApiServer
from opsgate.server import App, build_app

MakeApp = Callable[..., App]


def text(result: Any) -> str:
    """The first text block of a tool result (its summary or error message)."""
    block = result.content[0]
    return str(getattr(block, "text", ""))


def rollback_settings(state_dir: Path, kube_api: KubeApiServer, **overrides: Any) -> Settings:
    rollback = {"api_url": kube_api.url, "wait_s": 5.0, "poll_s": 0.05, "request_timeout_s": 2.0}
    rollback.update(overrides.pop("rollback", {}))
    return Settings(state_dir=state_dir, rollback=rollback, **overrides)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
async def make_rollback_app(state_dir: Path, kube_api: KubeApiServer) -> AsyncIterator[MakeApp]:
    built: list[tuple[App, Approvals]] = []

    def make(**overrides: Any) -> App:
        settings = rollback_settings(state_dir, kube_api, **overrides)
        approvals = Approvals.for_state_dir(settings.state_dir)
        app = build_app(settings, ["rollback"], approvals=approvals)
        built.append((app, approvals))
        return app

    yield make
    for app, approvals in built:
        await app.aclose()
        approvals.close()


@pytest.fixture
def rollback_app(make_rollback_app: MakeApp) -> App:
    return make_rollback_app()
