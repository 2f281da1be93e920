"""Azure Monitor alerts through the maintained SDK (`azure-mgmt-alertsmanagement`, AlertsManagementClient
`alerts.get_all`) with DefaultAzureCredential unless a credential is passed in.

Each alert is returned in Alertmanager's v2 shape so `alerts_list` treats both sources alike: labels are
`alertname` (the alert's name), `severity` (Sev0 critical, Sev1 error, Sev2 warning, Sev3/Sev4 info),
`resource_group`, `resource`, `resource_type`, `monitor_service`, `signal_type`, plus the dimensions of a
metric alert's condition (so an AKS alert split by `namespace`/`service` filters like a Prometheus one);
the description is an annotation (untrusted text). An alert whose actions an alert processing rule
suppresses is `suppressed`; only `Fired` alerts are listed. Silences in Azure are alert processing rules,
which this backend does not create.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from opsgate.contracts import BackendUnavailable, ToolError

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

JsonObject = dict[str, Any]
SEVERITY = {"Sev0": "critical", "Sev1": "error", "Sev2": "warning", "Sev3": "info", "Sev4": "info"}
SEV_OF = {"critical": "Sev0", "error": "Sev1", "warning": "Sev2"}


class AzureAlertsSettings(BaseModel):
    """`[alerts.azure]`: which subscription's Azure Monitor alerts to list."""

    model_config = ConfigDict(extra="forbid")

    subscription_id: str = Field(min_length=1, max_length=64)
    resource_group: str | None = Field(default=None, description="Only alerts on resources in this group")
    endpoint: str = Field(default="https://management.azure.com", description="The ARM endpoint")
    time_range: str = Field(default="1d", pattern=r"^(1h|1d|7d|30d)$", description="How far back to look")


def _dimensions(context: Any) -> dict[str, str]:
    """`context.condition.allOf[].dimensions[]` of the common alert schema (metric alerts)."""
    out: dict[str, str] = {}
    try:
        criteria = context["context"]["condition"]["allOf"]
    except (KeyError, TypeError):
        return out
    for criterion in criteria if isinstance(criteria, list) else []:
        for dim in (criterion.get("dimensions") or []) if isinstance(criterion, dict) else []:
            if isinstance(dim, dict) and isinstance(dim.get("name"), str) and isinstance(dim.get("value"), str):
                out.setdefault(dim["name"], dim["value"])
    return out


class AzureAlertsBackend:
    name = "azure"
    silences_supported = False

    def __init__(
        self,
        config: AzureAlertsSettings,
        credential: AsyncTokenCredential | None = None,
        *,
        allow_http_for_tests: bool = False,
    ) -> None:
        from azure.mgmt.alertsmanagement.aio import AlertsManagementClient

        self.config = config
        self._owned_credential = credential is None
        if credential is None:
            from azure.identity.aio import DefaultAzureCredential

            credential = DefaultAzureCredential()
        self.credential = credential
        self.client = AlertsManagementClient(
            credential, config.subscription_id, base_url=config.endpoint, retry_total=2, retry_backoff_factor=0.2
        )
        # The SDK refuses to send a bearer token over plain http; only tests against loopback lift that.
        self._call_options: dict[str, Any] = {"enforce_https": False} if allow_http_for_tests else {}

    async def aclose(self) -> None:
        await self.client.close()
        if self._owned_credential:
            close = getattr(self.credential, "close", None)
            if close is not None:
                await close()

    async def alerts(self, filters: list[str], *, silenced: bool) -> list[JsonObject]:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

        severity = next((SEV_OF.get(f.split('"')[1]) for f in filters if f.startswith("severity=")), None)
        out: list[JsonObject] = []
        try:
            pages = self.client.alerts.get_all(
                target_resource_group=self.config.resource_group,
                monitor_condition="Fired",
                severity=severity,
                include_context=True,
                time_range=self.config.time_range,
                sort_by="startDateTime",
                sort_order="desc",
                **self._call_options,
            )
            async for alert in pages:
                item = self._item(alert)
                if silenced or item["status"]["state"] == "active":
                    out.append(item)
                if len(out) >= 1000:
                    break
        except ClientAuthenticationError as exc:
            if exc.status_code is not None:  # ARM answered 401/403 (the SDK's error map raises this class)
                message = exc.message.splitlines()[0][:300] if exc.message else ""
                raise ToolError(f"Azure Monitor refused the credential (HTTP {exc.status_code}): {message}") from None
            raise ToolError(f"no usable Azure credential for Azure Monitor alerts: {exc.message}") from None
        except ServiceRequestError as exc:
            raise BackendUnavailable(f"Azure Monitor at {self.config.endpoint} is unreachable: {exc.message}") from None
        except HttpResponseError as exc:
            status = exc.status_code or 0
            message = exc.message.splitlines()[0][:300] if exc.message else ""
            if status in (401, 403):
                raise ToolError(f"Azure Monitor refused the credential (HTTP {status}): {message}") from None
            if status >= 500 or status == 429:
                raise BackendUnavailable(f"Azure Monitor failed to list alerts (HTTP {status}): {message}") from None
            raise ToolError(f"Azure Monitor rejected the alerts request (HTTP {status}): {message}") from None
        return out

    def _item(self, alert: Any) -> JsonObject:
        props = alert.properties
        essentials = props.essentials if props is not None else None
        labels: dict[str, str] = {"alertname": str(alert.name or "")}
        annotations: dict[str, str] = {}
        starts = None
        suppressed = False
        if essentials is not None:
            values = {
                "severity": SEVERITY.get(str(essentials.severity or ""), str(essentials.severity or "").lower()),
                "resource_group": essentials.target_resource_group,
                "resource": essentials.target_resource_name,
                "resource_type": essentials.target_resource_type,
                "monitor_service": essentials.monitor_service,
                "signal_type": essentials.signal_type,
            }
            labels.update({k: str(v) for k, v in values.items() if v})
            if essentials.description:
                annotations["description"] = str(essentials.description)
            if essentials.start_date_time is not None:
                starts = essentials.start_date_time.isoformat().replace("+00:00", "Z")
            suppressed = bool(essentials.action_status and essentials.action_status.is_suppressed)
        for name, value in _dimensions(props.context if props is not None else None).items():
            labels.setdefault(name, value)
        return {
            "labels": labels,
            "annotations": annotations,
            "startsAt": starts,
            "fingerprint": alert.id,
            "status": {
                "state": "suppressed" if suppressed else "active",
                "silencedBy": ["alert-processing-rule"] if suppressed else [],
                "inhibitedBy": [],
            },
        }

    async def create_silence(self, *args: Any) -> str:
        raise ToolError(
            "alert_silence is not available for Azure Monitor alerts: silences there are alert processing rules"
        )
