"""`KubeApiServer`: runs the loopback Kubernetes API emulation on 127.0.0.1 in a background thread.

    with KubeApiServer(cluster) as server:
        api = kubernetes.client.AppsV1Api(server.api_client())
        server.write_kubeconfig(tmp_path / "kubeconfig")   # for code that loads a kubeconfig

A second thread ticks the deployment controller every `tick_seconds`, so rollouts progress on their
own; pass `tick_seconds=None` to drive them by hand with `cluster.tick()`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType
from typing import Self

import kubernetes.client
import yaml

from opsgate.sandbox.kube.app import create_app
from opsgate.sandbox.kube.cluster import KubeCluster
from opsgate.sandbox.loopback import LOOPBACK, LoopbackApp

CONTEXT_NAME = "opsgate-sandbox"


class KubeApiServer:
    def __init__(self, cluster: KubeCluster | None = None, *, tick_seconds: float | None = 0.05, port: int = 0) -> None:
        self.cluster = cluster or KubeCluster()
        self.tick_seconds = tick_seconds
        self._requested_port = port
        self._port: int | None = None
        self._http: LoopbackApp | None = None
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("KubeApiServer is not running: call start() or use it as a context manager")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 10.0) -> Self:
        if self._http is not None:
            raise RuntimeError("KubeApiServer is already running")
        self._stopping.clear()
        http = LoopbackApp(create_app(self.cluster), "the Kubernetes API emulation", self._requested_port, graceful_s=1)
        try:
            http.start(timeout)
        finally:
            self._port = http.port
        self._http = http
        if self.tick_seconds:
            self._ticker = threading.Thread(
                target=self._tick_forever, args=(self.tick_seconds,), name="kube-controller", daemon=True
            )
            self._ticker.start()
        return self

    def _tick_forever(self, interval: float) -> None:
        while not self._stopping.wait(interval):
            self.cluster.tick()

    def stop(self) -> None:
        self._stopping.set()
        if self._http is not None:
            self._http.stop()
        if self._ticker is not None:
            self._ticker.join(timeout=10)
        self._http, self._ticker = None, None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # --- client wiring --------------------------------------------------------------------------

    def kubeconfig(self, namespace: str = "default") -> dict[str, object]:
        """A kubeconfig document (plain HTTP, no credentials) whose current context is this server."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": CONTEXT_NAME, "cluster": {"server": self.url}}],
            "users": [{"name": CONTEXT_NAME, "user": {}}],
            "contexts": [
                {
                    "name": CONTEXT_NAME,
                    "context": {"cluster": CONTEXT_NAME, "user": CONTEXT_NAME, "namespace": namespace},
                }
            ],
            "current-context": CONTEXT_NAME,
        }

    def write_kubeconfig(self, path: Path | str, namespace: str = "default") -> Path:
        target = Path(path)
        target.write_text(yaml.safe_dump(self.kubeconfig(namespace), sort_keys=False))
        return target

    def client_configuration(self) -> kubernetes.client.Configuration:
        return kubernetes.client.Configuration(host=self.url)

    def api_client(self) -> kubernetes.client.ApiClient:
        return kubernetes.client.ApiClient(self.client_configuration())
