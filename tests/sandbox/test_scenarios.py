"""The scenario library: every scenario loads, replays one consistent story, and bad input is refused.

Each shipped scenario is replayed in a frozen world and checked through the same interfaces the
capabilities use: the Kubernetes API (the guilty revision is current, stuck rollouts are stuck, pod
behaviours are in the container statuses and events), the Prometheus-compatible API (the alert's service
is worse now than three hours ago) and the pod logs (the guilty revision's templates are in them).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from opsgate.sandbox.scenario import (
    SCENARIO_DIR,
    ScenarioError,
    load_scenario,
    parse_offset,
    scenario_names,
)
from opsgate.sandbox.world import SandboxWorld

NAMES = scenario_names()


def test_the_library_is_broad() -> None:
    scenarios = [load_scenario(n) for n in NAMES]
    assert len(scenarios) >= 12
    assert len({s.fault_class for s in scenarios}) == len(scenarios), "every scenario is a distinct fault class"
    assert sum(s.rollback_is_wrong for s in scenarios) >= 4
    assert "checkout-bad-deploy" in NAMES


def _query(world: SandboxWorld, promql: str, at: float) -> dict[str, float]:
    body = httpx.get(f"{world.prometheus_url}/api/v1/query", params={"query": promql, "time": str(at)}).json()
    return {r["metric"].get("service", ""): float(r["value"][1]) for r in body["data"]["result"]}


def _get(world: SandboxWorld, path: str) -> Any:
    return httpx.get(f"{world.api_url}{path}", timeout=10).raise_for_status().json()


@pytest.mark.parametrize("name", NAMES)
def test_each_scenario_replays_the_story_its_ground_truth_names(name: str) -> None:
    scenario = load_scenario(name)
    truth = scenario.ground_truth
    with SandboxWorld(scenario, mode="frozen") as world:
        ns = scenario.namespaces[0]
        now = world.anchor
        alert = scenario.alert
        # the cluster: the guilty revision is the Deployment's newest
        if truth.root_cause.kind == "Deployment":
            deployment = _get(world, f"/apis/apps/v1/namespaces/{ns}/deployments/{truth.root_cause.name}")
            revision = deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            assert revision == str(truth.root_cause.revision)
        pods = _get(world, f"/api/v1/namespaces/{ns}/pods")["items"]
        events = _get(world, f"/api/v1/namespaces/{ns}/events")["items"]
        for behaviour in scenario.pod_behaviours:
            service = behaviour.target.service
            statuses = [
                p["status"]["containerStatuses"][0] for p in pods if p["metadata"]["labels"].get("app") == service
            ]
            terminated = {(s.get("lastState") or {}).get("terminated", {}).get("reason") for s in statuses}
            waiting = {(s.get("state") or {}).get("waiting", {}).get("reason") for s in statuses}
            if behaviour.kind == "oom_killed":
                assert "OOMKilled" in terminated
            elif behaviour.kind == "crash_loop":
                assert "CrashLoopBackOff" in waiting
                assert any(e["reason"] == "BackOff" and e["type"] == "Warning" for e in events)
            elif behaviour.kind == "image_pull_backoff":
                assert "ImagePullBackOff" in waiting
                assert any(e["reason"] == "Failed" and "pull" in e["message"] for e in events)
            elif behaviour.kind == "readiness_flapping":
                assert any(e["reason"] == "Unhealthy" and e["count"] > 1 for e in events)
        # the metrics: the alert's service is worse now than three hours ago (or its rollout is stuck)
        blocked = any(b.kind in ("crash_loop", "image_pull_backoff") for b in scenario.pod_behaviours)
        if not blocked:
            service = alert.service or ""
            worse = []
            for metric in ("error_ratio", "latency_p99_seconds", "request_rate", "memory_usage_bytes"):
                promql = f'max by (service) ({metric}{{namespace="{ns}",service="{service}"}})'
                before, after = _query(world, promql, now - 3 * 3600), _query(world, promql, now)
                if service in before and service in after:
                    worse.append(after[service] > 1.3 * before[service])
            assert any(worse), f"{service} shows no symptom"
        else:
            deployment = _get(world, f"/apis/apps/v1/namespaces/{ns}/deployments/{alert.service}")
            assert deployment["status"].get("updatedReplicas", 0) < deployment["spec"]["replicas"] or any(
                c.get("reason") == "ProgressDeadlineExceeded" for c in deployment["status"].get("conditions", [])
            )
        # the logs: the templates of the serving pods' revisions are in their logs
        for template in scenario.logs:
            if template.during is not None or template.start is not None:
                active = template.during is None or template.during in world.engine.active_fault_ids(0.0)
                if not active:
                    continue
            names = [
                p["metadata"]["name"]
                for p in pods
                if p["metadata"]["labels"].get("app") == template.service
                and p["status"]["containerStatuses"][0].get("state", {}).get("waiting", {}).get("reason")
                != "ImagePullBackOff"
            ]
            text = "".join(
                httpx.get(f"{world.api_url}/api/v1/namespaces/{ns}/pods/{n}/log", timeout=10).text for n in names
            )
            fixed = re.split(r"\{\w+\}", template.template)[0][:30]
            wanted = template.revisions is None or any(
                str(r) for r in template.revisions if _pod_revisions(world, template.service) & {r}
            )
            if wanted and fixed.strip():
                assert fixed.replace('"', '\\"') in text, (template.template, template.service)
        assert world.alerts() and world.alerts()[0]["labels"]["alertname"] == alert.name


def _pod_revisions(world: SandboxWorld, service: str) -> set[int]:
    return {p.revision for p in world.pods() if p.service == service and p.end is None and p.revision is not None}


def test_a_scenario_replays_identically_twice() -> None:
    def snapshot() -> tuple[list[str], list[str], list[float]]:
        with SandboxWorld("memory-leak-late", mode="frozen") as world:
            names = sorted(p.name for p in world.pods())
            lines: list[str] = []
            for pod in sorted(world.pods(), key=lambda p: p.name):
                lines += [str(r) for _t, r in world.engine.log_lines(pod, -3600.0, 0.0)]
            t = world.anchor + np.arange(-7200.0, 1.0, 60.0)
            values: list[float] = []
            for metric in ("memory_usage_bytes", "error_ratio", "latency_p99_seconds"):
                values += world.values(metric, world.series(metric), t).ravel().tolist()
            return names, lines, values

    first, second = snapshot(), snapshot()
    assert first[0] == second[0]
    assert first[1] == second[1]
    assert first[2] == pytest.approx(second[2], nan_ok=True)


def test_the_alert_fingerprint_is_the_same_in_every_process() -> None:
    """Like Alertmanager's, a function of the labels: it used to come from `hash()`, which Python salts per
    process, so two eval runs of one scenario showed the agent different fingerprints."""
    probe = (
        "from opsgate.sandbox.world import SandboxWorld\n"
        "with SandboxWorld('checkout-bad-deploy', mode='frozen') as world:\n"
        "    print(world.alerts()[0]['fingerprint'])\n"
    )
    printed = {
        subprocess.run(
            [sys.executable, "-c", probe], env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }  # fmt: skip
    assert len(printed) == 1 and re.fullmatch(r"[0-9a-f]{16}", printed.pop())


# -- bad input ----------------------------------------------------------------------------------------


def _write(tmp_path: Path, change: Any) -> Path:
    data = yaml.safe_load((SCENARIO_DIR / "checkout-bad-deploy.yaml").read_text())
    change(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("change", "where", "rule"),
    [
        (lambda d: d.update(colour="red"), "colour", "unknown field"),
        (lambda d: d["faults"][0]["target"].update(service="billing"), "faults[0].target.service", "does not exist"),
        (
            lambda d: d["ground_truth"]["root_cause"].update(name="billing"),
            "ground_truth.root_cause.name",
            "no service shop/billing",
        ),
        (
            lambda d: d["services"][0]["deployment"]["revisions"][1].update(revision=5),
            "services[0].deployment.revisions[1].revision",
            "revisions overlap",
        ),
        (
            lambda d: d["services"][0]["deployment"]["revisions"][3].update(at="-5d"),
            "services[0].deployment.revisions[3].at",
            "time runs backwards",
        ),
        (lambda d: d["faults"][0].update(start="-10m", end="-30m"), "faults[0].end", "time runs backwards"),
    ],
)
def test_bad_scenarios_name_the_file_the_path_and_the_rule(tmp_path: Path, change: Any, where: str, rule: str) -> None:
    path = _write(tmp_path, change)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    error = caught.value
    assert error.file == str(path) and error.path == where and rule in error.rule
    assert str(path) in str(error) and where in str(error)


def test_nothing_starts_from_a_bad_scenario(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d.update(colour="red"))
    sandbox = ["sandbox", "--scenario", str(path), "--state-dir", str(tmp_path)]
    for command in (sandbox, ["eval", "--scenario", str(path)]):
        done = subprocess.run([sys.executable, "-m", "opsgate", *command], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and f"{path}: colour: unknown field" in done.stderr
        assert not (tmp_path / "kubeconfig").exists()


def test_the_published_json_schema_is_current() -> None:
    import json

    from opsgate.sandbox.scenario import json_schema

    published = json.loads((SCENARIO_DIR.parent / "docs" / "scenario.schema.json").read_text())
    assert published == json_schema(), (
        "regenerate: python -m opsgate.sandbox.scenario --schema > docs/scenario.schema.json"
    )


def test_offsets() -> None:
    assert parse_offset("-1h30m") == -5400 and parse_offset("0") == 0 and parse_offset("2d") == 172800
    with pytest.raises(ValueError, match="not a duration"):
        parse_offset("soon")
