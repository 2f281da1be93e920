"""Build an opsgate app serving the logs capability over each backend, seeded with the corpus."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import kubernetes.client

from opsgate.config import Settings
from opsgate.logs.server import capability, make_backend
from opsgate.logs.settings import load
from opsgate.server import App
from tests.logs import corpus
from tests.logs.azure_loopback import AzureLoopback
from tests.support.azure import StaticTokenCredential

WORKSPACE = "00000000-0000-0000-0000-00000000beef"


def files_app(make_app: Callable[..., App], tmp_path: Path, base: datetime, **logs: Any) -> App:
    section = {**corpus.write_files(base, tmp_path / "logs"), **logs}
    return make_app(("logs",), settings=Settings(state_dir=tmp_path / "state", logs=section))


def loki_app(make_app: Callable[..., App], tmp_path: Path, url: str, **loki: Any) -> App:
    section = {"backend": "loki", "loki": {"url": url, "timeout_s": 5, **loki}}
    return make_app(("logs",), settings=Settings(state_dir=tmp_path / "state", logs=section))


def azure_app(make_app: Callable[..., App], tmp_path: Path, endpoint: str, credential: Any = None, **logs: Any) -> App:
    config = load(
        {
            "backend": "azure",
            "azure": {"workspace_id": WORKSPACE, "endpoint": endpoint, "retries": 0, "timeout_s": 5},
            **logs,
        }
    )
    backend = make_backend(
        config, azure_credential=credential or StaticTokenCredential(), azure_request_options={"enforce_https": False}
    )
    return make_app((), settings=Settings(state_dir=tmp_path / "state"), capabilities=[capability(config, backend)])


def seed_kube_pods(kube_api: Any, kube_client: kubernetes.client.ApiClient, base: datetime) -> None:
    """Put the corpus lines on the first pod of each service (the other replicas log nothing)."""
    core = kubernetes.client.CoreV1Api(kube_client)
    for service in ("checkout", "payments"):
        deadline = time.monotonic() + 5
        pods: list[Any] = []
        while not pods and time.monotonic() < deadline:
            pods = sorted(
                core.list_namespaced_pod("shop", label_selector=f"app={service}").items, key=lambda p: p.metadata.name
            )
            if not pods:
                time.sleep(0.05)
        assert pods, f"the emulated cluster has no {service} pods"
        kube_api.cluster.logs.put(
            "shop",
            pods[0].metadata.name,
            [(corpus.when(base, e), corpus.json_line(base, e)) for e in corpus.events_of(service)],
        )


def kube_app(make_app: Callable[..., App], tmp_path: Path, kubeconfig: Path) -> App:
    section = {"backend": "kubernetes", "kubernetes": {"kubeconfig": str(kubeconfig), "namespace": "shop"}}
    return make_app(("logs",), settings=Settings(state_dir=tmp_path / "state", logs=section))


__all__ = ["AzureLoopback", "azure_app", "files_app", "kube_app", "loki_app", "seed_kube_pods"]
