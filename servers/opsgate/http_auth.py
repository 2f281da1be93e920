"""Authentication for hosted (Streamable HTTP) mode: static API keys and OIDC bearer tokens.

Each configured API key is the SHA-256 of the secret; a request's bearer token is hashed and compared
in constant time. The key's subject and roles become the caller. With an OIDC issuer configured, a
JWT bearer token is verified against the issuer's keys (opsgate.oidc) and its roles claim becomes
the caller's roles and its scopes the caller's scopes. Whether a caller may call a tool is the policy's
decision alone (e.g. the shipped policy's write-scope rule, `write.oauth_scope_missing`): nothing here
refuses a call for what it calls, so every refusal is a decision the audit trail records.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opsgate.config import ApiKey, HttpSettings
from opsgate.oidc import OidcConfig, OidcVerifier
from opsgate.state.base import ApiKeyStore, StateUnavailable

KEY_PREFIX = "ogk_"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh API key and the hash to put in the config."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    return secret, hash_key(secret)


class ApiKeyVerifier:
    """An MCP SDK `TokenVerifier` over configured, hashed API keys."""

    def __init__(self, keys: list[ApiKey], store: ApiKeyStore | None = None) -> None:
        self._keys = list(keys)
        self._store = store

    async def verify_token(self, token: str) -> AccessToken | None:
        digest = hash_key(token)
        for key in self._keys:
            if hmac.compare_digest(digest, key.sha256.lower()):
                return _api_key_token(key.subject, key.roles)
        if self._store is not None:
            # keys added with `opsgate keys add` live in the shared state: every replica sees a revocation
            try:
                stored = self._store.lookup_key(digest)
            except StateUnavailable:
                return None  # cannot check the key: unauthenticated (fail closed)
            if stored is not None:
                return _api_key_token(stored.subject, stored.roles)
        return None


def _api_key_token(subject: str, roles: list[str]) -> AccessToken:
    """The caller an API key stands for (configured or stored): its subject and roles, no scopes."""
    return AccessToken(
        token="", client_id=subject, subject=subject, scopes=[], claims={"roles": list(roles), "auth": "api_key"}
    )


class CompositeVerifier:
    """Tries each verifier in turn: API keys first (a cheap hash), then OIDC for JWT-shaped tokens."""

    def __init__(self, api_keys: ApiKeyVerifier, oidc: TokenVerifier | None = None) -> None:
        self.api_keys = api_keys
        self.oidc = oidc

    async def verify_token(self, token: str) -> AccessToken | None:
        if self.oidc is None or is_api_key(token, oidc=True):
            return await self.api_keys.verify_token(token)
        return await self.oidc.verify_token(token)


def is_api_key(token: str, *, oidc: bool) -> bool:
    """Whether `token` is checked as an API key (else as an OIDC access token, when `oidc` is configured)."""
    return token.startswith(KEY_PREFIX) or not oidc or token.count(".") != 2


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
            if is_api_key(token, oidc=bool(self.oidc_issuer)):
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


def resource_url(h: HttpSettings) -> str:
    """The MCP endpoint's public URL: the RFC 8707 resource identifier and the default token audience.

    `public_url` may name the server's base URL or the endpoint itself (`https://ops.example.com/mcp`,
    as the Kubernetes example does): either way the endpoint is the base plus `path`, once.
    """
    base = (h.public_url or f"http://{h.host}:{h.port}").rstrip("/")
    return base.removesuffix(h.path) + h.path


def public_base(h: HttpSettings) -> str:
    """The server's public base URL (no trailing slash): where the approval page and metadata live."""
    return resource_url(h).removesuffix(h.path)


def auth_for(h: HttpSettings, key_store: ApiKeyStore | None = None) -> tuple[AuthSettings, CompositeVerifier]:
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
    issuer = h.oidc_issuer or public_base(h)
    settings = AuthSettings(
        issuer_url=AnyHttpUrl(issuer), resource_server_url=AnyHttpUrl(resource), validate_token_resource=False
    )
    return settings, CompositeVerifier(ApiKeyVerifier(h.api_keys, key_store), oidc)
