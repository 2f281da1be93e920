"""Public entry point of the loopback emulation of the Kubernetes API (not a real API server).

It speaks the real `apps/v1`, `core/v1` and `events.k8s.io/v1` REST wire format on 127.0.0.1 so the
official `kubernetes` Python client and `kubectl` talk to it unchanged (watches, server-side Tables),
and emulates the deployment controller (ReplicaSets per template, revisions, rollout status) and a
kubelet (`PodBehavior`: restarts with OOMKilled/Error terminations, CrashLoopBackOff, image pull and
config errors, readiness that never comes or flaps, and the events a real cluster records for them).

    cluster = KubeCluster(ControllerConfig(progress_deadline_seconds=2))
    seed_namespace(cluster, "shop", [DeploymentSeed("checkout", revisions=7)])
    cluster.faults.forbid("patch", "deployments")            # RBAC 403 on patch
    cluster.faults.mark_image_bad("registry.example.com/shop/checkout:v8")
    cluster.logs.set_provider(lambda pod: [...])              # LogLine per pod/container
    cluster.behaviors.add(PodBehavior(image=".../payments:v3", exits="OOMKilled", run_seconds=1800))
    cluster.behaviors.add(PodBehavior(labels={"app": "checkout"}, readiness="flapping", share=0.3))
    cluster.record_event(deployment, "FailedCreate", "...", event_type="Warning", count=5, first=t0, last=t1)
    with KubeApiServer(cluster) as server:
        apps = kubernetes.client.AppsV1Api(server.api_client())
"""

from opsgate.sandbox.kube.cluster import KubeCluster
from opsgate.sandbox.kube.controller import ControllerConfig
from opsgate.sandbox.kube.errors import KubeApiError
from opsgate.sandbox.kube.faults import Fault, FaultRules
from opsgate.sandbox.kube.kubelet import PodBehavior, PodBehaviors
from opsgate.sandbox.kube.logs import LogLine, LogOptions, LogProvider, PodLogs, PodRef
from opsgate.sandbox.kube.objects import (
    CHANGE_CAUSE_ANNOTATION,
    DEPLOYMENTS,
    EVENTS,
    EVENTS_V1,
    NAMESPACES,
    NEVER_READY_ANNOTATION,
    PODS,
    REPLICASETS,
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
)
from opsgate.sandbox.kube.seed import (
    DeploymentSeed,
    deployment_manifest,
    revision_patch,
    seed_namespace,
    seed_namespace_via_api,
)
from opsgate.sandbox.kube.server import KubeApiServer

__all__ = [
    "CHANGE_CAUSE_ANNOTATION",
    "DEPLOYMENTS",
    "EVENTS",
    "EVENTS_V1",
    "NAMESPACES",
    "NEVER_READY_ANNOTATION",
    "PODS",
    "REPLICASETS",
    "REVISION_ANNOTATION",
    "REVISION_HISTORY_ANNOTATION",
    "ControllerConfig",
    "DeploymentSeed",
    "Fault",
    "FaultRules",
    "KubeApiError",
    "KubeApiServer",
    "KubeCluster",
    "LogLine",
    "LogOptions",
    "LogProvider",
    "PodBehavior",
    "PodBehaviors",
    "PodLogs",
    "PodRef",
    "deployment_manifest",
    "revision_patch",
    "seed_namespace",
    "seed_namespace_via_api",
]
