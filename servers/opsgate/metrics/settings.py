"""The `[metrics]` configuration section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from opsgate.config import Settings, load_section
from opsgate.metrics.backend_settings import AzureSettings, PrometheusSettings

KEY_METRICS = ["latency_p99_seconds", "error_ratio", "request_rate", "cpu_usage_cores", "memory_usage_bytes"]


class MetricsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["prometheus", "azure"] = "prometheus"
    key_metrics: list[str] = Field(
        default_factory=lambda: list(KEY_METRICS),
        min_length=1,
        description="Metrics metrics_anomalies scans when the call names none",
    )
    default_points: int = Field(default=40, ge=2, le=2000, description="Default point budget per series")
    base_step_s: float = Field(default=60.0, gt=0, description="The finest step used by default (scrape interval)")
    max_series: int = Field(default=2000, ge=1, description="Series a backend answer may hold before it is refused")
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    azure: AzureSettings = Field(default_factory=AzureSettings)


def validate(settings: Settings) -> MetricsSettings:
    """The `[metrics]` section parsed; ConfigError names a bad key."""
    return load_section("metrics", settings.metrics, MetricsSettings)
