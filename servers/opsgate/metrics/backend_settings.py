"""Settings of the metrics backends, apart from the backends so `[metrics]` can be checked at start-up
without importing their clients (numpy, azure). Each backend module re-exports its own."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TimeAggregation = Literal["average", "minimum", "maximum", "total", "count"]


class AzureSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(
        default="https://global.metrics.monitor.azure.com",
        description="Regional metrics endpoint, e.g. https://eastus.metrics.monitor.azure.com",
    )
    audience: str | None = Field(default=None, description="Token audience (sovereign clouds); default public cloud")
    metric_namespace: str = Field(default="", description="e.g. Microsoft.ContainerService/managedClusters")
    resources: dict[str, str] = Field(
        default_factory=dict, description="resource label value -> Azure resource id (same subscription and region)"
    )
    dimensions: list[str] = Field(default_factory=list, description="Dimensions every query splits series by")
    label_map: dict[str, str] = Field(
        default_factory=dict, description="opsgate label -> Azure dimension name, e.g. service = 'cloud/roleName'"
    )
    time_aggregation: TimeAggregation = "average"
    metric_time_aggregations: dict[str, TimeAggregation] = Field(default_factory=dict)
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="Deadline for one query, retries included")
    retry_total: int = Field(default=2, ge=0, le=10)
    retry_backoff_max_s: float = Field(default=2.0, ge=0)


class PrometheusSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(default="http://127.0.0.1:9090", description="Base URL of the Prometheus server")
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="Per-request timeout")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers (e.g. a tenant id)")
    bearer_token_file: str | None = Field(default=None, description="File holding a bearer token to send")
    verify_tls: bool = True
