"""The loopback Kubernetes API emulation checked by a client we did not write: the real `kubectl`.

Each test runs the `kubectl` binary (Debian's `kubernetes-client`, or any kubectl on PATH) against
the emulation over a kubeconfig and reads what it prints, as an SRE would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from opsgate.config import Settings
from opsgate.sandbox.kube.kubelet import PodBehavior
from opsgate.sandbox.kube_api import (
    DEPLOYMENTS,
    REPLICASETS,
    ControllerConfig,
    DeploymentSeed,
    KubeApiServer,
    KubeCluster,
    LogLine,
    seed_namespace,
)
from opsgate.server import build_app

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (scripts/system-deps.sh)")
NOW = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
SEEDS = (DeploymentSeed("checkout", revisions=7), DeploymentSeed("payments", revisions=3))


def _cluster() -> KubeCluster:
    cluster = KubeCluster(ControllerConfig(ready_after_ticks=1, progress_deadline_seconds=5), random_seed=11)
    seed_namespace(cluster, "shop", SEEDS)
    return cluster


class Kubectl:
    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def argv(self, *args: str) -> list[str]:
        assert KUBECTL is not None
        return [KUBECTL, "--kubeconfig", str(self.kubeconfig), "--request-timeout=20s", *args]

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=60, check=False)
        if ok:
            assert done.returncode == 0, f"kubectl {' '.join(args)} failed: {done.stderr}"
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)


@pytest.fixture
def server() -> Iterator[KubeApiServer]:
    with KubeApiServer(_cluster(), tick_seconds=0.02) as running:
        yield running


@pytest.fixture
def kubectl(server: KubeApiServer, tmp_path: Path) -> Kubectl:
    return Kubectl(server.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop"))


def _rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()]


def test_get_prints_the_servers_columns(kubectl: Kubectl) -> None:
    pods = _rows(kubectl.run("get", "pods").stdout)
    assert pods[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    checkout = [row for row in pods[1:] if row[0].startswith("checkout-")]
    assert len(checkout) == 3 and all(row[1:4] == ["1/1", "Running", "0"] for row in checkout)
    deployments = _rows(kubectl.run("get", "deployments", "-o", "wide").stdout)
    assert deployments[0][:5] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    row = next(r for r in deployments if r[0] == "checkout")
    assert row[1:4] == ["3/3", "3", "3"] and "registry.example.com/shop/checkout:v7" in row
    replica_sets = _rows(kubectl.run("get", "rs", "-l", "app=payments").stdout)
    assert replica_sets[0] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"] and len(replica_sets) == 4
    single = _rows(kubectl.run("get", "deployment", "payments").stdout)
    assert single[1][:4] == ["payments", "3/3", "3", "3"]


def test_describe_a_deployment_and_its_pods(kubectl: Kubectl) -> None:
    described = kubectl.run("describe", "deployment", "checkout").stdout
    assert "Replicas:               3 desired | 3 updated | 3 total | 3 available | 0 unavailable" in described
    assert "registry.example.com/shop/checkout:v7" in described
    assert "NewReplicaSetAvailable" in described and "ScalingReplicaSet" in described
    pod = kubectl.json("get", "pods", "-l", "app=checkout")["items"][0]["metadata"]["name"]
    pod_text = kubectl.run("describe", "pod", pod).stdout
    assert "Status:           Running" in pod_text and "Controlled By:  ReplicaSet/checkout-" in pod_text
    assert "Started container checkout" in pod_text and "Successfully assigned shop/" in pod_text


def test_describe_shows_an_oom_killed_container_and_its_restarts(server: KubeApiServer, kubectl: Kubectl) -> None:
    server.cluster.behaviors.add(
        PodBehavior(image="registry.example.com/shop/payments:v3", exits="OOMKilled", run_seconds=300)
    )
    server.cluster.tick()
    pods = _rows(kubectl.run("get", "pods", "-l", "app=payments").stdout)
    assert all(int(row[3]) > 0 and row[2] in ("Running", "CrashLoopBackOff") for row in pods[1:]), pods
    name = pods[1][0]
    text = kubectl.run("describe", "pod", name).stdout
    assert "Last State:     Terminated" in text
    assert "Reason:       OOMKilled" in text and "Exit Code:    137" in text
    assert "Back-off restarting failed container payments" in text


def test_rollout_history_lists_revisions_and_one_revisions_template(kubectl: Kubectl) -> None:
    history = kubectl.run("rollout", "history", "deployment/checkout").stdout
    for revision in range(1, 8):
        assert f"{revision}         release v{revision} of checkout" in history
    one = kubectl.run("rollout", "history", "deployment/checkout", "--revision=6").stdout
    assert "registry.example.com/shop/checkout:v6" in one and "release v6 of checkout" in one


def test_rollout_status_follows_a_rollout_through_the_watch(tmp_path: Path) -> None:
    """kubectl waits on a watch of the Deployment; the stream's objects must decode (kind Deployment)."""
    with KubeApiServer(_cluster(), tick_seconds=None) as server:
        kubectl = Kubectl(server.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop"))
        kubectl.run("set", "image", "deployment/checkout", "checkout=registry.example.com/shop/checkout:v8")
        watching = subprocess.Popen(
            kubectl.argv("rollout", "status", "deployment/checkout", "--timeout=60s", "-v=6"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        stop = threading.Event()

        def drive() -> None:  # move the rollout on only while kubectl watches
            while not stop.wait(0.05):
                server.cluster.tick()

        driver = threading.Thread(target=drive, daemon=True)
        driver.start()
        try:
            out, err = watching.communicate(timeout=60)
        finally:
            stop.set()
            driver.join()
    assert watching.returncode == 0, err
    assert 'deployment "checkout" successfully rolled out' in out
    assert "Waiting for deployment" in out, "the rollout finished before kubectl watched it"
    assert "watch=true" in err, "kubectl never opened a watch"
    assert "no kind" not in err and "unable to decode" not in err, err


def test_rollout_status_reports_a_stuck_rollout(server: KubeApiServer, kubectl: Kubectl) -> None:
    server.cluster.faults.mark_image_bad("registry.example.com/shop/checkout:v9")
    kubectl.run("set", "image", "deployment/checkout", "checkout=registry.example.com/shop/checkout:v9")
    done = kubectl.run("rollout", "status", "deployment/checkout", "--timeout=30s", ok=False)
    assert done.returncode != 0
    assert 'deployment "checkout" exceeded its progress deadline' in done.stderr
    pods = _rows(kubectl.run("get", "pods", "-l", "app=checkout").stdout)
    assert any(row[2] == "CrashLoopBackOff" and row[1] == "0/1" for row in pods[1:]), pods


def test_logs_of_a_deployment(server: KubeApiServer, kubectl: Kubectl) -> None:
    server.cluster.logs.set_provider(
        lambda ref: [LogLine(ref.started, f"hello from {ref.pod}"), LogLine(ref.started, f"image {ref.image}")]
    )
    out = kubectl.run("logs", "deployment/payments", "--tail=1").stdout
    assert out.strip() == "image registry.example.com/shop/payments:v3"
    pod = kubectl.json("get", "pods", "-l", "app=checkout")["items"][0]["metadata"]["name"]
    out = kubectl.run("logs", pod, "--timestamps").stdout
    assert f"hello from {pod}" in out and out.split()[0].endswith("Z")


def test_get_events_in_both_api_groups(server: KubeApiServer, kubectl: Kubectl) -> None:
    server.cluster.faults.mark_image_bad("registry.example.com/shop/checkout:v9", "ImagePullBackOff")
    kubectl.run("set", "image", "deployment/checkout", "checkout=registry.example.com/shop/checkout:v9")
    server.cluster.tick(3)
    events = kubectl.run("get", "events").stdout
    assert events.splitlines()[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert "deployment/checkout" in events and "ScalingReplicaSet" in events
    warnings = kubectl.run("get", "events", "--field-selector", "type=Warning").stdout
    assert "Error: ImagePullBackOff" in warnings and "Normal" not in warnings
    assert "Failed to pull image" in warnings
    new_api = kubectl.run("get", "events.v1.events.k8s.io").stdout
    assert "ScalingReplicaSet" in new_api
    listed = kubectl.json("get", "events.v1.events.k8s.io")
    assert listed["items"] and all(item["regarding"]["name"] for item in listed["items"])


def _deployment_state(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "labels": meta.get("labels"),
        "annotations": meta.get("annotations"),
        "generation": meta.get("generation"),
        "spec": obj["spec"],
    }


def _replica_set_state(cluster: KubeCluster) -> dict[str, Any]:
    items = cluster.list(DEPLOYMENTS, "shop")["items"]
    sets = {}
    for rs in cluster.list(REPLICASETS, "shop", label_selector_text="app=checkout")["items"]:
        sets[rs["metadata"]["name"]] = (rs["metadata"].get("annotations"), rs["spec"]["replicas"])
    return {"deployments": len(items), "replica_sets": sets}


async def test_kubectl_rollout_undo_and_rollback_deployment_leave_the_same_deployment(tmp_path: Path) -> None:
    """A differential test: the same cluster twice; kubectl undoes one, opsgate's tool rolls back the other."""
    by_kubectl, by_opsgate = _cluster(), _cluster()
    with (
        KubeApiServer(by_kubectl, tick_seconds=0.02) as left,
        KubeApiServer(by_opsgate, tick_seconds=0.02) as right,
    ):
        Kubectl(left.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")).run(
            "rollout", "undo", "deployment/checkout", "--to-revision=5"
        )
        settings = Settings(
            state_dir=tmp_path / "state",
            autonomy="autonomous",
            rollback={"api_url": right.url, "wait_s": 10.0, "poll_s": 0.05},
        )
        app = build_app(settings, ["rollback"])
        try:
            async with Client(app.server) as client:
                result = await client.call_tool(
                    "rollback_deployment",
                    {
                        "namespace": "shop",
                        "deployment": "checkout",
                        "to_revision": 5,
                        "dry_run": False,
                        "reason": "diff",
                    },
                )
        finally:
            await app.aclose()
        assert not result.is_error, result.content
        assert result.structured_content["applied"] and result.structured_content["rollout"]["state"] == "complete"
        by_kubectl.settle("shop", "checkout")
        left_deployment = by_kubectl.get(DEPLOYMENTS, "shop", "checkout")
        right_deployment = by_opsgate.get(DEPLOYMENTS, "shop", "checkout")
    assert _deployment_state(left_deployment) == _deployment_state(right_deployment)
    assert left_deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "8"
    left_sets, right_sets = _replica_set_state(by_kubectl), _replica_set_state(by_opsgate)
    assert left_sets == right_sets, "the rollback reused different ReplicaSets"
    assert len(left_sets["replica_sets"]) == 7, "a rollback must reuse the old ReplicaSet, not create one"
