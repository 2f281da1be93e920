"""Who is calling: the transport vouches for a caller, the gate passes it to policy and audit."""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import Any, Literal

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import ServerRequestContext
from pydantic import BaseModel, ConfigDict, Field

from opsgate.config import Settings

CLIENT_INFO_META_KEY = "io.modelcontextprotocol/clientInfo"


class Caller(BaseModel):
    # frozen: one caller object may serve many calls (the stdio caller is built once per client name)
    model_config = ConfigDict(frozen=True)

    subject: str
    roles: list[str] = Field(default_factory=list)
    client: str = "unknown"
    authenticated: bool = False
    # how the caller authenticated: "oidc" (an OAuth access token), "api_key", "local" (stdio, or a
    # caller built in process by whoever runs the gate), "none" (an HTTP request without a credential)
    auth: Literal["oidc", "api_key", "local", "none"] = "local"
    # the OAuth scopes of its token (empty for API keys and stdio); the policy judges them
    scopes: list[str] = Field(default_factory=list)

    @cached_property
    def document(self) -> dict[str, Any]:
        """The caller as the policy input and the audit record carry it (dumped once per caller)."""
        return self.model_dump()


@lru_cache(maxsize=256)
def _local_caller(subject: str, roles: tuple[str, ...], client: str) -> Caller:
    return Caller(subject=subject, roles=list(roles), client=client, authenticated=True, auth="local")


def client_name(ctx: ServerRequestContext[Any, Any]) -> str:
    """The client's self-declared name (2025-11-25: from initialize; 2026-07-28: from request `_meta`)."""
    meta = ctx.meta or {}
    info = meta.get(CLIENT_INFO_META_KEY) if isinstance(meta, dict) else None
    if isinstance(info, dict) and isinstance(info.get("name"), str):
        return str(info["name"])
    params = ctx.session.client_params if ctx.session is not None else None
    if params is not None:
        return params.client_info.name
    return "unknown"


def resolve_caller(ctx: ServerRequestContext[Any, Any], settings: Settings) -> Caller:
    """The caller of one request.

    An authenticated HTTP request carries an access token (API key or OAuth); its roles come from
    the token's `roles` claim and scopes. A request with no HTTP request object came over stdio: the
    person who started the server vouches for it, with the configured local identity. An HTTP
    request without a token is unauthenticated, and the shipped policy denies it everything.
    """
    client = client_name(ctx)
    token = get_access_token()
    if token is not None:
        claims = token.claims or {}
        roles = claims.get("roles", [])
        role_list = [str(r) for r in roles] if isinstance(roles, list) else []
        auth = claims.get("auth")
        return Caller(
            subject=token.subject or token.client_id,
            roles=sorted(set(role_list)),
            client=client,
            authenticated=True,
            auth=auth if auth in ("oidc", "api_key") else "none",
            scopes=sorted({str(s) for s in token.scopes}),
        )
    if ctx.request is None:
        return _local_caller(settings.caller.subject, tuple(settings.caller.roles), client)
    return Caller(subject="anonymous", roles=[], client=client, authenticated=False, auth="none")
