"""The alerts capability: `alerts_list` and `alert_silence`, over Prometheus Alertmanager's v2 API.

Alert annotations (summary, description, runbook URL) are text from the monitored system: they are
returned as data and marked untrusted. `alert_silence` is a write like any other: dry run by default
(a preview of the alerts it would silence), a bounded duration and a comment, and the policy decides
(confirmation outside production, approval in production, never longer than the policy's maximum; its
facts tell the policy the duration and whether the matchers would silence everything).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from opsgate.alerts.backends.alertmanager import AlertmanagerBackend, JsonObject
from opsgate.alerts.backends.azure import AzureAlertsBackend, AzureAlertsSettings
from opsgate.alerts.backends.prometheus import PrometheusAlertsBackend
from opsgate.alerts.contracts import (
    LIST_UNTRUSTED,
    SILENCE_UNTRUSTED,
    AlertItem,
    ListInput,
    ListOutput,
    SilenceInput,
    SilenceOutput,
    duration_seconds,
)
from opsgate.config import ConfigError, Settings, load_section
from opsgate.contracts import BackendUnavailable, Capability, Contract, Target, ToolError
from opsgate.gate import CallContext

TEXT_LIMIT = 400
_SEVERITY_RANK = {"critical": 0, "page": 0, "error": 1, "high": 1, "warning": 2, "medium": 2, "info": 3, "low": 3}


class AlertsSettings(BaseModel):
    """`[alerts]`: the Alertmanager to read and silence through, and optionally Prometheus for pending alerts."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["alertmanager", "azure"] = Field(
        default="alertmanager", description="alertmanager (alertmanager_url) or azure ([alerts.azure])"
    )
    alertmanager_url: str | None = Field(default=None, description="e.g. http://alertmanager:9093")
    azure: AzureAlertsSettings | None = None
    prometheus_url: str | None = Field(
        default=None,
        description="e.g. http://prometheus:9090: its /api/v1/alerts lists pending alerts (state='pending')",
    )
    timeout_s: float = Field(default=8.0, gt=0, le=60)


class _Unconfigured:
    name = "unconfigured"

    async def alerts(self, filters: list[str], *, silenced: bool) -> list[JsonObject]:
        raise BackendUnavailable("no alert source is configured: set [alerts] alertmanager_url (or prometheus_url)")

    async def create_silence(self, *args: Any) -> str:
        raise BackendUnavailable("no alert source is configured: set [alerts] alertmanager_url")

    async def aclose(self) -> None:
        return None


def _clip(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = " ".join(value.split())
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _matches(op: str, value: str, actual: str) -> bool:
    if op in ("=", "!="):
        return (actual == value) == (op == "=")
    try:
        found = re.fullmatch(value, actual) is not None
    except re.error:
        return False
    return found == (op == "=~")


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def alert_item(alert: JsonObject) -> AlertItem:
    labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
    annotations = alert.get("annotations") or {}
    status = alert.get("status") or {}
    silenced = [str(s) for s in status.get("silencedBy") or []]
    state = str(status.get("state") or "active")
    if state == "active":
        state = "firing"
    elif state == "suppressed":
        state = "silenced" if silenced else "inhibited"
    return AlertItem(
        name=labels.get("alertname", ""),
        state=state,
        severity=labels.get("severity"),
        labels=labels,
        summary=_clip(annotations.get("summary")),
        description=_clip(annotations.get("description") or annotations.get("message")),
        runbook_url=_clip(annotations.get("runbook_url") or annotations.get("runbook")),
        started=_time(alert.get("startsAt")),
        fingerprint=alert.get("fingerprint"),
        silenced_by=silenced,
    )


class AlertsService:
    def __init__(
        self,
        backend: AlertmanagerBackend | AzureAlertsBackend | _Unconfigured,
        prometheus: PrometheusAlertsBackend | None = None,
    ) -> None:
        self.backend = backend
        self.prometheus = prometheus

    @property
    def source_name(self) -> str:
        if self.prometheus is None:
            return self.backend.name
        if isinstance(self.backend, _Unconfigured):
            return self.prometheus.name
        return f"{self.backend.name}+{self.prometheus.name}"

    async def _raw(self, args: ListInput, filters: list[str]) -> list[JsonObject]:
        alertmanager = not isinstance(self.backend, _Unconfigured)
        raw: list[JsonObject] = []
        if args.state != "pending" and (alertmanager or self.prometheus is None):
            raw += await self.backend.alerts(filters, silenced=args.state != "firing")
        if self.prometheus is not None:
            # firing alerts come from Alertmanager when there is one (it knows silences); pending only here
            wanted = {"pending"} if alertmanager else {"pending", "firing"}
            raw += [a for a in await self.prometheus.alerts() if a["status"]["state"] in wanted]
        elif args.state == "pending":
            raise BackendUnavailable("pending alerts are only in Prometheus: set [alerts] prometheus_url")
        return raw

    async def list_alerts(self, args: ListInput, ctx: CallContext) -> ListOutput:
        filters = []
        for label, value in (("namespace", args.namespace), ("severity", args.severity), ("alertname", args.name)):
            if value is not None:
                filters.append(f'{label}="{_quote(value)}"')
        items = [alert_item(a) for a in await self._raw(args, filters)]
        # the same filters again, for Alertmanager-compatible sources that ignore `filter`
        for label, value in (("namespace", args.namespace), ("severity", args.severity), ("alertname", args.name)):
            if value is not None:
                items = [i for i in items if i.labels.get(label) == value]
        if args.service is not None:
            items = [
                i for i in items if args.service in (i.labels.get("service"), i.labels.get("job"), i.labels.get("app"))
            ]
        if args.state == "firing":
            items = [i for i in items if i.state == "firing"]
        elif args.state == "silenced":
            items = [i for i in items if i.state in ("silenced", "inhibited")]
        elif args.state == "pending":
            items = [i for i in items if i.state == "pending"]
        items.sort(key=lambda i: (-(i.started.timestamp() if i.started else 0.0), i.name))
        items.sort(key=lambda i: _SEVERITY_RANK.get(i.severity or "", 4))
        by_name: dict[str, int] = {}
        for item in items:
            by_name[item.name] = by_name.get(item.name, 0) + 1
        top = items[0].name if items else None
        step = (
            f"find the runbook with runbook_search(alert={top!r}); check the service with metrics and workload_status"
            if top
            else "nothing is firing for these filters"
        )
        return ListOutput(
            items=items[: args.limit],
            truncated=len(items) > args.limit,
            limit=args.limit,
            backend=self.source_name,
            by_name=by_name,
            next_step=step,
            untrusted_fields=list(LIST_UNTRUSTED),
        )

    async def _matching(self, args: SilenceInput) -> list[AlertItem]:
        if not getattr(self.backend, "silences_supported", True):
            raise ToolError(
                f"alert_silence is not available for {self.backend.name} alerts: "
                "silences there are alert processing rules, which opsgate does not create"
            )
        filters = [f'{m.name}{m.op}"{_quote(m.value)}"' for m in args.matchers]
        items = [alert_item(a) for a in await self.backend.alerts(filters, silenced=False)]
        # the matchers again, for sources that ignore `filter`: a preview must not overstate what matches
        return [i for i in items if all(_matches(m.op, m.value, i.labels.get(m.name, "")) for m in args.matchers)]

    async def facts(self, args: SilenceInput, ctx: CallContext) -> dict[str, Any]:
        matched = await self._matching(args)
        return {
            "duration_s": duration_seconds(args.duration),
            "matches_everything": all(m.matches_empty() for m in args.matchers),
            "alerts_matched": len(matched),
            "alertnames": sorted({a.name for a in matched}),
        }

    async def silence(self, args: SilenceInput, ctx: CallContext) -> SilenceOutput:
        matched = await self._matching(args)
        starts = datetime.now(UTC)
        seconds = duration_seconds(args.duration)
        ends = starts + timedelta(seconds=seconds)
        silence_id = None
        if not args.dry_run:
            body = [
                {"name": m.name, "value": m.value, "isRegex": m.op in ("=~", "!~"), "isEqual": m.op in ("=", "=~")}
                for m in args.matchers
            ]
            silence_id = await self.backend.create_silence(
                body, starts, ends, f"opsgate:{ctx.caller.subject}", args.comment
            )
        names = [f"{a.name}{{{a.labels.get('namespace', '')},{a.labels.get('service', '')}}}" for a in matched]
        if args.dry_run:
            step = "dry run only; to create it, call again with dry_run=false (it may need a confirmation or approval)"
        else:
            step = f"silence {silence_id} is active until {ends.isoformat(timespec='minutes')}; it expires on its own"
        return SilenceOutput(
            dry_run=args.dry_run,
            applied=silence_id is not None,
            created=silence_id is not None,
            silence_id=silence_id,
            matchers=[f"{m.name}{m.op}{m.value!r}" for m in args.matchers],
            starts=starts,
            ends=ends,
            duration_s=seconds,
            alerts_matched=len(matched),
            matched=names[:20],
            backend=self.backend.name,
            next_step=step,
        )


def _list_target(args: ListInput) -> Target:
    return Target(namespace=args.namespace, service=args.service)


def _silence_target(args: SilenceInput) -> Target:
    return Target(namespace=args.namespace, service=args.service)


def _summarize_list(out: ListOutput) -> str:
    if not out.items:
        return f"No alerts ({out.next_step})."
    top = out.items[0]
    names = ", ".join(f"{n} x{c}" for n, c in list(out.by_name.items())[:5])
    more = " (truncated)" if out.truncated else ""
    return f"{len(out.items)} alert(s){more}: {names}. Most severe: {top.name} ({top.severity}). Next: {out.next_step}."


def _summarize_silence(out: SilenceOutput) -> str:
    verb = "would silence" if out.dry_run else f"silence {out.silence_id} silences"
    scope = ", ".join(out.matchers)
    return f"{verb} {out.alerts_matched} firing alert(s) for {out.duration_s // 60} min ({scope}). {out.next_step}."


def build(settings: Settings) -> Capability:
    config = load_section("alerts", settings.alerts, AlertsSettings)
    backend: AlertmanagerBackend | AzureAlertsBackend | _Unconfigured
    if config.backend == "azure":
        if config.azure is None:
            raise ConfigError('[alerts] backend = "azure" needs an [alerts.azure] table with subscription_id')
        backend = AzureAlertsBackend(config.azure)
    elif config.alertmanager_url:
        backend = AlertmanagerBackend(config.alertmanager_url, timeout_s=config.timeout_s)
    else:
        backend = _Unconfigured()
    return capability(config, backend)


def capability(config: AlertsSettings, backend: AlertmanagerBackend | AzureAlertsBackend | _Unconfigured) -> Capability:
    """The alerts capability over `backend` (and Prometheus for pending alerts when configured)."""
    prometheus = (
        PrometheusAlertsBackend(config.prometheus_url, timeout_s=config.timeout_s) if config.prometheus_url else None
    )
    service = AlertsService(backend, prometheus)
    contracts: list[Contract[Any, Any]] = [
        Contract(
            name="alerts_list",
            capability="alerts",
            title="Firing alerts",
            purpose=(
                "Firing (or silenced) alerts with labels, summary, runbook URL and start time, filtered by "
                "namespace, service, severity and name; most severe first. Leads to runbook_search(alert=...)."
            ),
            input_model=ListInput,
            output_model=ListOutput,
            scope="read",
            risk="low",
            handler=service.list_alerts,
            target=_list_target,
            summarize=_summarize_list,
            untrusted_output=True,
            untrusted_fields=LIST_UNTRUSTED,
            timeout_s=config.timeout_s * 2 + 5,
        ),
        Contract(
            name="alert_silence",
            capability="alerts",
            title="Silence alerts",
            purpose=(
                "Silence the alerts matching all matchers for a bounded time with a comment. Dry run by default "
                "(shows the alerts it would silence); policy caps the duration and may ask for an approval."
            ),
            input_model=SilenceInput,
            output_model=SilenceOutput,
            scope="write",
            risk="low",
            handler=service.silence,
            target=_silence_target,
            summarize=_summarize_silence,
            facts=service.facts,
            untrusted_fields=SILENCE_UNTRUSTED,
            timeout_s=config.timeout_s * 3 + 5,
        ),
    ]
    closers: list[Callable[[], Awaitable[None]]] = [backend.aclose]
    if prometheus is not None:
        closers.append(prometheus.aclose)
    return Capability(name="alerts", contracts=contracts, closers=closers)
