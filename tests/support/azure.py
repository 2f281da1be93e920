"""Test credentials for the real Azure SDK pointed at the loopback endpoint."""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError


class StaticTokenCredential:
    """An AsyncTokenCredential that hands out a fixed token (the loopback accepts only `test-token`)."""

    def __init__(self, token: str = "test-token") -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class FailingCredential(StaticTokenCredential):
    """A credential that cannot get a token, as DefaultAzureCredential fails on a machine with none."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise ClientAuthenticationError(
            "DefaultAzureCredential failed to retrieve a token from the included credentials."
        )
