"""The OPA server engine: `data.opsgate.decision` asked of an OPA server over its Data API.

Uses `opa-python-client`'s `AsyncOpaClient` (aiohttp). Everything that is not a well-formed decision
becomes a `PolicyError`: aiohttp's own errors, HTTP errors, a body that is not JSON, OPA's `{}` for an
undefined document (no "result" key), and a malformed decision. Connection errors and 5xx answers are
retried with exponential backoff, all within one overall timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from opa_client import AsyncOpaClient

from opsgate.policy.decision import Decision, PolicyError, parse_decision
from opsgate.policy.engine import DECISION_PATH

_BACKOFF_S = 0.02


class OpaServerEngine:
    """Asks an OPA server (sidecar or central) for `data.<policy_path>`."""

    name = "opa"

    def __init__(
        self,
        url: str = "http://127.0.0.1:8181",
        policy_path: str = DECISION_PATH,
        timeout_s: float = 1.0,
        retries: int = 2,
        token: str | None = None,
        revision: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PolicyError(f"OPA url {url!r} must look like http://host:port")
        if timeout_s <= 0:
            raise PolicyError(f"OPA timeout must be positive, got {timeout_s}")
        self.url = url.rstrip("/")
        self.policy_path = policy_path.strip("/").replace(".", "/")
        self.timeout_s = timeout_s
        self.retries = max(0, retries)
        self._configured_revision = revision
        self._bundle_revision: str | None = None
        # Retries live here (bounded by timeout_s), not in the client, whose backoff starts at 0.3 s.
        self._client = AsyncOpaClient(
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 80),
            ssl=parts.scheme == "https",
            token=token,
            retries=0,
            timeout=timeout_s,
        )
        self._stack: contextlib.AsyncExitStack | None = None

    @property
    def revision(self) -> str:
        """The configured revision, else the bundle revision OPA last reported, else `opa:unknown`."""
        return self._configured_revision or self._bundle_revision or "opa:unknown"

    async def decide(self, policy_input: dict[str, Any]) -> Decision:
        try:
            async with asyncio.timeout(self.timeout_s):
                answer = await self._query_with_retries(policy_input)
        except TimeoutError:
            raise PolicyError(f"OPA at {self.url} gave no decision within {self.timeout_s:g} s") from None
        if not isinstance(answer, dict):
            raise PolicyError(f"OPA answered with a {type(answer).__name__}, not a JSON object")
        if "result" not in answer:
            raise PolicyError(
                f"data.{self.policy_path.replace('/', '.')} is undefined on OPA at {self.url}"
                " (is the opsgate policy loaded?)"
            )
        return parse_decision(answer["result"])

    async def refresh_revision(self) -> str:
        """Read the active bundle revision(s) from OPA's status API (needs OPA's status plugin)."""
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._session()
                status = await self._client.get_status()
        except (aiohttp.ClientError, ValueError, TimeoutError) as exc:
            raise PolicyError(f"OPA status at {self.url} is unavailable: {exc!r}") from None
        bundles = (status.get("result") or {}).get("bundles") or {}
        revisions = sorted(f"{name}@{info.get('active_revision', '')}" for name, info in bundles.items())
        if revisions:
            self._bundle_revision = ",".join(revisions)
        return self.revision

    async def aclose(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    async def _session(self) -> None:
        if self._stack is None:
            stack = contextlib.AsyncExitStack()
            await stack.enter_async_context(self._client)
            self._stack = stack

    async def _query_with_retries(self, policy_input: dict[str, Any]) -> Any:
        await self._session()
        attempt = 0
        while True:
            try:
                return await self._client.query_rule(input_data=policy_input, package_path=self.policy_path)
            except aiohttp.ClientResponseError as exc:
                if exc.status < 500 or attempt >= self.retries:
                    raise PolicyError(f"OPA at {self.url} answered HTTP {exc.status} {exc.message}") from None
            except aiohttp.ClientConnectionError as exc:
                if attempt >= self.retries:
                    raise PolicyError(f"OPA at {self.url} is unreachable: {exc}") from None
            except (aiohttp.ClientError, json.JSONDecodeError, ValueError) as exc:
                raise PolicyError(f"OPA at {self.url} gave an unreadable answer: {exc}") from None
            attempt += 1
            await asyncio.sleep(_BACKOFF_S * 2 ** (attempt - 1))
