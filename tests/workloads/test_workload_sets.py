"""StatefulSets and DaemonSets in the loopback Kubernetes API emulation: `workload_status` through an MCP
client, the served objects against the official OpenAPI schemas, and the real `kubectl` reading them."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from opsgate.config import Settings
from opsgate.sandbox.kube.errors import KubeApiError
from opsgate.sandbox.kube.objects import CONTROLLERREVISIONS, DAEMONSETS, PODS, STATEFULSETS
from opsgate.sandbox.kube_api import ControllerConfig, KubeApiServer, KubeCluster, PodBehavior
from opsgate.server import build_app
from tests.sandbox.test_kube_api import validate_served

NODES = ("sandbox-node-1", "sandbox-node-2", "sandbox-node-3")
PATCH = "application/strategic-merge-patch+json"


def _template(app: str, image: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": app, "image": image}]}}


def sets_cluster() -> KubeCluster:
    """`db` (3 replicas) and `agent` (one per node) rolled to a crash-looping v2: one pod each on v2."""
    cluster = KubeCluster(ControllerConfig(ready_after_ticks=1, extra_nodes=NODES[1:]), random_seed=3)
    cluster.create_namespace({"metadata": {"name": "data"}})
    cluster.create_workload_set(
        STATEFULSETS,
        "data",
        {
            "metadata": {"name": "db"},
            "spec": {
                "replicas": 3,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": _template("db", "reg.example.com/db:v1"),
            },
        },
    )
    cluster.create_workload_set(
        DAEMONSETS,
        "data",
        {
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": _template("agent", "reg.example.com/agent:v1"),
            },
        },
    )
    cluster.tick(10)
    for name, resource in (("db", STATEFULSETS), ("agent", DAEMONSETS)):
        image = f"reg.example.com/{name}:v2"
        cluster.behaviors.add(PodBehavior(image=image, exits="Error", run_seconds=0))
        patch = {"spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}}}
        cluster.patch_workload_set(resource, "data", name, patch, PATCH)
    cluster.tick(10)
    return cluster


@pytest.fixture
def kube() -> Iterator[KubeApiServer]:
    with KubeApiServer(sets_cluster(), tick_seconds=None) as server:
        yield server


def test_controllers_make_pods_revisions_and_status() -> None:
    cluster = sets_cluster()
    pods = {p["metadata"]["name"]: p for p in cluster.list(PODS, "data")["items"]}
    assert {"db-0", "db-1", "db-2"} <= set(pods)
    sts = cluster.get(STATEFULSETS, "data", "db")["status"]
    assert sts["replicas"] == 3 and sts["readyReplicas"] == 2 and sts["updatedReplicas"] == 1
    assert sts["currentReplicas"] == 2 and sts["currentRevision"] != sts["updateRevision"]
    assert pods["db-2"]["metadata"]["labels"]["controller-revision-hash"] == sts["updateRevision"], "highest first"
    assert pods["db-0"]["metadata"]["labels"]["controller-revision-hash"] == sts["currentRevision"]
    agent_pods = [p for name, p in pods.items() if name.startswith("agent-")]
    assert sorted(p["spec"]["nodeName"] for p in agent_pods) == sorted(NODES), "one pod per node"
    ds = cluster.get(DAEMONSETS, "data", "agent")["status"]
    assert (ds["desiredNumberScheduled"], ds["currentNumberScheduled"], ds["numberReady"]) == (3, 3, 2)
    assert (ds["updatedNumberScheduled"], ds["numberAvailable"]) == (1, 2)
    revisions = {r["metadata"]["name"]: r["revision"] for r in cluster.list(CONTROLLERREVISIONS, "data")["items"]}
    assert revisions[sts["updateRevision"]] == 2 and revisions[sts["currentRevision"]] == 1 and len(revisions) == 4


def test_served_objects_validate_against_the_official_schemas(kube: KubeApiServer) -> None:
    cluster = kube.cluster
    for resource in (STATEFULSETS, DAEMONSETS, CONTROLLERREVISIONS, PODS):
        for item in cluster.list(resource, "data")["items"]:
            validate_served({**item, "kind": resource.kind, "apiVersion": resource.api_version})


def test_invalid_sets_are_rejected_naming_the_field() -> None:
    cluster = KubeCluster()
    with pytest.raises(KubeApiError) as caught:
        cluster.create_workload_set(
            STATEFULSETS,
            "default",
            {
                "metadata": {"name": "x"},
                "spec": {"selector": {"matchLabels": {"app": "y"}}, "template": _template("x", "i:1")},
            },
        )
    assert caught.value.code == 422 and "spec.template.metadata.labels" in str(caught.value.to_status())


async def test_workload_status_of_a_statefulset_and_a_daemonset(
    tmp_path: Path, kube: KubeApiServer, wire_mode: str
) -> None:
    settings = Settings(state_dir=tmp_path / "state", workloads={"api_url": kube.url})
    app = build_app(settings, ["workloads"])
    try:
        async with Client(app.server, mode=wire_mode) as client:
            sts = await client.call_tool("workload_status", {"namespace": "data", "name": "db", "kind": "sts"})
            ds = await client.call_tool("workload_status", {"namespace": "data", "name": "agent", "kind": "DaemonSet"})
    finally:
        await app.aclose()
    for result, kind in ((sts, "StatefulSet"), (ds, "DaemonSet")):
        assert not result.is_error, result.content
        out = result.structured_content
        assert out["kind"] == kind and out["health"] != "healthy"
        assert out["replicas"]["desired"] == 3 and out["replicas"]["updated"] == 1 and out["replicas"]["ready"] == 2
        current = [r for r in out["revisions"] if r["current"]]
        assert len(current) == 1 and current[0]["revision"] == "2", out["revisions"]
        assert (
            current[0]["pods"] == 1 and current[0]["ready"] == 0 and current[0]["problems"] == {"CrashLoopBackOff": 1}
        )
        assert current[0]["containers"][0]["image"].endswith(":v2")
        old = next(r for r in out["revisions"] if r["revision"] == "1")
        assert old["pods"] == 2 and old["ready"] == 2 and not old["problems"]
        worst = out["pods"][0]
        assert worst["status"] == "CrashLoopBackOff" and worst["revision"] == "2" and worst["name"] in out["summary"]
        assert worst["hash"] == current[0]["hash"]
    assert sts.structured_content["pods"][0]["name"] == "db-2"


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (scripts/system-deps.sh)")
def test_kubectl_get_and_describe(kube: KubeApiServer, tmp_path: Path) -> None:
    config = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="data")
    assert KUBECTL is not None

    def run(*args: str) -> str:
        argv = [KUBECTL, "--kubeconfig", str(config), "--request-timeout=20s", *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"kubectl {' '.join(args)} failed: {done.stderr}"
        return done.stdout

    listed = run("get", "statefulsets,daemonsets", "-n", "data")
    assert "statefulset.apps/db" in listed and "daemonset.apps/agent" in listed, listed
    rows = {line.split()[0]: line.split() for line in listed.splitlines() if line and not line.startswith("NAME")}
    assert rows["statefulset.apps/db"][1] == "2/3", listed
    assert rows["daemonset.apps/agent"][1:6] == ["3", "3", "2", "1", "2"], listed
    described = run("describe", "statefulset", "db")
    assert "reg.example.com/db:v2" in described and "Replicas:" in described, described
    described = run("describe", "daemonset", "agent")
    assert "Desired Number of Nodes Scheduled: 3" in described and "reg.example.com/agent:v2" in described, described
    history = run("get", "controllerrevisions", "-n", "data")
    assert "db-" in history and "agent-" in history, history
    assert _rows(run("rollout", "history", "daemonset/agent"))[-2:] == [["1", "<none>"], ["2", "<none>"]]
    argv = [KUBECTL, "--kubeconfig", str(config), "rollout", "status", "daemonset/agent", "--timeout=2s"]
    stalled = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert stalled.returncode != 0, "the crash-looping rollout never finishes"
    assert "1 out of 3 new pods have been updated" in stalled.stdout, stalled.stdout + stalled.stderr


def _rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()]
