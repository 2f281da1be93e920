"""Metrics fixtures: one app per backend: the sandbox's Prometheus-compatible API, a real Prometheus, the real
Azure SDK against loopback; all three serve the same incident series."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from opsgate.config import Settings
from opsgate.metrics.backends.azure import AzureBackend, AzureSettings
from opsgate.metrics.backends.base import MetricsBackend
from opsgate.metrics.backends.prometheus import PrometheusBackend, PrometheusSettings
from opsgate.metrics.server import build_capability
from opsgate.metrics.settings import MetricsSettings
from opsgate.sandbox.promapi import PromApiServer
from opsgate.sandbox.series import ShopSource
from opsgate.server import App
from tests.metrics import azure_loopback
from tests.metrics.incident import END, incident_series
from tests.metrics.prometheus_fixture import prometheus  # noqa: F401  (session fixture)
from tests.support.azure import StaticTokenCredential

BACKENDS = ["sandbox", "prometheus", "azure"]
BACKEND_NAMES = {"sandbox": "prometheus", "prometheus": "prometheus", "azure": "azure"}  # the sandbox speaks Prometheus


@pytest.fixture(scope="session")
def sandbox_prometheus() -> Iterator[str]:
    """The sandbox's Prometheus-compatible API over the incident series (what the sandbox world serves)."""
    with PromApiServer(ShopSource(incident_series()), clock=lambda: END) as server:
        yield server.url


@pytest.fixture(scope="session")
def azure_endpoint() -> Iterator[azure_loopback.AzureLoopback]:
    with azure_loopback.serve(incident_series()) as loopback:
        yield loopback


def azure_settings(url: str, **overrides: Any) -> AzureSettings:
    return AzureSettings(
        endpoint=url,
        metric_namespace=azure_loopback.NAMESPACE,
        resources={"shop-aks": azure_loopback.RESOURCE_ID},
        dimensions=list(azure_loopback.DIMENSIONS),
        **overrides,
    )


def make_backend(name: str, prometheus_url: str | None, azure_url: str | None, **overrides: Any) -> MetricsBackend:
    if name == "prometheus":
        assert prometheus_url is not None
        return PrometheusBackend(PrometheusSettings(**{"url": prometheus_url, **overrides}))
    if name == "azure":
        assert azure_url is not None
        return AzureBackend(
            azure_settings(azure_url, **overrides),
            StaticTokenCredential(azure_loopback.TOKEN),
            allow_http_for_tests=True,
        )
    raise ValueError(f"no metrics backend {name!r} in the tests")


@pytest.fixture
async def metrics_app(
    make_app: Callable[..., App], request: pytest.FixtureRequest
) -> AsyncIterator[Callable[..., App]]:
    """Build an app with the metrics capability over one backend; the clock is the incident's END."""
    built: list[App] = []

    def build(backend: str, settings: Settings | None = None, **overrides: Any) -> App:
        prometheus_url = request.getfixturevalue("prometheus") if backend == "prometheus" else None
        if backend == "sandbox":
            prometheus_url = request.getfixturevalue("sandbox_prometheus")
        azure_url = request.getfixturevalue("azure_endpoint").url if backend == "azure" else None
        kind = "prometheus" if backend == "sandbox" else backend
        capability = build_capability(
            MetricsSettings.model_validate({"backend": kind}),
            make_backend(kind, prometheus_url, azure_url, **overrides),
            lambda: END,
        )
        kw: dict[str, Any] = {"capabilities": [capability]}
        if settings is not None:
            kw["settings"] = settings
        app = make_app((), **kw)
        built.append(app)
        return app

    yield build
    for app in built:
        await app.aclose()
