"""Azure Monitor Logs: KQL through `azure.monitor.query.aio.LogsQueryClient`, authenticated with
`azure.identity.aio.DefaultAzureCredential` unless a credential is handed in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.monitor.query import LogsQueryPartialResult, LogsQueryResult, LogsTable
from azure.monitor.query.aio import LogsQueryClient

from opsgate.contracts import BackendUnavailable, ToolError
from opsgate.logs import kql
from opsgate.logs.backend_settings import AzureSettings as AzureSettings
from opsgate.logs.backends import Fetched, remaining
from opsgate.logs.query import LogQuery
from opsgate.logs.records import LogRecord, parse_line
from opsgate.logs.severity import normalize
from opsgate.logs.timeparse import from_ns, log_time_ns, to_ns


class AzureBackend:
    name = "azure"
    filters_remotely = True

    def __init__(
        self,
        settings: AzureSettings,
        credential: AsyncTokenCredential | None = None,
        *,
        request_options: dict[str, Any] | None = None,
    ) -> None:
        """`request_options` go to every query call; tests use `{"enforce_https": False}` for a
        loopback endpoint. Production leaves it empty: bearer tokens only travel over TLS."""
        if not settings.workspace_id:
            raise ValueError("[logs.azure] workspace_id is required for the azure backend")
        self.settings = settings
        self.page_cap = settings.max_rows
        self._owned_credential = credential is None
        if credential is None:
            from azure.identity.aio import DefaultAzureCredential

            credential = DefaultAzureCredential()
        self._credential = credential
        self._request_options = dict(request_options or {})
        self._client = LogsQueryClient(
            credential,
            endpoint=settings.endpoint,
            retry_total=settings.retries,
            connection_timeout=settings.timeout_s,
            read_timeout=settings.timeout_s,
        )

    def kql(self, query: LogQuery, limit: int) -> str:
        if query.raw_query is not None:
            return f"{query.raw_query}\n| take {int(limit)}"
        try:
            return kql.translate(query, self.settings.columns(), limit)
        except ValueError as exc:
            raise ToolError(str(exc)) from None

    async def fetch(self, query: LogQuery, limit: int, deadline: float) -> Fetched:
        limit = min(limit, self.page_cap)
        text = self.kql(query, limit)
        timespan = (from_ns(query.start_ns), from_ns(query.end_ns + 1000))
        workspace = self.settings.workspace_id
        try:
            result = await self._client.query_workspace(
                workspace,
                text,
                timespan=timespan,
                server_timeout=max(1, int(remaining(deadline))),
                **self._request_options,
            )
        except ClientAuthenticationError as exc:
            raise ToolError(f"Azure Monitor rejected the credential: {_first_line(exc)}") from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise BackendUnavailable(
                f"Azure Monitor at {self.settings.endpoint} is unreachable: {_first_line(exc)}"
            ) from None
        except HttpResponseError as exc:
            status = exc.status_code or 0
            if status in (401, 403):
                raise ToolError(f"Azure Monitor rejected the credential ({status}): {_first_line(exc)}") from None
            if status == 429 or status >= 500:
                raise BackendUnavailable(f"Azure Monitor answered {status}: {_first_line(exc)}") from None
            raise ToolError(f"Azure Monitor rejected the query ({status}): {_first_line(exc)}") from None
        notes: list[str] = []
        if isinstance(result, LogsQueryPartialResult):
            error = result.partial_error
            detail = f"{getattr(error, 'code', '')}: {getattr(error, 'message', '')}".strip(": ")
            notes.append(f"partial result from Azure Monitor ({detail}); some lines may be missing")
            tables = result.partial_data or []
        elif isinstance(result, LogsQueryResult):
            tables = result.tables
        else:
            raise ToolError(f"Azure Monitor returned an unexpected result: {type(result).__name__}")
        records = [r for table in tables[:1] for r in self._records(table)]
        # a total order, also within a timestamp: a cursor that continues at a timestamp skips the lines
        # it returned there by count, so every page must list them alike
        records.sort(key=lambda r: (r.ts_ns, r.source, r.message), reverse=query.order == "newest")
        return Fetched(records=records[:limit], query=text, notes=notes)

    def _records(self, table: LogsTable) -> list[LogRecord]:
        s = self.settings
        index = {name: i for i, name in enumerate(table.columns)}
        if s.time_column not in index:
            raise ToolError(f"Azure Monitor result has no {s.time_column} column (columns: {', '.join(table.columns)})")
        records = []
        for row in table.rows:
            cells = list(row)

            def cell(column: str, cells: list[Any] = cells) -> Any:
                return cells[index[column]] if column in index else None

            when = cell(s.time_column)
            ts = to_ns(when) if isinstance(when, datetime) else log_time_ns(when)
            if ts is None:
                continue
            message = cell(s.message_column)
            text = message if isinstance(message, str) else ("" if message is None else str(message))
            parsed = parse_line(text) if text.startswith("{") else None
            records.append(
                LogRecord(
                    ts_ns=ts,
                    service=str(cell(s.service_column) or "unknown"),
                    level=normalize(cell(s.level_column)) or (parsed.level if parsed else None),
                    message=parsed.message if parsed else text,
                    source=str(cell(s.source_column) or ""),
                )
            )
        return records

    async def aclose(self) -> None:
        await self._client.close()
        if self._owned_credential:
            await self._credential.close()


def _first_line(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return " ".join(str(text).split())[:400]
