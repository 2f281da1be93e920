"""Seed Deployments with a revision history: straight into a `KubeCluster` (backdated, instant) or
through the real API of any cluster (kind, minikube) with the `kubernetes` client.

    seed_namespace(cluster, "shop", [DeploymentSeed("checkout", revisions=7)])

gives `shop/checkout` with ReplicaSets for images `registry.example.com/shop/checkout:v1` .. `:v7`
(revision 7 current, the others scaled to 0), their creation spread over the past `span` hours.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from opsgate.sandbox.kube.cluster import KubeCluster
from opsgate.sandbox.kube.errors import KubeApiError
from opsgate.sandbox.kube.objects import CHANGE_CAUSE_ANNOTATION, DEPLOYMENTS, JsonObject

_SEED_SPACING = timedelta(seconds=90)


@dataclass(frozen=True)
class DeploymentSeed:
    """One Deployment whose template went through `revisions` images (`{image_repository}:v1` ..)."""

    name: str
    revisions: int = 7
    replicas: int = 3
    image_repository: str = ""
    """Defaults to `registry.example.com/shop/{name}`."""
    bad_revisions: frozenset[int] = frozenset()
    """Emulation only: the images of these revisions are marked bad (their pods never get ready)."""
    progress_deadline_seconds: int = 600
    labels: Mapping[str, str] = field(default_factory=dict)

    def image(self, revision: int) -> str:
        repository = self.image_repository or f"registry.example.com/shop/{self.name}"
        return f"{repository}:v{revision}"

    def change_cause(self, revision: int) -> str:
        return f"release v{revision} of {self.name}"


def deployment_manifest(seed: DeploymentSeed, namespace: str, revision: int) -> JsonObject:
    """The Deployment at `revision`, as a client would create it."""
    labels = {"app": seed.name, **seed.labels}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": seed.name,
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": {CHANGE_CAUSE_ANNOTATION: seed.change_cause(revision)},
        },
        "spec": {
            "replicas": seed.replicas,
            "progressDeadlineSeconds": seed.progress_deadline_seconds,
            "selector": {"matchLabels": {"app": seed.name}},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "containers": [
                        {
                            "name": seed.name,
                            "image": seed.image(revision),
                            "ports": [{"containerPort": 8080, "name": "http"}],
                        }
                    ],
                },
            },
        },
    }


def revision_patch(seed: DeploymentSeed, revision: int) -> JsonObject:
    """The strategic merge patch that moves the Deployment to `revision` (new image, new change-cause)."""
    return {
        "metadata": {"annotations": {CHANGE_CAUSE_ANNOTATION: seed.change_cause(revision)}},
        "spec": {"template": {"spec": {"containers": [{"name": seed.name, "image": seed.image(revision)}]}}},
    }


def seed_namespace(
    cluster: KubeCluster,
    namespace: str,
    seeds: Iterable[DeploymentSeed],
    *,
    span: timedelta = timedelta(hours=6),
    now: datetime | None = None,
) -> None:
    """Create `namespace` (if needed) and each seed's history, revision i at a backdated time; the
    newest revision of seed k lands `span / revisions + k * 90s` before `now`."""
    end = now or cluster.now()
    try:
        cluster.create_namespace({"metadata": {"name": namespace}})
    except KubeApiError as error:
        if error.code != 409:
            raise
    for index, seed in enumerate(seeds):
        for revision in sorted(seed.bad_revisions):
            cluster.faults.mark_image_bad(seed.image(revision))
        for revision in range(1, seed.revisions + 1):
            moment = end - span * (seed.revisions - revision + 1) / seed.revisions - _SEED_SPACING * index
            with cluster.clock_at(moment):
                if revision == 1:
                    cluster.create_deployment(namespace, deployment_manifest(seed, namespace, 1))
                else:
                    cluster.patch_deployment(
                        namespace, seed.name, revision_patch(seed, revision), "application/strategic-merge-patch+json"
                    )
                cluster.settle(namespace, seed.name)
        cluster.get(DEPLOYMENTS, namespace, seed.name)


def seed_namespace_via_api(
    api_client: kubernetes.client.ApiClient, namespace: str, seeds: Iterable[DeploymentSeed], *, timeout: float = 120.0
) -> None:
    """The same histories through the real API (for kind/minikube): create the namespace and each
    Deployment, patch it revision by revision and wait until the controller made each ReplicaSet.
    Creation times are real (not backdated); `bad_revisions` is not applied."""
    core = kubernetes.client.CoreV1Api(api_client)
    apps = kubernetes.client.AppsV1Api(api_client)
    try:
        core.create_namespace(kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name=namespace)))
    except ApiException as error:
        if error.status != 409:
            raise
    for seed in seeds:
        manifest = kubernetes.client.V1Deployment.from_dict(deployment_manifest(seed, namespace, 1))
        assert manifest is not None
        apps.create_namespaced_deployment(namespace, manifest)
        _wait_for_revision(apps, namespace, seed, 1, timeout)
        for revision in range(2, seed.revisions + 1):
            apps.patch_namespaced_deployment(seed.name, namespace, revision_patch(seed, revision))
            _wait_for_revision(apps, namespace, seed, revision, timeout)


def _wait_for_revision(
    apps: kubernetes.client.AppsV1Api, namespace: str, seed: DeploymentSeed, revision: int, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replica_sets = apps.list_namespaced_replica_set(namespace, label_selector=f"app={seed.name}").items
        revisions = {
            (rs.metadata.annotations or {}).get("deployment.kubernetes.io/revision")
            for rs in replica_sets
            if rs.metadata is not None
        }
        if str(revision) in revisions:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{namespace}/{seed.name}: no ReplicaSet for revision {revision} after {timeout:.0f}s")
