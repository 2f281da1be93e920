"""Azure Monitor Metrics through the Azure SDK's `MetricsClient` (azure-monitor-querymetrics).

One batch call (`metrics:getBatch`) per query covers every configured resource; each returned time
series becomes one series labelled with its resource's name and its dimension values. Label
matchers and aggregations are then evaluated in process, as for the sandbox, so a typed query means
the same on every backend. Authentication: azure-identity's DefaultAzureCredential (managed
identity, workload identity, environment, Azure CLI ...), unless a credential is passed in.

The SDK retries 408/429/5xx itself (honouring Retry-After); opsgate bounds that with `retry_total`
and an overall deadline of `timeout_s`, and reports the last status the service gave.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from opsgate.contracts import BackendUnavailable, ToolError
from opsgate.metrics.aggregate import evaluate
from opsgate.metrics.backend_settings import AzureSettings as AzureSettings
from opsgate.metrics.backend_settings import TimeAggregation as TimeAggregation
from opsgate.metrics.backends.base import Series
from opsgate.metrics.selection import Selection

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

# The time grains Azure Monitor accepts, in seconds.
GRAINS_S = (60, 300, 900, 1800, 3600, 21_600, 43_200, 86_400)
INSTANT_LOOKBACK_S = 300.0
RESOURCE_LABEL = "resource"


def _grain(step: float) -> int:
    return next((g for g in GRAINS_S if g >= step), GRAINS_S[-1])


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class _LastAnswer:
    """What the service said last (the SDK retries out of sight; this is for the error message)."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.retry_after: str | None = None
        self.attempts = 0

    def __call__(self, response: Any) -> None:
        http = response.http_response
        self.attempts += 1
        self.status = http.status_code
        self.retry_after = http.headers.get("Retry-After")

    def describe(self) -> str:
        if self.status is None:
            return "no answer"
        after = f", Retry-After {self.retry_after}s" if self.retry_after else ""
        return f"last answer HTTP {self.status}{after} after {self.attempts} attempt(s)"


class AzureBackend:
    name = "azure"

    def __init__(
        self,
        config: AzureSettings,
        credential: AsyncTokenCredential | None = None,
        *,
        allow_http_for_tests: bool = False,
    ) -> None:
        from azure.monitor.querymetrics.aio import MetricsClient

        self.config = config
        self._owned_credential = credential is None
        if credential is None:
            from azure.identity.aio import DefaultAzureCredential

            credential = DefaultAzureCredential()
        self.credential = credential
        kwargs: dict[str, Any] = {
            "retry_total": config.retry_total,
            "retry_backoff_factor": 0.2,
            "retry_backoff_max": config.retry_backoff_max_s,
        }
        if config.audience:
            kwargs["audience"] = config.audience
        self.client = MetricsClient(config.endpoint, credential, **kwargs)
        # The SDK refuses to send a bearer token over plain http; only tests against loopback lift that.
        self._call_options: dict[str, Any] = {"enforce_https": False} if allow_http_for_tests else {}
        self._dimension_of = {label: config.label_map.get(label, label) for label in config.dimensions}
        self._label_of = {dim.lower(): label for label, dim in self._dimension_of.items()}

    def describe(self, selection: Selection) -> str:
        agg = self._time_aggregation(selection.metric or "")
        return f"azure {self.config.metric_namespace or '(default namespace)'} {agg} of {selection.promql()}"

    async def aclose(self) -> None:
        await self.client.close()
        if self._owned_credential:
            close = getattr(self.credential, "close", None)
            if close is not None:
                await close()

    def _time_aggregation(self, metric: str) -> TimeAggregation:
        return self.config.metric_time_aggregations.get(metric, self.config.time_aggregation)

    def _filter(self, selection: Selection) -> str | None:
        parts = []
        for label, dim in self._dimension_of.items():
            equal = [m.value for m in selection.matchers if m.name == label and m.op == "="]
            parts.append(f"{dim} eq {_quote(equal[0]) if equal else _quote('*')}")
        return " and ".join(parts) or None

    def _resources(self, selection: Selection) -> dict[str, str]:
        if not self.config.resources:
            raise ToolError("no Azure resources are configured: set [metrics.azure.resources] name = resource id")
        wanted = {n: r for n, r in self.config.resources.items() if selection.matches({RESOURCE_LABEL: n})}
        # only `resource` matchers can narrow the list; other labels are matched after the fetch
        only_resource = [m for m in selection.matchers if m.name == RESOURCE_LABEL]
        return wanted if only_resource else dict(self.config.resources)

    async def _fetch(self, selection: Selection, start: float, end: float, step: float) -> list[Series]:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

        if selection.raw_query is not None:
            raise ToolError("the azure backend has no raw query language here: use the typed fields")
        metric = selection.metric or ""
        resources = self._resources(selection)
        if not resources:
            return []
        grain = _grain(step)
        aggregation = self._time_aggregation(metric)
        last = _LastAnswer()
        try:
            async with asyncio.timeout(self.config.timeout_s):
                results = await self.client.query_resources(
                    resource_ids=list(resources.values()),
                    metric_namespace=self.config.metric_namespace,
                    metric_names=[metric],
                    timespan=(datetime.fromtimestamp(start - grain, UTC), datetime.fromtimestamp(end + grain, UTC)),
                    granularity=timedelta(seconds=grain),
                    aggregations=[aggregation],
                    filter=self._filter(selection),
                    raw_response_hook=last,
                    **self._call_options,
                )
        except TimeoutError:
            raise BackendUnavailable(
                f"Azure Monitor did not answer within {self.config.timeout_s:g}s ({last.describe()})"
            ) from None
        except ClientAuthenticationError as exc:
            raise ToolError(f"no usable Azure credential for Azure Monitor: {exc.message}") from None
        except HttpResponseError as exc:
            raise self._http_error(exc, metric, last) from None
        except ServiceRequestError as exc:
            raise BackendUnavailable(f"Azure Monitor at {self.config.endpoint} is unreachable: {exc.message}") from None
        by_id = {rid.lower(): name for name, rid in resources.items()}
        out: list[Series] = []
        for result in results:
            for m in result.metrics:
                # a metric's id is "<resource id>/providers/Microsoft.Insights/metrics/<name>"
                resource_id = str(m.id or "").lower().split("/providers/microsoft.insights/metrics/")[0]
                resource_name = by_id.get(resource_id)
                for ts in m.timeseries:
                    labels = {self._label_of.get(k.lower(), k): v for k, v in ts.metadata_values.items()}
                    if resource_name is not None:
                        labels[RESOURCE_LABEL] = resource_name
                    times = np.array([p.timestamp.timestamp() for p in ts.data], dtype=np.float64)
                    values = np.array(
                        [np.nan if getattr(p, aggregation) is None else getattr(p, aggregation) for p in ts.data],
                        dtype=np.float64,
                    )
                    out.append(Series(labels, times, values, metric))
        return out

    def _http_error(self, exc: Any, metric: str, last: _LastAnswer) -> ToolError:
        status = exc.status_code
        message = (exc.message or "").splitlines()[0][:300]
        retries = max(0, last.attempts - 1)
        if status == 429:
            return BackendUnavailable(
                f"Azure Monitor throttled the query (HTTP 429 Too Many Requests) and still did after "
                f"{retries} retries ({last.describe()}); try again later or narrow the query"
            )
        if status is not None and status >= 500:
            return BackendUnavailable(f"Azure Monitor failed (HTTP {status}) after {retries} retries: {message}")
        if status in (401, 403):
            return ToolError(f"Azure Monitor refused the credential (HTTP {status}): {message}")
        if status == 400 and metric and metric.lower() in message.lower():
            return ToolError(
                f"no series named {metric!r} in Azure Monitor namespace {self.config.metric_namespace!r}: {message}"
            )
        return ToolError(f"Azure Monitor rejected the query (HTTP {status}): {message}")

    async def query_range(self, selection: Selection, start: float, end: float, step: float) -> list[Series]:
        extra = max(1, round(selection.rate_window_s / step)) if selection.aggregation == "rate" else 0
        grid = start + step * np.arange(-extra, int((end - start) // step) + 1, dtype=np.float64)
        raw = await self._fetch(selection, float(grid[0]), end, step)
        if not raw:
            return []
        resampled = [Series(s.labels, grid, _resample(s, grid, max(step, _grain(step))), s.metric) for s in raw]
        out = evaluate(selection, resampled, step)
        for s in out:
            s.times, s.values = s.times[extra:], s.values[extra:]
        return out

    async def query_instant(self, selection: Selection, at: float) -> list[Series]:
        raw = await self._fetch(selection, at - INSTANT_LOOKBACK_S, at, 60.0)
        grid = np.array([at], dtype=np.float64)
        resampled = [Series(s.labels, grid, _resample(s, grid, INSTANT_LOOKBACK_S), s.metric) for s in raw]
        return evaluate(selection, resampled, 60.0)


def _resample(s: Series, grid: np.ndarray, max_age: float) -> np.ndarray:
    """The latest finite sample at or before each grid time, if at most `max_age` old (else NaN)."""
    ok = np.isfinite(s.values)
    times, values = s.times[ok], s.values[ok]
    out = np.full(grid.size, np.nan)
    if times.size == 0:
        return out
    idx = np.searchsorted(times, grid + 1e-6, side="right") - 1
    valid = idx >= 0
    age = np.where(valid, grid - times[np.clip(idx, 0, None)], np.inf)
    take = valid & (age < max_age)
    out[take] = values[idx[take]]
    return out
