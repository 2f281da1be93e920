"""Grafana Loki: LogQL `query_range` over HTTP (httpx)."""

from __future__ import annotations

from typing import Any

import httpx

from opsgate.contracts import BackendUnavailable, ToolError
from opsgate.logs import logql
from opsgate.logs.backend_settings import LokiSettings as LokiSettings
from opsgate.logs.backends import Fetched, remaining
from opsgate.logs.query import LogQuery
from opsgate.logs.records import LogRecord, parse_line
from opsgate.logs.severity import normalize

QUERY_RANGE = "/loki/api/v1/query_range"


class LokiBackend:
    name = "loki"
    filters_remotely = True

    def __init__(self, settings: LokiSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.page_cap = settings.max_entries
        headers = {"Accept": "application/json"}
        if settings.tenant:
            headers["X-Scope-OrgID"] = settings.tenant
        if settings.bearer_token is not None:
            headers["Authorization"] = f"Bearer {settings.bearer_token.get_secret_value()}"
        auth = None
        if settings.username is not None and settings.password is not None:
            auth = httpx.BasicAuth(settings.username, settings.password.get_secret_value())
        self._client = httpx.AsyncClient(
            base_url=settings.url.rstrip("/"),
            headers=headers,
            auth=auth,
            timeout=settings.timeout_s,
            verify=settings.verify_tls,
            transport=transport,
        )

    def logql(self, query: LogQuery) -> str:
        if query.raw_query is not None:
            return query.raw_query
        s = self.settings
        return logql.translate(query, s.service_label, s.namespace_label, s.level_label)

    async def fetch(self, query: LogQuery, limit: int, deadline: float) -> Fetched:
        text = self.logql(query)
        params: dict[str, str | int] = {
            "query": text,
            "start": query.start_ns,
            "end": query.end_ns + 1,  # Loki's end is exclusive
            "limit": min(limit, self.page_cap),
            "direction": "backward" if query.order == "newest" else "forward",
        }
        url = self.settings.url
        try:
            response = await self._client.get(QUERY_RANGE, params=params, timeout=remaining(deadline))
        except httpx.TimeoutException:
            raise BackendUnavailable(f"Loki at {url} did not answer in time") from None
        except httpx.TransportError as exc:
            raise BackendUnavailable(f"Loki at {url} is unreachable: {type(exc).__name__}: {exc}") from None
        body = _body(response)
        if response.status_code in (401, 403):
            raise ToolError(f"Loki at {url} refused the credentials ({response.status_code}): {_error_text(body)}")
        if response.status_code == 400:
            raise ToolError(f"Loki rejected the query: {_error_text(body)}")
        if response.status_code == 429 or response.status_code >= 500:
            raise BackendUnavailable(f"Loki at {url} answered {response.status_code}: {_error_text(body)}")
        if response.status_code != 200 or not isinstance(body, dict) or body.get("status") != "success":
            raise ToolError(f"Loki at {url} answered {response.status_code}: {_error_text(body)}")
        records = self._records(body.get("data"), query)
        # a total order, also within a timestamp: a cursor that continues at a timestamp skips the lines
        # it returned there by count, so every page must list them alike
        records.sort(key=lambda r: (r.ts_ns, r.source, r.message), reverse=query.order == "newest")
        return Fetched(records=records[:limit], query=text)

    def _records(self, data: Any, query: LogQuery) -> list[LogRecord]:
        if not isinstance(data, dict) or data.get("resultType") != "streams":
            kind = data.get("resultType") if isinstance(data, dict) else None
            raise ToolError(f"Loki returned a {kind or 'malformed'} result; only log queries (streams) are supported")
        s = self.settings
        records: list[LogRecord] = []
        for stream in data.get("result") or []:
            labels = {str(k): str(v) for k, v in (stream.get("stream") or {}).items()}
            service = labels.get(s.service_label) or labels.get("app") or labels.get("service_name") or "unknown"
            source = labels.get("pod") or labels.get("filename") or labels.get("job") or service
            for value in stream.get("values") or []:
                ts_text, line = value[0], value[1]
                metadata = value[2] if len(value) > 2 and isinstance(value[2], dict) else {}
                parsed = parse_line(line)
                level = normalize(labels.get(s.level_label) or metadata.get(s.level_label)) or parsed.level
                record = LogRecord(
                    ts_ns=int(ts_text),
                    service=service,
                    level=level,
                    message=parsed.message,
                    source=source,
                    labels=labels,
                )
                if query.start_ns <= record.ts_ns <= query.end_ns:  # the filter itself ran in Loki
                    records.append(record)
        return records

    async def aclose(self) -> None:
        await self._client.aclose()


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text.strip()


def _error_text(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)[:500]
    return str(body)[:500] or "(empty body)"
