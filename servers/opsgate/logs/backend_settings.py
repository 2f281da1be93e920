"""Settings of the logs backends, apart from the backends so `[logs]` can be checked at start-up without
importing their clients (kubernetes, azure). Each backend module re-exports its own."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from opsgate.logs import kql


class AzureSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workspace_id: str = Field(default="", description="Log Analytics workspace id (a GUID)")
    endpoint: str = Field(default="https://api.loganalytics.io", description="Sovereign clouds have their own")
    table: str = Field(default="ContainerLogV2", pattern=kql.IDENTIFIER)
    time_column: str = Field(default="TimeGenerated", pattern=kql.IDENTIFIER)
    message_column: str = Field(default="LogMessage", pattern=kql.IDENTIFIER)
    service_column: str = Field(default="ContainerName", pattern=kql.IDENTIFIER)
    namespace_column: str = Field(default="PodNamespace", pattern=kql.IDENTIFIER)
    level_column: str = Field(default="LogLevel", pattern=kql.IDENTIFIER)
    source_column: str = Field(default="PodName", pattern=kql.IDENTIFIER)
    labels_column: str | None = Field(
        default=None, pattern=kql.IDENTIFIER, description="e.g. KubernetesMetadata.podLabels"
    )
    max_rows: int = Field(default=30000, ge=1, le=500000)
    timeout_s: float = Field(default=20.0, gt=0)
    retries: int = Field(default=1, ge=0, le=10)

    def columns(self) -> kql.Columns:
        return kql.Columns(
            table=self.table,
            time=self.time_column,
            message=self.message_column,
            service=self.service_column,
            namespace=self.namespace_column,
            level=self.level_column,
            source=self.source_column,
            labels=self.labels_column,
        )


class KubernetesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kubeconfig: Path | None = Field(default=None, description="Default: in-cluster, then ~/.kube/config")
    context: str | None = None
    namespace: str = Field(default="default", description="Namespace when a call names none")
    service_label: str = Field(default="app", description="Pod label that names the service")
    max_pods: int = Field(default=20, ge=1, le=500)
    max_bytes_per_container: int = Field(default=8 << 20, ge=1024)
    timeout_s: float = Field(default=15.0, gt=0)


class LokiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(default="http://127.0.0.1:3100", description="Loki base URL (or the gateway's)")
    tenant: str | None = Field(default=None, description="X-Scope-OrgID for multi-tenant Loki")
    bearer_token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    service_label: str = "service_name"
    namespace_label: str = "namespace"
    level_label: str = Field(default="detected_level", description="Label or structured metadata with the level")
    max_entries: int = Field(default=5000, ge=1, description="Loki's max_entries_limit_per_query")
    timeout_s: float = Field(default=15.0, gt=0)
    verify_tls: bool = True
