"""Authentication for hosted (Streamable HTTP) mode: static API keys and OIDC bearer tokens.

Each configured API key is the SHA-256 of the secret; a request's bearer token is hashed and compared
in constant time. The key's subject and roles become the caller. With an OIDC issuer configured, a
JWT bearer token is verified against the issuer's keys (opsgate.oidc) and its roles claim becomes
the caller's roles. Write tools additionally need the configured OAuth scope (step-up, below).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Sequence

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opsgate.config import ApiKey, HttpSettings
from opsgate.oidc import OidcConfig, OidcVerifier

KEY_PREFIX = "ogk_"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh API key and the hash to put in the config."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    return secret, hash_key(secret)


class ApiKeyVerifier:
    """An MCP SDK `TokenVerifier` over configured, hashed API keys."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self._keys = list(keys)

    async def verify_token(self, token: str) -> AccessToken | None:
        digest = hash_key(token)
        for key in self._keys:
            if hmac.compare_digest(digest, key.sha256.lower()):
                return AccessToken(
                    token="",
                    client_id=key.subject,
                    subject=key.subject,
                    scopes=[],
                    claims={"roles": list(key.roles), "auth": "api_key"},
                )
        return None


class CompositeVerifier:
    """Tries each verifier in turn: API keys first (a cheap hash), then OIDC for JWT-shaped tokens."""

    def __init__(self, api_keys: ApiKeyVerifier, oidc: TokenVerifier | None = None) -> None:
        self.api_keys = api_keys
        self.oidc = oidc

    async def verify_token(self, token: str) -> AccessToken | None:
        if token.startswith(KEY_PREFIX) or self.oidc is None:
            return await self.api_keys.verify_token(token)
        if token.count(".") == 2:
            return await self.oidc.verify_token(token)
        return await self.api_keys.verify_token(token)


def called_tools(body: bytes) -> list[str]:
    """Names of the tools a JSON-RPC message (or batch) calls; unparsable bodies call none."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):  # a 5,000-deep body is not a call, and not a 500 either
        return []
    messages = message if isinstance(message, list) else [message]
    names: list[str] = []
    for m in messages:
        if isinstance(m, dict) and m.get("method") == "tools/call" and isinstance(m.get("params"), dict):
            name = m["params"].get("name")
            if isinstance(name, str):
                names.append(name)
    return names


class WriteScopeMiddleware:
    """Step-up authorization for write tools (MCP authorization spec, "Scope Challenge Handling").

    An OAuth token without `write_scope` that calls a write tool gets HTTP 403 with
    `WWW-Authenticate: Bearer error="insufficient_scope", scope="..."`, so the client can ask the user
    for the wider scope and retry. API keys carry roles, not scopes: the policy gate judges them.
    This sits after the SDK's authentication middleware (it reads `scope["user"]`) and reads the
    request body once, then replays it to the transport.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str,
        write_scope: str,
        write_tools: Callable[[], Sequence[str]],
        resource_metadata_url: str | None,
        max_body_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.app = app
        self.path = path
        self.write_scope = write_scope
        self.write_tools = write_tools
        self.resource_metadata_url = resource_metadata_url
        self.max_body_bytes = max_body_bytes

    def _needs_check(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") != self.path:
            return False
        user = scope.get("user")
        if not isinstance(user, AuthenticatedUser):
            return False  # the SDK answers 401 further in
        token = user.access_token
        return (token.claims or {}).get("auth") == "oidc" and self.write_scope not in token.scopes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._needs_check(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more and size <= self.max_body_bytes:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay(chunks, message, receive, more=True), send)
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        writes = set(self.write_tools())
        denied = [name for name in called_tools(body) if name in writes] if not more else []
        if denied:
            await self._forbidden(send, denied[0])
            return
        await self.app(scope, _replay(chunks, None, receive, more=more), send)

    async def _forbidden(self, send: Send, tool: str) -> None:
        description = f"{tool} is a write tool and needs the {self.write_scope} scope"
        parts = ['error="insufficient_scope"', f'scope="{self.write_scope}"', f'error_description="{description}"']
        if self.resource_metadata_url:
            parts.append(f'resource_metadata="{self.resource_metadata_url}"')
        body = json.dumps({"error": "insufficient_scope", "error_description": description}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", ("Bearer " + ", ".join(parts)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class AuthChallengeMiddleware:
    """Every 401 says which credential is expected, and tells a missing one from a rejected one.

    The SDK answers any unauthenticated request with the same "Authentication required"; a client (or
    a person reading its log) then cannot tell a forgotten header from a wrong key. This rewrites 401
    responses: no `Authorization: Bearer` header -> "no credential" naming what to send; a credential
    that did not verify -> "not recognised" (API key) or "rejected" (OAuth token). The challenge names
    the protected-resource metadata only when OAuth (OIDC) is configured: with API keys only there is
    no authorization server, and a client that found one would try OAuth instead of asking for the key.
    """

    def __init__(self, app: ASGIApp, *, oidc_issuer: str | None, resource_metadata_url: str | None) -> None:
        self.app = app
        self.oidc_issuer = oidc_issuer
        self.resource_metadata_url = resource_metadata_url if oidc_issuer else None

    def expected(self) -> str:
        if self.oidc_issuer:
            return f"an opsgate API key or an OAuth access token from {self.oidc_issuer}"
        return "an opsgate API key (from `opsgate keys new`)"

    def challenge(self, scope: Scope) -> tuple[str, str, str]:
        """(error code, description, WWW-Authenticate value) for an unauthenticated request."""
        header = ""
        for name, value in scope.get("headers") or []:
            if name == b"authorization":
                header = value.decode("latin-1")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        parts = ['realm="opsgate"']
        if not token:
            error = "missing_credential"
            description = f"no credential: send the header `Authorization: Bearer <token>` with {self.expected()}"
        else:
            error = "invalid_token"
            parts.append('error="invalid_token"')
            if token.startswith(KEY_PREFIX) or not self.oidc_issuer or token.count(".") != 2:
                description = "the API key is not recognised (wrong, revoked or mistyped); expected " + self.expected()
            else:
                description = "the access token was rejected (expired, or not issued for this server by its issuer)"
        parts.append(f'error_description="{description.replace(chr(34), chr(39))}"')
        if self.resource_metadata_url:
            parts.append(f'resource_metadata="{self.resource_metadata_url}"')
        return error, description, "Bearer " + ", ".join(parts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def guarded_send(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message.get("status") == 401:
                replaced = True
                error, description, www_authenticate = self.challenge(scope)
                body = json.dumps({"error": error, "error_description": description}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", www_authenticate.encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            if replaced:
                return  # the inner app's own 401 body
            await send(message)

        await self.app(scope, receive, guarded_send)


def _replay(chunks: list[bytes], pending: Message | None, receive: Receive, *, more: bool = False) -> Receive:
    """A `receive` that first hands back what was already read, then continues with the real one."""
    queue: list[Message] = [
        {"type": "http.request", "body": c, "more_body": more or i < len(chunks) - 1} for i, c in enumerate(chunks)
    ]
    if pending is not None:
        queue.append(pending)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay


def resource_url(h: HttpSettings) -> str:
    """The MCP endpoint's public URL: the RFC 8707 resource identifier and the default token audience."""
    base = h.public_url or f"http://{h.host}:{h.port}"
    return base.rstrip("/") + h.path


def auth_for(h: HttpSettings) -> tuple[AuthSettings, CompositeVerifier]:
    """The SDK's auth settings and the token verifier for hosted mode.

    The protected-resource metadata names the OIDC issuer as the authorization server when one is
    configured (with API keys only, the server's own base URL stands in: the SDK needs one).
    The verifier checks the audience itself, so the SDK's resource check stays off.
    """
    resource = resource_url(h)
    oidc: OidcVerifier | None = None
    if h.oidc_issuer:
        oidc = OidcVerifier(
            OidcConfig(
                issuer=h.oidc_issuer,
                audience=h.oidc_audience or resource,
                jwks_url=h.oidc_jwks_url,
                roles_claim=h.roles_claim,
                algorithms=tuple(h.oidc_algorithms),
            )
        )
    issuer = h.oidc_issuer or resource.removesuffix(h.path)
    settings = AuthSettings(
        issuer_url=AnyHttpUrl(issuer), resource_server_url=AnyHttpUrl(resource), validate_token_resource=False
    )
    return settings, CompositeVerifier(ApiKeyVerifier(h.api_keys), oidc)
