"""Write budgets have one source, the policy data (issue 10, "Access decisions outside the gate").

They used to be configured twice: `[limits]` in the TOML (writes per minute, one write per target per
interval) and `opsgate_config.budgets` in the policy data (per hour, per minute), each enforced on
its own. Now the policy data holds all of them; the policy denies a write over budget with its
reason, and the gate holds an allowed real write to the same numbers (`obligations.budget`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from opsgate.config import ConfigError, LimitSettings, PolicySettings, Settings, load_settings
from opsgate.limits import Limiter
from opsgate.policy.decision import WriteBudget
from opsgate.server import App
from tests.support import testkit

WRITE = {"namespace": "shop", "service": "checkout", "value": 1, "dry_run": False}


@pytest.mark.parametrize(
    ("key", "moved_to"), [("writes_per_minute", "global_1m"), ("per_target_write_interval_s", "target_interval_s")]
)
def test_budget_keys_in_the_toml_are_refused_saying_where_they_live(tmp_path: Path, key: str, moved_to: str) -> None:
    config = tmp_path / "opsgate.toml"
    config.write_text(f"[limits]\n{key} = 5\n")
    with pytest.raises(ConfigError, match=rf"limits\.{key} moved to the policy data: .*budgets\.<tool>\.{moved_to}"):
        load_settings(config)


def _text(result: Any) -> str:
    return str(result.content[0].text)


async def test_the_policy_data_budget_is_the_one_the_gate_enforces(
    make_app: Callable[..., App], settings: Settings
) -> None:
    settings.autonomy = "autonomous"
    budget = {"target_interval_s": 0, "target_1h": 2, "global_1m": 5}
    settings.policy = PolicySettings(data={"opsgate_config": {"budgets": {"default": budget}}})
    kit = testkit.build()
    app = make_app((), capabilities=[kit])
    async with Client(app.server) as client:
        results = [await client.call_tool("testkit_write", {**WRITE, "value": v}) for v in (1, 2, 3)]
        other = await client.call_tool("testkit_write", {**WRITE, "service": "cart"})
    records = [r.record for r in app.gate.audit.records() if r.record["outcome"] == "ok"]
    await app.aclose()
    assert [r.is_error for r in results] == [False, False, True], [_text(r) for r in results]
    assert "(rule write.budget.target_1h)" in _text(results[2]) and "(budget 2)" in _text(results[2])
    assert not other.is_error  # a budget per target
    assert [e["value"] for e in kit.ledger.executed] == [1, 2, 1]  # type: ignore[attr-defined]
    assert records[0]["decision"]["obligations"]["budget"] == budget


async def test_a_real_write_allowed_without_a_budget_is_denied(
    make_app: Callable[..., App], settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    decision = (
        '{"allow": true, "reasons": ["anything goes"], "require_approval": false, "approvers": [], '
        '"approvals_needed": 0, "alternative": null, "rule": "allow.all", "obligations": {"max_items": 10, '
        '"redact": true, "redact_patterns": [], "dry_run_only": false, "confirmation_ok": false}}'
    )
    (folder / "allow_all.rego").write_text(f"package opsgate\n\nimport rego.v1\n\ndecision := {decision}\n")
    settings.policy = PolicySettings(dir=folder)
    kit = testkit.build()
    app = make_app((), capabilities=[kit])
    async with Client(app.server) as client:
        dry = await client.call_tool("testkit_write", {**WRITE, "dry_run": True})
        real = await client.call_tool("testkit_write", WRITE)
    outcomes = [r.record["outcome"] for r in app.gate.audit.records()]
    await app.aclose()
    assert not dry.is_error
    assert real.is_error and "without a write budget" in _text(real)
    assert kit.ledger.executed == [{"tool": "testkit_write", "value": 1, "dry_run": True}]  # type: ignore[attr-defined]
    assert outcomes == ["ok", "denied"]


def test_limiter_holds_real_writes_to_the_budget_it_is_given() -> None:
    now = [1000.0]
    limiter = Limiter(LimitSettings(), clock=lambda: now[0])
    budget = WriteBudget(target_interval_s=60, target_1h=2, global_1m=3)

    def write(target: str) -> str | None:
        reservation = limiter.reserve("t", target, budget)
        if reservation.refused is None:
            limiter.settle(reservation, applied=True)
        return reservation.refused

    assert limiter.recent("t", "prod/shop/a") == {"target_1h": 0, "global_1m": 0, "target_last_s": None}
    assert write("prod/shop/a") is None
    now[0] += 10
    assert "every 60s (including writes still running); next allowed in 50s" in (write("prod/shop/a") or "")
    assert limiter.recent("t", "prod/shop/a") == {"target_1h": 1, "global_1m": 1, "target_last_s": 10.0}
    now[0] += 60
    assert write("prod/shop/a") is None
    now[0] += 61
    assert "at most 2 t per prod/shop/a per hour" in (write("prod/shop/a") or "")
    for target in ("prod/shop/b", "prod/shop/c", "prod/shop/d"):
        assert write(target) is None
    assert "at most 3 writes per minute" in (write("prod/shop/e") or "")
