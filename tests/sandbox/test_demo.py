"""`opsgate demo` end to end, and the sandbox world it runs on.

The demo test runs the real command (what `make demo` runs) in a subprocess and then reads the audit
trail and approvals it left behind; the world tests check that the cluster, the logs and the metrics
timeline tell one story (and that the metrics recover only because the Deployment was rolled back).
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np

from opsgate.approvals import SqliteApprovalStore
from opsgate.audit import AuditLog
from opsgate.sandbox.kube_api import LogLine, PodRef
from opsgate.sandbox.series import SandboxSeries, SandboxTimeline
from opsgate.sandbox.world import (
    BAD_REVISION,
    GOOD_REVISION,
    FastForwardClock,
    SandboxWorld,
    TimelineFollower,
    pod_log_lines,
)


def test_opsgate_demo_ends_recovered_and_leaves_a_verifiable_audit_trail(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "opsgate", "demo", "--state-dir", str(state), "--no-color"],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, f"demo failed:\n{out}\n{done.stderr}"
    assert "RECOVERED" in out and "NOT RECOVERED" not in out
    steps = [
        "runbook_search(",
        "metrics_anomalies(",
        "changes_recent(",
        "logs_patterns(",
        "rollback_deployment(",
        "needs approval [write.prod.requires_approval]",
        "HUMAN alice (role sre) $ opsgate approvals approve apr_",
        "rollout 3/3",  # progress arrives during the call; the decision is read from the audit trail after it
        "allow [write.approved]",
        "hash chain intact",
        f"opsgate audit verify --file {state / 'audit.db'}",
    ]
    positions = [out.find(step) for step in steps]
    assert all(p >= 0 for p in positions), [s for s, p in zip(steps, positions, strict=True) if p < 0]
    assert positions == sorted(positions), "the story is told out of order"

    log = AuditLog(state / "audit.db")
    records = [r.record for r in log.records()]
    assert log.verify().ok
    log.close()
    rollbacks = [r for r in records if r["tool"] == "rollback_deployment"]
    assert [(r["args"]["dry_run"], r["outcome"]) for r in rollbacks] == [
        (True, "ok"),
        (False, "pending_approval"),
        (False, "started"),
        (False, "ok"),
    ]
    applied = rollbacks[-1]
    assert applied["approval"]["granted_by"] == "alice" and applied["approval"]["roles"] == ["sre"]
    assert applied["approval"]["channel"] == "ssh-signature"
    assert applied["caller"]["subject"] == "agent@opsgate-demo"
    assert applied["facts"]["from_revision"] == BAD_REVISION and applied["facts"]["to_revision"] == GOOD_REVISION
    assert all(r["outcome"] in ("ok", "pending_approval", "started") for r in records)
    store = SqliteApprovalStore(state)
    (approval,) = store.find(status="used")
    assert approval.decided_by == "alice" and approval.requester == "agent@opsgate-demo"
    store.close()


def test_pod_logs_tell_the_bad_image_apart() -> None:
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    started = now - timedelta(minutes=10)
    bad_image, good_image = "registry.example.com/shop/checkout:v8", "registry.example.com/shop/checkout:v7"

    def lines(image: str) -> list[LogLine]:
        ref = PodRef("shop", "checkout-abc-1", "checkout", image, {"app": "checkout"}, started)
        return pod_log_lines(ref, bad_image=bad_image, now=now)

    bad, good = lines(bad_image), lines(good_image)
    assert len(bad) == len(good) == 151  # a line every 4 s over 10 minutes, both ends included
    assert all(started <= line.time <= now for line in bad)
    bad_errors = sum('"level":"error"' in line.text for line in bad)
    assert 0.25 < bad_errors / len(bad) < 0.45
    assert not any('"level":"error"' in line.text for line in good)
    assert lines(bad_image) == bad, "log content must not depend on when it is asked for"


def test_fast_forward_clock_keeps_the_past_and_speeds_up_after_the_moment() -> None:
    real = [1000.0]
    clock = FastForwardClock(speed=10, real=lambda: real[0])
    assert clock() == 1000.0
    clock.fast_forward_from(1000.0)
    real[0] = 1003.0
    assert clock() == 1030.0
    clock.fast_forward_from(1002.0)  # the first moment wins
    assert clock() == 1030.0


def test_metrics_follow_the_cluster_and_recover_only_after_the_rollback() -> None:
    with SandboxWorld() as world:
        inc = world.incident
        assert not world.recovered()
        assert world.running_images() == [inc.bad_image] * 3
        timeline = SandboxTimeline()
        follower = TimelineFollower(world.api_url, timeline, poll_s=0.05).start()
        try:
            assert timeline.deploy_at == inc.deployed_at.timestamp()
            assert timeline.rollback_at is None
            series = SandboxSeries(timeline=timeline)
            (key,) = [k for k in series.keys_of("latency_p99_seconds") if k.label_dict["service"] == "checkout"]
            t = inc.deployed_at.timestamp()
            before, during = series.values([key], np.array([t - 600, t + 600]))[0]
            assert during > 2.5 * before

            time.sleep(0.3)
            assert timeline.rollback_at is None, "nothing changed in the cluster, so no recovery"
            patch = {"spec": {"template": {"spec": {"containers": [{"name": "checkout", "image": inc.good_image}]}}}}
            httpx.patch(
                f"{world.api_url}/apis/apps/v1/namespaces/shop/deployments/checkout",
                json=patch,
                headers={"Content-Type": "application/strategic-merge-patch+json"},
            ).raise_for_status()
            deadline = time.monotonic() + 10
            while (timeline.rollback_at is None or not world.recovered()) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert timeline.rollback_at is not None and world.recovered()
            r = timeline.rollback_at
            (after,) = series.values([key], np.array([r + 600]))[0]
            assert after < 1.5 * before
        finally:
            follower.stop()
