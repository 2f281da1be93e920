"""Hosted mode under test: opsgate over Streamable HTTP on loopback, trusting a local OIDC issuer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import Field

from opsgate.config import ApiKey, HttpSettings, Settings
from opsgate.contracts import Capability, Contract, ToolInput, ToolOutput
from opsgate.gate import CallContext
from opsgate.http_auth import hash_key
from opsgate.server import App, build_app
from tests.support import testkit
from tests.support.loopback import free_port, serve_http

from .issuer import LocalIssuer, running_issuer

API_KEY = "ogk_hosted-test-key-loopback-only"
WRITE_SCOPE = "Ops.Write"


class QueryInput(ToolInput):
    raw_query: str | None = Field(default=None, max_length=200, description="Backend-native query")


class QueryOutput(ToolOutput):
    rows: int


def query_capability() -> Capability:
    """A read tool with a `raw_query` argument, which the shipped policy allows only for some roles."""

    async def run(args: QueryInput, ctx: CallContext) -> QueryOutput:
        return QueryOutput(rows=1)

    contract: Contract[Any, Any] = Contract(
        name="hosted_query",
        capability="hosted",
        purpose="Query (test-only).",
        input_model=QueryInput,
        output_model=QueryOutput,
        scope="read",
        risk="low",
        handler=run,
    )
    return Capability(name="hosted", contracts=[contract])


@dataclass
class Hosted:
    app: App
    url: str
    issuer: LocalIssuer
    settings: Settings

    @property
    def base(self) -> str:
        return self.url.removesuffix(self.settings.http.path)

    def token(self, **kw: Any) -> str:
        return self.issuer.mint(self.url, **kw)


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with running_issuer() as running:
        yield running


def hosted_settings(tmp_path: Path, issuer: LocalIssuer, **http: Any) -> Settings:
    return Settings(
        state_dir=tmp_path,
        http=HttpSettings(
            port=free_port(),
            api_keys=[ApiKey(sha256=hash_key(API_KEY), subject="agent@ci", roles=["responder"])],
            oidc_issuer=issuer.issuer,
            write_scope=WRITE_SCOPE,
            **http,
        ),
    )


@pytest.fixture
async def hosted(tmp_path: Path, issuer: LocalIssuer) -> Any:
    settings = hosted_settings(tmp_path, issuer)
    app = build_app(settings, [], capabilities=[testkit.build(), query_capability()], http=True)
    with serve_http(app, settings) as url:
        yield Hosted(app=app, url=url, issuer=issuer, settings=settings)
    await app.aclose()


async def post(url: str, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(url, **kw)


async def get(url: str, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.get(url, **kw)
