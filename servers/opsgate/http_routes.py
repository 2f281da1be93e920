"""Plain HTTP endpoints next to the MCP endpoint in hosted mode: health and Prometheus metrics.

- `GET /healthz` needs no credentials (load balancers and kubelet probes call it) and reveals only
  that the server is up, its version and how many tools it serves.
- `GET /metrics` is the Prometheus exposition of prometheus_client's default registry (the gate's
  call counters and latency histograms, plus process metrics). Tool names and call counts are
  operational detail, so with authentication on it needs a valid bearer token too (a Prometheus
  scrape config sets one with `authorization: {credentials_file: ...}`); set
  `http.metrics_require_auth = false` to scrape it without, e.g. on a network only Prometheus reaches.

It also serves the RFC 9728 protected-resource metadata (replacing the SDK's, to add the write
scope to `scopes_supported`). Whether a token without that scope may call a write tool is the policy's
decision, audited like any other (`caller.scopes` in the policy input).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from opsgate import __version__
from opsgate.config import HttpSettings
from opsgate.contracts import Contract
from opsgate.http_auth import AuthChallengeMiddleware, public_base, resource_url


def health_route(tool_count: Callable[[], int]) -> Route:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__, "tools": tool_count()})

    return Route("/healthz", healthz, methods=["GET"])


def metrics_route(*, require_auth: bool, resource_metadata_url: str | None) -> Route:
    async def metrics(request: Request) -> Response:
        if require_auth and not isinstance(request.scope.get("user"), AuthenticatedUser):
            challenge = 'Bearer error="invalid_token", error_description="Authentication required"'
            if resource_metadata_url:
                challenge += f', resource_metadata="{resource_metadata_url}"'
            return JSONResponse(
                {"error": "invalid_token", "error_description": "Authentication required"},
                status_code=401,
                headers={"WWW-Authenticate": challenge},
            )
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics, methods=["GET"])


def add_hosted_routes(starlette: Starlette, h: HttpSettings, contracts: Mapping[str, Contract[Any, Any]]) -> None:
    """Health, metrics, and the protected-resource metadata with scopes (the write scope is the policy's
    to require: `caller.scopes` in the policy input)."""
    # OAuth protected-resource metadata only names a real authorization server: with API keys only
    # there is none, and publishing one sends clients into a failing OAuth flow instead of asking for the key.
    oauth = h.require_auth and bool(h.oidc_issuer)
    metadata_url = str(build_resource_metadata_url(AnyHttpUrl(resource_url(h)))) if oauth else None
    routes = starlette.router.routes
    if h.require_auth:
        issuer = AnyHttpUrl(h.oidc_issuer or public_base(h))
        metadata = create_protected_resource_routes(
            resource_url=AnyHttpUrl(resource_url(h)),
            authorization_servers=[issuer],
            scopes_supported=[h.write_scope] if h.write_scope else None,
            resource_name="opsgate",
        )
        paths = {r.path for r in metadata}
        routes[:] = [r for r in routes if getattr(r, "path", None) not in paths]
        if oauth:
            routes.extend(metadata)
        starlette.user_middleware.insert(
            0, Middleware(AuthChallengeMiddleware, oidc_issuer=h.oidc_issuer, resource_metadata_url=metadata_url)
        )
    routes.append(health_route(lambda: len(contracts)))
    routes.append(
        metrics_route(require_auth=h.require_auth and h.metrics_require_auth, resource_metadata_url=metadata_url)
    )
