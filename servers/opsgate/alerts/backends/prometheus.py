"""Prometheus' own alerts endpoint (`/api/v1/alerts`) with httpx: the only place pending alerts show.

Alertmanager only ever sees alerts once they fire; a rule whose condition holds but whose `for:` has not
yet elapsed is `pending` in Prometheus alone. Each alert is returned in Alertmanager's v2 shape (labels,
annotations, startsAt, status) with `state` set to Prometheus' `pending` or `firing`.
"""

from __future__ import annotations

from typing import Any

import httpx

from opsgate.alerts.backends.http import request_json
from opsgate.contracts import BackendUnavailable

JsonObject = dict[str, Any]


class PrometheusAlertsBackend:
    name = "prometheus"

    def __init__(self, url: str, *, timeout_s: float = 8.0, headers: dict[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.AsyncClient(base_url=self.url, timeout=timeout_s, headers=headers or {})

    async def aclose(self) -> None:
        await self.client.aclose()

    async def alerts(self) -> list[JsonObject]:
        body = await request_json(self.client, "Prometheus", self.url, "list alerts", "GET", "/api/v1/alerts")
        data = body.get("data") if isinstance(body, dict) else None
        raw = data.get("alerts") if isinstance(data, dict) else None
        if not isinstance(raw, list):
            raise BackendUnavailable("Prometheus' alerts answer has no data.alerts list")
        out: list[JsonObject] = []
        for alert in raw:
            if not isinstance(alert, dict):
                continue
            state = str(alert.get("state") or "")
            if state not in ("pending", "firing"):
                continue
            out.append(
                {
                    "labels": alert.get("labels") or {},
                    "annotations": alert.get("annotations") or {},
                    "startsAt": alert.get("activeAt"),
                    "status": {"state": state, "silencedBy": [], "inhibitedBy": []},
                }
            )
        return out
