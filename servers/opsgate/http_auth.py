"""Authentication for hosted (Streamable HTTP) mode: static API keys, stored hashed.

Each configured key is the SHA-256 of the secret; a request's bearer token is hashed and compared in
constant time. The key's subject and roles become the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from mcp.server.auth.provider import AccessToken

from opsgate.config import ApiKey

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
