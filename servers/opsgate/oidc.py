"""OAuth 2.1 bearer tokens from an OpenID Connect issuer, verified against its JWKS.

The server is a resource server only: it never issues tokens. A token is accepted when its
signature verifies with a key the issuer publishes (looked up by `kid`), its `iss` is the configured
issuer, its `aud` is this server's audience, and it has not expired. Roles come from a claim
(`roles` by default: Microsoft Entra ID puts app roles there), scopes from `scp` (Entra, space
separated) or `scope` (RFC 9068).

Microsoft Entra ID, the worked example:
  oidc_issuer   = "https://login.microsoftonline.com/{tenant-id}/v2.0"
  oidc_audience = "{application-id-uri or client id of the opsgate app registration}"
  roles_claim   = "roles"        (app roles assigned to users, groups or client apps)
  write_scope   = "Ops.Write"    (a delegated scope the app exposes; the policy requires it for write tools)
Entra issues v2 tokens only when the app registration's `accessTokenAcceptedVersion` is 2.

PyJWT does the JOSE work (maintained, small, already a dependency of the MCP SDK). Its own
`PyJWKClient` fetches with blocking urllib, so the key set is fetched here with httpx's async client
and parsed with `PyJWKSet`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import jwt
from mcp.server.auth.provider import AccessToken

logger = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class OidcError(Exception):
    """The issuer's metadata or key set cannot be used; the message names the URL and the problem."""


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str | None = None
    roles_claim: str = "roles"
    algorithms: Sequence[str] = ("RS256",)
    cache_s: float = 3600.0
    min_refresh_s: float = 30.0
    leeway_s: float = 60.0
    http_timeout_s: float = 5.0


class JwksCache:
    """The issuer's signing keys by `kid`, fetched lazily and cached.

    A token with an unknown `kid` triggers one refresh (the issuer rotated its keys), but at most once
    per `min_refresh_s`, so a flood of tokens with made-up key ids cannot hammer the issuer.
    """

    def __init__(self, config: OidcConfig, client: httpx.AsyncClient | None = None) -> None:
        self._config = config
        self._client = client
        self._jwks_url = config.jwks_url
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = anyio.Lock()
        self.fetches = 0

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        if time.monotonic() - self._fetched_at > self._config.cache_s:
            try:
                await self._refresh(force=True)
            except OidcError:
                if not self._keys:
                    raise
                logger.warning("JWKS refresh failed; keeping the cached keys", exc_info=True)
        found = self._find(kid)
        if found is None and time.monotonic() - self._fetched_at >= self._config.min_refresh_s:
            await self._refresh(force=False)
            found = self._find(kid)
        return found

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            # Without a kid the only unambiguous case is a key set of one.
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self, *, force: bool) -> None:
        started = time.monotonic()
        async with self._lock:
            if self._fetched_at >= started or (not force and started - self._fetched_at < self._config.min_refresh_s):
                return  # another request refreshed while this one waited
            try:
                keys = await self._fetch()
            finally:
                # A failed fetch also counts, so an unreachable issuer is retried at the refresh pace.
                self._fetched_at = time.monotonic()
            self._keys = keys

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        self.fetches += 1
        client = self._client or httpx.AsyncClient(timeout=self._config.http_timeout_s)
        try:
            if self._jwks_url is None:
                self._jwks_url = await _discover_jwks_url(client, self._config.issuer)
            document = await _get_json(client, self._jwks_url)
        finally:
            if self._client is None:
                await client.aclose()
        try:
            key_set = jwt.PyJWKSet.from_dict(document)
        except jwt.PyJWKSetError as exc:
            raise OidcError(f"JWKS at {self._jwks_url} has no usable keys: {exc}") from None
        return {str(k.key_id): k for k in key_set.keys if k.key_id is not None and k.public_key_use in (None, "sig")}


async def _get_json(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    try:
        response = await client.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OidcError(f"cannot fetch {url}: {exc}") from None
    if not isinstance(document, dict):
        raise OidcError(f"{url} did not return a JSON object")
    return document


async def discover(client: httpx.AsyncClient, issuer: str) -> dict[str, Any]:
    """The issuer's OpenID Connect metadata, which must name `issuer` as its issuer."""
    url = issuer.rstrip("/") + DISCOVERY_PATH
    metadata = await _get_json(client, url)
    if metadata.get("issuer") != issuer:
        raise OidcError(f"{url} names issuer {metadata.get('issuer')!r}, expected {issuer!r}")
    return metadata


async def _discover_jwks_url(client: httpx.AsyncClient, issuer: str) -> str:
    url = issuer.rstrip("/") + DISCOVERY_PATH
    metadata = await discover(client, issuer)
    jwks_uri = metadata.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
        raise OidcError(f"{url} has no usable jwks_uri")
    return jwks_uri


def _string_list(value: Any) -> list[str]:
    """A claim that is a list of strings or one space-separated string (as `scp` and `scope` are)."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int)]
    return []


async def signing_key(token: str, jwks: JwksCache, algorithms: Sequence[str]) -> jwt.PyJWK:
    """The issuer's key named by `token`'s header, whose algorithm must be one of `algorithms`.

    Raises a `jwt.PyJWTError` for an algorithm not allowed or a key the issuer does not publish, and
    `OidcError` when the key set cannot be fetched.
    """
    header = jwt.get_unverified_header(token)
    alg = header.get("alg")
    if alg not in algorithms:
        raise jwt.InvalidAlgorithmError(f"token algorithm {alg!r} is not allowed")
    kid = header.get("kid")
    key = await jwks.key(kid if isinstance(kid, str) else None)
    if key is None:
        raise jwt.InvalidKeyError(f"no signing key with kid {kid!r} at the issuer")
    return key


class OidcVerifier:
    """An MCP SDK `TokenVerifier` for JWT access tokens from one OIDC issuer."""

    def __init__(self, config: OidcConfig, jwks: JwksCache | None = None) -> None:
        bad = [a for a in config.algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if bad:
            raise ValueError(f"unsupported token algorithm(s) {bad}: only asymmetric algorithms are accepted")
        self.config = config
        self.jwks = jwks or JwksCache(config)

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            claims = await self._verified_claims(token)
        except (jwt.PyJWTError, OidcError) as exc:
            logger.info("bearer token refused: %s", exc)
            return None
        return self._access_token(claims)

    async def _verified_claims(self, token: str) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=await signing_key(token, self.jwks, self.config.algorithms),
            algorithms=list(self.config.algorithms),
            audience=self.config.audience,
            issuer=self.config.issuer,
            leeway=self.config.leeway_s,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
        return claims

    def _access_token(self, claims: dict[str, Any]) -> AccessToken:
        scopes = _string_list(claims.get("scp", claims.get("scope")))
        roles = _string_list(claims.get(self.config.roles_claim))
        subject = str(claims["sub"])
        # Entra: `azp` (v2) names the client application; RFC 9068 uses `client_id`.
        client_id = str(claims.get("azp") or claims.get("client_id") or claims.get("appid") or subject)
        aud = claims.get("aud")
        return AccessToken(
            token="",
            client_id=client_id,
            subject=subject,
            scopes=scopes,
            expires_at=int(claims["exp"]),
            resource=aud if isinstance(aud, str) else None,
            claims={
                "auth": "oidc",
                "iss": claims["iss"],
                "roles": roles,
                "scopes": scopes,
                "name": claims.get("preferred_username") or claims.get("name"),
                "oid": claims.get("oid"),
            },
        )
