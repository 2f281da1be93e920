"""Prometheus' own alerts endpoint (`/api/v1/alerts`) with httpx: the only place pending alerts show.

Alertmanager only ever sees alerts once they fire; a rule whose condition holds but whose `for:` has not
yet elapsed is `pending` in Prometheus alone. Each alert is returned in Alertmanager's v2 shape (labels,
annotations, startsAt, status) with `state` set to Prometheus' `pending` or `firing`.
"""

from __future__ import annotations

from typing import Any

import httpx

from opsgate.contracts import BackendUnavailable, ToolError

JsonObject = dict[str, Any]


class PrometheusAlertsBackend:
    name = "prometheus"

    def __init__(self, url: str, *, timeout_s: float = 8.0, headers: dict[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.AsyncClient(base_url=self.url, timeout=timeout_s, headers=headers or {})

    async def aclose(self) -> None:
        await self.client.aclose()

    async def alerts(self) -> list[JsonObject]:
        try:
            response = await self.client.get("/api/v1/alerts")
        except httpx.TimeoutException:
            raise BackendUnavailable(f"Prometheus at {self.url} timed out while listing alerts") from None
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"Prometheus at {self.url} is unreachable ({type(exc).__name__}) to list alerts"
            ) from None
        if response.status_code >= 500:
            raise BackendUnavailable(f"Prometheus failed to list alerts: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise ToolError(f"Prometheus rejected the alerts request: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise BackendUnavailable("Prometheus answered the alerts request with malformed JSON") from None
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
