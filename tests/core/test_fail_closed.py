"""Policy engine trouble means deny: nothing executes when the engine is down, slow or answers garbage.

Uses real engines only: the OPA engine against a loopback OPA Data-API stand-in that misbehaves on
purpose, the OPA engine against a closed port, and the embedded engine over policies that are broken.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mcp import Client

from opsgate.config import PolicySettings, Settings
from opsgate.policy.decision import PolicyError
from opsgate.policy.loader import make_engine
from opsgate.server import App
from tests.support import testkit
from tests.support.loopback import free_port

from ..policy.opa_data_api_server import ServerBehaviour, serve

POLICIES = Path(__file__).resolve().parents[2] / "policies"


async def _echo_is_refused(app: App, mode: str, expected: str) -> None:
    kit = next(c for c in app.capabilities if c.name == "testkit")
    async with Client(app.server, mode=mode) as client:
        result = await client.call_tool("testkit_echo", {"text": "hello"})
        noargs = await client.call_tool("testkit_noargs", {})
    for r in (result, noargs):
        assert r.is_error
        assert "fail closed" in r.content[0].text and expected in r.content[0].text, r.content[0].text
    assert kit.ledger.executed == []  # type: ignore[attr-defined]
    records = [r.record for r in app.gate.audit.records()]
    assert [r["outcome"] for r in records] == ["denied", "denied"]
    assert all(r["decision"]["allow"] is False and r["decision"]["error"] for r in records)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("garbage", "policy engine failed"),
        ("undefined", "undefined"),
        ("missing_allow", "allow"),
        ("allow_string", "allow"),
        ("error500", "policy engine failed"),
        ("slow", "timed out"),
    ],
)
async def test_opa_engine_misbehaving_means_deny(
    make_app: Callable[..., App], settings: Settings, mode: str, expected: str
) -> None:
    settings.policy = PolicySettings(engine="opa", timeout_s=0.5, retries=1)
    with serve(POLICIES, ServerBehaviour(mode=mode, delay_s=2.0)) as (url, _):
        engine = make_engine("opa", url=url, timeout_s=5, retries=1)
        app = make_app((), capabilities=[testkit.build()], engine=engine)
        await _echo_is_refused(app, "2026-07-28", expected)
        await app.aclose()


async def test_stopped_opa_server_means_deny(make_app: Callable[..., App], wire_mode: str) -> None:
    engine = make_engine("opa", url=f"http://127.0.0.1:{free_port()}", timeout_s=0.5, retries=1)
    app = make_app((), capabilities=[testkit.build()], engine=engine)
    await _echo_is_refused(app, wire_mode, "policy engine failed")
    await app.aclose()


def _policy_dir(tmp_path: Path, rego: str) -> Path:
    folder = tmp_path / "policies" / "opsgate"
    folder.mkdir(parents=True)
    (folder / "decision.rego").write_text(rego)
    return folder.parent


@pytest.mark.parametrize(
    ("rego", "expected"),
    [
        ('package opsgate\n\ndecision := {"allow": "yes"}\n', "allow"),
        ("package opsgate\n\ndecision := 42\n", "malformed"),
        ('package opsgate\n\ndecision := {"allow": true} if input.tool == "never"\n', "undefined"),
    ],
)
async def test_embedded_policy_with_a_bad_decision_means_deny(
    make_app: Callable[..., App], tmp_path: Path, wire_mode: str, rego: str, expected: str
) -> None:
    engine = make_engine("embedded", policy_dir=_policy_dir(tmp_path, rego))
    app = make_app((), capabilities=[testkit.build()], engine=engine)
    await _echo_is_refused(app, wire_mode, expected)
    await app.aclose()


@pytest.mark.parametrize(
    ("rego", "expected"),
    [("package opsgate\n\ndecision := {\n", "decision.rego"), ("package opsgate\n\nother := true\n", "rule")],
)
def test_policy_that_cannot_decide_refuses_to_load(tmp_path: Path, rego: str, expected: str) -> None:
    with pytest.raises(PolicyError) as err:
        make_engine("embedded", policy_dir=_policy_dir(tmp_path, rego))
    assert expected in str(err.value)
