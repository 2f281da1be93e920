"""Fixtures for the rollback tests: an opsgate app serving `rollback` against the loopback Kubernetes API,
with the approval hook wired the way the server does by default."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from opsgate.approvals import Approvals
from opsgate.config import ApprovalSettings, Settings
from opsgate.sandbox.kube_api import KubeApiServer
from opsgate.server import App, build_app
from tests.support.approvers import ApproverKey, approver, cli_approve, write_approvers

MakeApp = Callable[..., App]


def text(result: Any) -> str:
    """The first text block of a tool result (its summary or error message)."""
    block = result.content[0]
    return str(getattr(block, "text", ""))


def rollback_settings(state_dir: Path, kube_api: KubeApiServer, **overrides: Any) -> Settings:
    rollback = {"api_url": kube_api.url, "wait_s": 5.0, "poll_s": 0.05, "request_timeout_s": 2.0}
    rollback.update(overrides.pop("rollback", {}))
    approvals = ApprovalSettings(approvers_file=state_dir.parent / "policy" / "approvers.yaml")
    return Settings(state_dir=state_dir, rollback=rollback, approvals=approvals, **overrides)


@pytest.fixture
def alice(tmp_path: Path) -> ApproverKey:
    """An approver with role sre, listed in the approvers file the rollback apps use."""
    key = approver(tmp_path / "humans", "alice@example.com", ["sre"])
    write_approvers(tmp_path / "policy" / "approvers.yaml", [key])
    return key


def approve(state_dir: Path, approval_id: str, who: ApproverKey) -> int:
    """The human step: alice signs the approval with her own key."""
    return cli_approve(state_dir, state_dir.parent / "policy" / "approvers.yaml", approval_id, who.key)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
async def make_rollback_app(state_dir: Path, kube_api: KubeApiServer) -> AsyncIterator[MakeApp]:
    built: list[tuple[App, Approvals]] = []

    def make(**overrides: Any) -> App:
        settings = rollback_settings(state_dir, kube_api, **overrides)
        approvals = Approvals.from_settings(settings)
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
