"""Pytest fixtures for code that talks to Kubernetes: the loopback emulation of the Kubernetes API
(`opsgate.sandbox.kube_api`, not a real API server) seeded with Deployment histories, and a real
`kubernetes.client.ApiClient` pointed at it.

Fixtures
- `kube_api`: a running `KubeApiServer` whose cluster has namespace `shop` seeded with
  `KUBE_TEST_SEEDS` (`checkout` at revision 7 of images `registry.example.com/shop/checkout:v1..v7`,
  `payments` at revision 3), rollouts ticking every 20 ms, pods ready one tick after creation and a
  compressed progress deadline (`KUBE_TEST_PROGRESS_DEADLINE` seconds). Use `kube_api.cluster.faults`
  to inject 403/409/delays or mark images bad, and `kube_api.cluster.logs` to supply pod logs.
- `kube_client`: a configured `kubernetes.client.ApiClient` (emulation or real cluster, see below).
- `kube_namespace`: the namespace holding the seeded Deployments (`shop` in the emulation).
- `kube_kubeconfig`: a kubeconfig file for the same cluster (for code that loads kubeconfigs).

Running against a real cluster (kind, minikube)
    kind create cluster --name opsgate-test
    kind get kubeconfig --name opsgate-test > /tmp/opsgate-kind.yaml
    OPSGATE_TEST_KUBECONFIG=/tmp/opsgate-kind.yaml pytest tests/sandbox/test_kube_api.py
With `OPSGATE_TEST_KUBECONFIG` set, `kube_client` loads that kubeconfig (current context), seeds a
fresh namespace `opsgate-test-<random>` through the real API (`seed_namespace_via_api`: creates each
Deployment and patches it revision by revision, waiting for each ReplicaSet) and deletes the
namespace afterwards. Creation times are then real, not spread over past hours, and the seeded images
do not exist, so pods stay in ImagePullBackOff: revision history, dry runs, patches and rollbacks by
template behave as on the emulation, readiness does not. Tests that need the emulation's hooks
(fault injection, pod-log lines, bad images, fast rollouts) request `kube_api`, which is skipped
against a real cluster because a real cluster offers none of those hooks.

`tests/conftest.py` registers this module with `pytest_plugins = ["tests.support.kube"]`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import kubernetes.client
import kubernetes.config
import pytest
from kubernetes.client.exceptions import ApiException

from opsgate.sandbox.kube_api import (
    ControllerConfig,
    DeploymentSeed,
    KubeApiServer,
    KubeCluster,
    seed_namespace,
    seed_namespace_via_api,
)

KUBECONFIG_ENV = "OPSGATE_TEST_KUBECONFIG"
KUBE_TEST_NAMESPACE = "shop"
KUBE_TEST_SEEDS = (DeploymentSeed("checkout", revisions=7), DeploymentSeed("payments", revisions=3))
KUBE_TEST_TICK_SECONDS = 0.02
KUBE_TEST_PROGRESS_DEADLINE = 1.0


def real_cluster_kubeconfig() -> Path | None:
    value = os.environ.get(KUBECONFIG_ENV)
    return Path(value) if value else None


def new_emulated_cluster() -> KubeCluster:
    """A cluster with `KUBE_TEST_SEEDS` in `shop` and the fast test timings."""
    cluster = KubeCluster(ControllerConfig(ready_after_ticks=1, progress_deadline_seconds=KUBE_TEST_PROGRESS_DEADLINE))
    seed_namespace(cluster, KUBE_TEST_NAMESPACE, KUBE_TEST_SEEDS)
    return cluster


@pytest.fixture
def kube_api() -> Iterator[KubeApiServer]:
    if real_cluster_kubeconfig() is not None:
        pytest.skip(
            f"{KUBECONFIG_ENV} points at a real cluster; this test needs the emulation's hooks "
            "(fault injection, pod logs, bad images)"
        )
    with KubeApiServer(new_emulated_cluster(), tick_seconds=KUBE_TEST_TICK_SECONDS) as server:
        yield server


@pytest.fixture
def kube_namespace() -> str:
    if real_cluster_kubeconfig() is not None:
        return f"opsgate-test-{uuid.uuid4().hex[:8]}"
    return KUBE_TEST_NAMESPACE


@pytest.fixture
def kube_client(request: pytest.FixtureRequest, kube_namespace: str) -> Iterator[kubernetes.client.ApiClient]:
    kubeconfig = real_cluster_kubeconfig()
    if kubeconfig is None:
        server: KubeApiServer = request.getfixturevalue("kube_api")
        with server.api_client() as client:
            yield client
        return
    client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    try:
        seed_namespace_via_api(client, kube_namespace, KUBE_TEST_SEEDS)
        yield client
    finally:
        try:
            kubernetes.client.CoreV1Api(client).delete_namespace(kube_namespace)
        except ApiException as error:
            if error.status != 404:
                raise
        client.close()


@pytest.fixture
def kube_kubeconfig(request: pytest.FixtureRequest, tmp_path: Path, kube_namespace: str) -> Path:
    kubeconfig = real_cluster_kubeconfig()
    if kubeconfig is not None:
        request.getfixturevalue("kube_client")  # seeds kube_namespace
        return kubeconfig
    server: KubeApiServer = request.getfixturevalue("kube_api")
    return server.write_kubeconfig(tmp_path / "kubeconfig", namespace=kube_namespace)
