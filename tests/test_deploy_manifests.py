"""deploy/: the Kubernetes manifests validate against the Kubernetes 1.37 schemas (strict), hang
together (names, ports, labels, volumes), carry the policy that is in policies/, and the Dockerfile's
command with the ConfigMap's configuration really serves /healthz and MCP over HTTP."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import kubernetes_validate
import pytest
import yaml
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from opsgate.cli import build_parser
from opsgate.config import load_settings
from opsgate.http_auth import hash_key
from opsgate.sandbox.world import SandboxWorld
from tests.support.loopback import free_port, stop_process, wait_until_ready

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSION = "1.37"

sys.path.insert(0, str(DEPLOY))
sys.path.insert(0, str(REPO / "examples" / "foundry"))
import register_toolbox  # noqa: E402
import render_policy_configmap  # noqa: E402


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _kustomization() -> dict[str, Any]:
    return dict(yaml.safe_load((K8S / "kustomization.yaml").read_text()))


def _applied() -> list[dict[str, Any]]:
    return [doc for name in _kustomization()["resources"] for doc in _docs(K8S / name)]


def _one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in _applied() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _container(name: str) -> dict[str, Any]:
    pod = _one("Deployment", "opsgate")["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == name)


def _config_toml() -> str:
    return str(_one("ConfigMap", "opsgate-config")["data"]["opsgate.toml"])


def _example_secret() -> dict[str, str]:
    (secret,) = _docs(K8S / "secret.example.yaml")
    return dict(secret["stringData"])


# -- schema validation -----------------------------------------------------------------------------


MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_validates_against_the_kubernetes_schemas(path: Path) -> None:
    docs = _docs(path)
    assert docs, f"{path.name} has no documents"
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_schema_check_catches_a_broken_deployment() -> None:
    broken = json.loads(json.dumps(_one("Deployment", "opsgate")))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    broken = json.loads(json.dumps(_one("Deployment", "opsgate")))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_kustomization_applies_every_manifest_except_the_example_secret() -> None:
    listed = set(_kustomization()["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == on_disk
    kinds = {d["kind"] for d in _applied()}
    assert {"Deployment", "Service", "ConfigMap", "ServiceAccount", "Role", "RoleBinding", "NetworkPolicy"} <= kinds
    assert "Secret" not in kinds, "secrets are created out of band, never committed"


def test_opa_policy_configmap_carries_exactly_the_policies_in_git() -> None:
    assert (K8S / "opa-policy.yaml").read_text() == render_policy_configmap.render(), (
        "deploy/k8s/opa-policy.yaml is stale: run python deploy/render_policy_configmap.py"
    )
    data = _one("ConfigMap", "opa-policy")["data"]
    rego = sorted(p.name for p in (REPO / "policies").rglob("*.rego") if not p.name.endswith("_test.rego"))
    assert sorted(k for k in data if k.endswith(".rego")) == rego
    assert json.loads(data["data.json"]) == json.loads((REPO / "policies" / "data.json").read_text())


# -- the pieces fit together -------------------------------------------------------------------------


def test_deployment_runs_replicas_with_an_opa_sidecar_on_loopback() -> None:
    deployment = _one("Deployment", "opsgate")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] >= 2
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert pod["securityContext"]["runAsNonRoot"] is True
    for container in pod["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False

    opa = _container("opa")
    addr = next(a.split("=", 1)[1] for a in opa["args"] if a.startswith("--addr="))
    assert addr.startswith("127.0.0.1:"), "the decision API must not leave the pod"
    policy_section = tomllib.loads(_config_toml())["policy"]
    assert policy_section["engine"] == "opa"
    assert policy_section["opa_url"] == f"http://{addr}"
    volumes = {v["name"]: v for v in pod["volumes"]}
    (mount,) = opa["volumeMounts"]
    assert volumes[mount["name"]]["configMap"]["name"] == "opa-policy"
    assert opa["args"][-1] == mount["mountPath"]


def test_probes_service_and_network_policy_point_at_the_http_port() -> None:
    server = _container("opsgate")
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    config = tomllib.loads(_config_toml())
    assert ports["http"] == config["http"]["port"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert server[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    service = _one("Service", "opsgate")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    pod_labels = _one("Deployment", "opsgate")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert _one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    netpol = _one("NetworkPolicy", "opsgate")
    assert netpol["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert {p["port"] for rule in netpol["spec"]["ingress"] for p in rule["ports"]} == {"http"}


def test_configmap_and_secret_env_load_as_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "opsgate.toml"
    config.write_text(_config_toml())
    server = _container("opsgate")
    for entry in server["env"]:
        if "value" in entry:
            monkeypatch.setenv(entry["name"], entry["value"].replace("/etc/opsgate/opsgate.toml", str(config)))
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            monkeypatch.setenv(entry["name"], _example_secret()[ref["key"]])
    settings = load_settings()
    assert settings.policy.engine == "opa"
    assert settings.http.require_auth is True
    assert settings.http.host == "0.0.0.0"
    assert [k.subject for k in settings.http.api_keys] == ["agent@example"]
    assert str(settings.state_dir) == next(m["mountPath"] for m in server["volumeMounts"] if m["name"] == "state")


def test_secrets_come_from_secret_refs_and_the_service_account_can_roll_back() -> None:
    server = _container("opsgate")
    refs = [e["valueFrom"]["secretKeyRef"] for e in server["env"] if "valueFrom" in e]
    assert refs and all(r["name"] == "opsgate-secrets" for r in refs)
    assert {r["key"] for r in refs} <= set(_example_secret())
    assert "api_keys" not in _config_toml() and "sha256" not in _config_toml()
    pod = _one("Deployment", "opsgate")["spec"]["template"]["spec"]
    binding = _one("RoleBinding", "opsgate-rollback")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": "opsgate"}
    ]
    rules = _one("Role", "opsgate-rollback")["rules"]
    assert any("deployments" in r["resources"] and "patch" in r["verbs"] for r in rules)
    assert not any("*" in r["verbs"] or "delete" in r["verbs"] for r in rules)


# -- the Dockerfile ------------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _image_command() -> list[str]:
    steps = _dockerfile()
    entrypoint = json.loads(next(v for k, v in steps if k == "ENTRYPOINT"))
    cmd = json.loads(next(v for k, v in steps if k == "CMD"))
    return [*entrypoint, *cmd]


def _image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for key, value in _dockerfile():
        if key == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(value)))
    return env


def test_dockerfile_is_slim_non_root_and_serves_http() -> None:
    steps = _dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    user = [v for k, v in steps if k == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    command = _image_command()
    assert command == ["opsgate", "serve", "all", "--transport", "http"]
    args = build_parser().parse_args(command[1:])
    assert args.transport == "http" and args.capabilities == ["all"]
    assert _container("opsgate")["args"] == command[1:]
    exposed = [v for k, v in steps if k == "EXPOSE"]
    assert exposed == [str(_container("opsgate")["ports"][0]["containerPort"])] == [_image_env()["OPSGATE_HTTP__PORT"]]
    for key, value in steps:
        if key == "COPY":
            *sources, _dest = value.split()
            for source in sources:
                assert (REPO / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert ignore[ignore.index("**") + 1 :], "the build context must re-include the sources after `**`"


# -- the configuration really serves ---------------------------------------------------------------


KEY = "ogk_deploy-test-key"


def _off_cluster_env(tmp_path: Path, kubeconfig: Path) -> dict[str, str]:
    """What differs from the pod, each because this machine has no cluster: the embedded policy engine
    instead of the OPA sidecar (same policies), repository paths instead of /app, the sandbox's
    loopback Kubernetes API instead of the in-cluster service account, and a loopback address."""
    return {
        "OPSGATE_STATE_DIR": str(tmp_path / "state"),
        "OPSGATE_POLICY__ENGINE": "embedded",
        "OPSGATE_POLICY__DIR": str(REPO / "policies"),
        "OPSGATE_RUNBOOKS__DIR": str(REPO / "examples" / "runbooks"),
        "OPSGATE_ROLLBACK__IN_CLUSTER": "false",
        "OPSGATE_ROLLBACK__KUBECONFIG": str(kubeconfig),
        "OPSGATE_LOGS__KUBERNETES__KUBECONFIG": str(kubeconfig),
        "OPSGATE_HTTP__HOST": "127.0.0.1",
    }


@pytest.fixture
def cluster_kubeconfig(tmp_path: Path) -> Iterator[Path]:
    with SandboxWorld() as world:
        yield world.write_kubeconfig(tmp_path / "kubeconfig")


def test_rollback_calls_fit_a_foundry_toolbox_call(
    tmp_path: Path, cluster_kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "opsgate.toml"
    config.write_text(_config_toml())
    for name, value in _off_cluster_env(tmp_path, cluster_kubeconfig).items():
        monkeypatch.setenv(name, value)
    timeouts = register_toolbox.local_timeouts(str(config))
    assert "rollback_deployment" in timeouts
    assert register_toolbox.check_call_limits(list(timeouts), timeouts) == []


@pytest.fixture
def deployed_server(tmp_path: Path, cluster_kubeconfig: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The image's command with the ConfigMap's file and the Secret's env, on loopback."""
    config = tmp_path / "opsgate.toml"
    config.write_text(_config_toml())
    port = free_port()
    api_keys = json.dumps([{"sha256": hash_key(KEY), "subject": "agent@deploy-test", "roles": ["responder"]}])
    env = {
        **os.environ,
        **_image_env(),
        "OPSGATE_CONFIG": str(config),
        "OPSGATE_HTTP__API_KEYS": api_keys,
        **_off_cluster_env(tmp_path, cluster_kubeconfig),
        "OPSGATE_HTTP__PORT": str(port),
    }
    command = _image_command()
    log = tmp_path / "server.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "opsgate", *command[1:]], env=env, stderr=err, stdout=subprocess.DEVNULL
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(proc, base + "/healthz", 30, "server", lambda: log.read_text(errors="replace")[-4000:])
        yield base, proc
    finally:
        stop_process(proc)


async def test_the_configured_image_command_serves_health_and_authenticated_mcp(
    deployed_server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    base, _ = deployed_server
    settings_path = tomllib.loads(_config_toml())["http"]["path"]
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Mcp-Protocol-Version": "2025-11-25"}
    async with httpx.AsyncClient(timeout=5) as plain:
        health = await plain.get(base + "/healthz")
        anonymous = await plain.post(base + settings_path, json=request, headers=headers)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    tools_served = health.json()["tools"]
    assert isinstance(tools_served, int) and tools_served >= 11
    assert anonymous.status_code == 401
    assert re.search(r"resource_metadata=", anonymous.headers["www-authenticate"])

    # an agent with a key from the Secret lists and calls tools
    url = base + settings_path
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        names = {t.name for t in (await client.list_tools()).tools}
        assert len(names) == tools_served, "healthz counts the tools an authenticated agent lists"
        assert {"runbook_search", "logs_query", "metrics_query", "rollout_status", "rollback_deployment"} <= names
        status = await client.call_tool("rollout_status", {"namespace": "shop", "deployment": "checkout"})
        assert not status.is_error and status.structured_content["state"] == "complete"
        found = await client.call_tool("runbook_search", {"query": "checkout latency after a deploy"})
        assert not found.is_error
        assert found.structured_content["items"][0]["id"] == "checkout-latency-regression"
