"""Prometheus over its HTTP API (`/api/v1/query`, `/api/v1/query_range`, `/api/v1/series`) with httpx."""

from __future__ import annotations

import difflib
from typing import Any

import httpx
import numpy as np

from opsgate.contracts import BackendUnavailable, ToolError
from opsgate.metrics.backend_settings import PrometheusSettings as PrometheusSettings
from opsgate.metrics.backends.base import Series
from opsgate.metrics.selection import Selection


def _float(text: str) -> float:
    # Prometheus encodes sample values as strings, including "NaN", "+Inf" and "-Inf"
    return float(text)


class PrometheusBackend:
    name = "prometheus"

    def __init__(self, config: PrometheusSettings, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        headers = dict(config.headers)
        if config.bearer_token_file:
            from pathlib import Path

            headers["Authorization"] = "Bearer " + Path(config.bearer_token_file).read_text().strip()
        self.client = client or httpx.AsyncClient(
            base_url=config.url.rstrip("/"), timeout=config.timeout_s, headers=headers, verify=config.verify_tls
        )

    def describe(self, selection: Selection) -> str:
        return selection.promql()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _api(self, path: str, params: dict[str, str], method: str = "POST") -> Any:
        """The `data` of an API answer; ToolError with Prometheus' own words when it refuses."""
        url = f"{self.config.url.rstrip('/')}{path}"
        try:
            if method == "POST":  # long queries do not hit URL length limits
                response = await self.client.post(path, data=params)
            else:
                response = await self.client.get(path, params=params)
        except httpx.TimeoutException:
            raise BackendUnavailable(
                f"Prometheus at {self.config.url} did not answer within {self.config.timeout_s:g}s"
            ) from None
        except httpx.TransportError as exc:
            raise BackendUnavailable(
                f"Prometheus at {self.config.url} is unreachable: {exc or type(exc).__name__}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "error":
            kind, error = body.get("errorType", "error"), body.get("error", "")
            if kind in ("timeout", "canceled", "unavailable") or response.status_code >= 500:
                raise BackendUnavailable(f"Prometheus failed the query ({kind}): {error}")
            raise ToolError(f"Prometheus rejected the query ({kind}): {error}")
        if response.status_code >= 500:
            raise BackendUnavailable(f"Prometheus answered HTTP {response.status_code} at {url}")
        if response.status_code != 200 or not isinstance(body, dict) or "data" not in body:
            raise ToolError(f"unexpected answer from Prometheus at {url}: HTTP {response.status_code}")
        return body["data"]

    async def _explain_empty(self, selection: Selection, start: float, end: float) -> None:
        """Raise "no series named X" when the metric does not exist at all in the window."""
        if selection.metric is None:
            return
        data = await self._api(
            "/api/v1/series", {"match[]": selection.metric, "start": f"{start:.3f}", "end": f"{end:.3f}"}
        )
        if data:
            return
        names = await self._api(
            "/api/v1/label/__name__/values", {"start": f"{start:.3f}", "end": f"{end:.3f}"}, method="GET"
        )
        close = difflib.get_close_matches(selection.metric, names if isinstance(names, list) else [], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ToolError(f"no series named {selection.metric!r} in Prometheus between the window's start and end{hint}")

    @staticmethod
    def _series(result: Any, metric: str | None) -> list[Series]:
        out = []
        for item in result:
            labels = {k: v for k, v in item.get("metric", {}).items() if k != "__name__"}
            name = item.get("metric", {}).get("__name__", metric)
            points = item.get("values") or ([item["value"]] if "value" in item else [])
            times = np.array([float(p[0]) for p in points], dtype=np.float64)
            values = np.array([_float(p[1]) for p in points], dtype=np.float64)
            out.append(Series(labels, times, values, name))
        return out

    async def query_range(self, selection: Selection, start: float, end: float, step: float) -> list[Series]:
        data = await self._api(
            "/api/v1/query_range",
            {"query": selection.promql(), "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        if data.get("resultType") != "matrix":
            raise ToolError(f"a range query must give a range vector; this one gives {data.get('resultType')}")
        found = self._series(data.get("result", []), selection.metric)
        if not found:
            await self._explain_empty(selection, start, end)
        grid = start + step * np.arange(int((end - start) // step) + 1)
        return [_on_grid(s, grid) for s in found]

    async def query_instant(self, selection: Selection, at: float) -> list[Series]:
        data = await self._api("/api/v1/query", {"query": selection.promql(), "time": f"{at:.3f}"})
        kind = data.get("resultType")
        if kind == "scalar":
            t, v = data["result"]
            return [Series({}, np.array([float(t)]), np.array([_float(v)]), None)]
        if kind != "vector":
            raise ToolError(f"an instant query must give an instant vector or scalar; this one gives {kind}")
        found = self._series(data.get("result", []), selection.metric)
        if not found:
            await self._explain_empty(selection, at - 300, at)
        return found


def _on_grid(s: Series, grid: np.ndarray) -> Series:
    """Prometheus leaves out steps without a value; put them back as gaps so every series shares the grid."""
    if s.times.size == grid.size:
        return s
    values = np.full(grid.size, np.nan)
    # nearest step: the answer's times come from the start as sent ("%.3f", rounded either way), so an
    # exact-match search would put every point one step late whenever the rounding went up
    step = float(grid[1] - grid[0]) if grid.size > 1 else 1.0
    idx = np.clip(np.rint((s.times - grid[0]) / step).astype(np.int64), 0, grid.size - 1)
    values[idx] = s.values
    return Series(s.labels, grid.astype(np.float64), values, s.metric)
