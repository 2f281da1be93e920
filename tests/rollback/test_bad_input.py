"""What bad input and a misbehaving API get: a clear error, an audit record, and no change.
And a revision that never becomes ready opens the circuit breaker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import kubernetes.client
from mcp import Client

from opsgate.sandbox.kube_api import DEPLOYMENTS, DeploymentSeed, Fault, KubeApiServer, seed_namespace

from .conftest import MakeApp, text

REF = {"namespace": "shop", "deployment": "checkout"}
REAL = {**REF, "dry_run": False, "reason": "latency after v7"}


@dataclass
class OnSecondMatch(Fault):
    """Fires from the second matching request on: here the real patch, after the dry run passed."""

    seen: int = field(default=0, init=False)

    def matches(self, verb: str, resource: str, namespace: str, name: str) -> bool:
        if not super().matches(verb, resource, namespace, name):
            return False
        self.seen += 1
        return self.seen > 1


def _template(kube_api: KubeApiServer, name: str = "checkout") -> Any:
    return kube_api.cluster.get(DEPLOYMENTS, "shop", name)["spec"]["template"]


async def _one(app: Any, mode: str, args: dict[str, Any]) -> Any:
    async with Client(app.server, mode=mode) as client:
        return await client.call_tool("rollback_deployment", args)


async def test_bad_input_is_a_clear_audited_error_and_changes_nothing(
    make_rollback_app: MakeApp, kube_api: KubeApiServer, wire_mode: str
) -> None:
    seed_namespace(kube_api.cluster, "shop", [DeploymentSeed("solo", revisions=1)])
    paused = DeploymentSeed("paused", revisions=2)
    seed_namespace(kube_api.cluster, "shop", [paused])
    with kube_api.api_client() as api:
        kubernetes.client.AppsV1Api(api).patch_namespaced_deployment("paused", "shop", {"spec": {"paused": True}})
    # autonomous: real writes run without approvals, so each failure is the backend's or the input's
    app = make_rollback_app(autonomy="autonomous", rollback={"request_timeout_s": 0.5})
    before = {name: _template(kube_api, name) for name in ("checkout", "solo", "paused")}
    cases: list[tuple[dict[str, Any], str, Any]] = [
        ({**REAL, "deployment": "nope"}, "not found", None),
        ({**REAL, "to_revision": 42}, "revision 42 of deployment 'checkout' is not in its history", None),
        ({**REAL, "deployment": "paused"}, "is paused", None),
        ({**REAL, "deployment": "solo"}, "no rollout history", None),
        (REAL, "forbidden by Kubernetes RBAC", Fault("patch", "deployments", status=403)),
        (REAL, "conflict", OnSecondMatch("patch", "deployments", status=409)),
        (REAL, "timed out", Fault("get", "deployments", delay_seconds=1.5)),
    ]
    for args, expected, fault in cases:
        if fault is not None:
            kube_api.cluster.faults.add(fault)
        result = await _one(app, wire_mode, args)
        if fault is not None:
            kube_api.cluster.faults.remove(fault)
        assert result.is_error, (args, result.structured_content)
        assert expected in text(result), text(result)
        assert (result.meta or {})["opsgate/outcome"] == "error"
    assert {name: _template(kube_api, name) for name in before} == before
    all_records = [r.record for r in app.gate.audit.records()]
    # a real write that got as far as the API left a durable "started" record first, closed by its outcome
    started = {r["call_id"] for r in all_records if r["outcome"] == "started"}
    records = [r for r in all_records if r["outcome"] != "started"]
    assert started <= {r["call_id"] for r in records}
    assert [r["outcome"] for r in records] == ["error"] * len(cases)
    assert all(r["tool"] == "rollback_deployment" and r["error"] for r in records)
    assert app.gate.audit.verify().ok


async def test_dry_run_reports_what_the_api_server_would_refuse(
    make_rollback_app: MakeApp, kube_api: KubeApiServer, wire_mode: str
) -> None:
    app = make_rollback_app()
    kube_api.cluster.faults.forbid("patch", "deployments")
    result = await _one(app, wire_mode, REF)
    assert not result.is_error
    assert result.structured_content["server_dry_run"]["ok"] is False
    assert "forbidden" in result.structured_content["server_dry_run"]["message"]
    assert result.structured_content["applied"] is False


async def test_a_revision_that_never_becomes_ready_opens_the_breaker(
    make_rollback_app: MakeApp, kube_api: KubeApiServer, wire_mode: str
) -> None:
    for revision in (6, 5):
        kube_api.cluster.faults.mark_image_bad(f"registry.example.com/shop/checkout:v{revision}")
    limits = {"breaker_failures": 2, "breaker_cooldown_s": 300}
    # write budgets are policy data: no interval between rollbacks of one target here
    budgets = {"opsgate_config": {"budgets": {"rollback_deployment": {"target_interval_s": 0}}}}
    app = make_rollback_app(autonomy="autonomous", limits=limits, policy={"data": budgets})
    async with Client(app.server, mode=wire_mode) as client:
        for revision in (6, 5):
            failed = await client.call_tool("rollback_deployment", {**REAL, "to_revision": revision})
            assert not failed.is_error, text(failed)
            out = failed.structured_content
            assert out["applied"] is True and out["failed"] is True
            assert out["rollout"]["state"] == "failed" and "progress deadline" in out["rollout"]["message"]
            assert "escalate" in out["next_step"]
        stopped = await client.call_tool("rollback_deployment", {**REAL, "to_revision": 4})
    assert stopped.is_error
    assert "circuit breaker open" in text(stopped) and "escalate to a human" in text(stopped)
    assert (stopped.meta or {})["opsgate/outcome"] == "rate_limited"
    assert _template(kube_api)["spec"]["containers"][0]["image"].endswith(":v5")
    outcomes = [r.record["outcome"] for r in app.gate.audit.records()]
    assert outcomes == ["started", "failed", "started", "failed", "rate_limited"]
