"""Prometheus Alertmanager through its v2 API (`/api/v2/alerts`, `/api/v2/silences`) with httpx."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from opsgate.alerts.backends.http import request_json
from opsgate.contracts import BackendUnavailable

JsonObject = dict[str, Any]


class AlertmanagerBackend:
    name = "alertmanager"

    def __init__(self, url: str, *, timeout_s: float = 8.0, headers: dict[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.AsyncClient(base_url=self.url, timeout=timeout_s, headers=headers or {})

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _request(self, what: str, method: str, path: str, **kwargs: Any) -> Any:
        return await request_json(self.client, "Alertmanager", self.url, what, method, path, **kwargs)

    async def alerts(self, filters: list[str], *, silenced: bool) -> list[JsonObject]:
        params: list[tuple[str, str]] = [("active", "true"), ("silenced", str(silenced).lower()), ("inhibited", "true")]
        params += [("filter", f) for f in filters]
        body = await self._request("list alerts", "GET", "/api/v2/alerts", params=params)
        return [a for a in body if isinstance(a, dict)] if isinstance(body, list) else []

    async def create_silence(
        self, matchers: list[JsonObject], starts: datetime, ends: datetime, created_by: str, comment: str
    ) -> str:
        body = {
            "matchers": matchers,
            "startsAt": starts.isoformat().replace("+00:00", "Z"),
            "endsAt": ends.isoformat().replace("+00:00", "Z"),
            "createdBy": created_by,
            "comment": comment,
        }
        answer = await self._request("create a silence", "POST", "/api/v2/silences", json=body)
        if not isinstance(answer, dict) or not isinstance(answer.get("silenceID"), str):
            raise BackendUnavailable("Alertmanager did not return a silence id")
        return str(answer["silenceID"])
