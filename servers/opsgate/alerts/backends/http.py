"""One JSON request to an HTTP alert source (Alertmanager, Prometheus) and what its failures mean: no answer
or a 5xx is `BackendUnavailable` (it feeds the breaker), a 4xx is a `ToolError` with the source's own words."""

from __future__ import annotations

from typing import Any

import httpx

from opsgate.contracts import BackendUnavailable, ToolError


async def request_json(
    client: httpx.AsyncClient, source: str, url: str, what: str, method: str, path: str, **kwargs: Any
) -> Any:
    """`source` names the product in messages ("Alertmanager"), `url` where it is, `what` the request."""
    try:
        response = await client.request(method, path, **kwargs)
    except httpx.TimeoutException:
        raise BackendUnavailable(f"{source} at {url} timed out while trying to {what}") from None
    except httpx.HTTPError as exc:
        raise BackendUnavailable(f"{source} at {url} is unreachable ({type(exc).__name__}) to {what}") from None
    if response.status_code >= 500:
        raise BackendUnavailable(f"{source} failed to {what}: HTTP {response.status_code}")
    if response.status_code >= 400:
        detail = response.text.strip()[:300]
        raise ToolError(f"{source} rejected the request to {what}: HTTP {response.status_code}: {detail}")
    try:
        return response.json()
    except ValueError:
        raise BackendUnavailable(f"{source} answered {what} with malformed JSON") from None
