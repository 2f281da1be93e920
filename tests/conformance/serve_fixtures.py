"""Serve the conformance fixtures behind opsgate's gate and Streamable HTTP transport (test only).

    python -m tests.conformance.serve_fixtures --port 8799

The conformance CLI sends no credentials, so a small ASGI wrapper adds a static API key to every
request that has none: authentication, the gate, policy and audit all still run as in production.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from opsgate.config import ApiKey, HttpSettings, Settings
from opsgate.http_auth import hash_key
from opsgate.server import App, build_app, http_app
from tests.support import conformance_fixtures

FIXTURE_KEY = "ogk_conformance-fixture-key-loopback-only"


class DefaultCredentials:
    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.header = f"Bearer {key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not any(k == b"authorization" for k, _ in scope["headers"]):
            scope = {**scope, "headers": [*scope["headers"], (b"authorization", self.header)]}
        await self.app(scope, receive, send)


def fixture_settings(state_dir: Path, port: int) -> Settings:
    return Settings(
        state_dir=state_dir,
        http=HttpSettings(
            port=port,
            api_keys=[ApiKey(sha256=hash_key(FIXTURE_KEY), subject="conformance@ci", roles=["responder"])],
        ),
    )


def fixture_app(settings: Settings) -> tuple[App, ASGIApp]:
    app = build_app(settings, [], capabilities=[conformance_fixtures.build()], http=True)
    conformance_fixtures.register_ungated(app.server)
    return app, DefaultCredentials(http_app(app, settings), FIXTURE_KEY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--state-dir", type=Path, default=None)
    args = parser.parse_args()
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="opsgate-conformance-"))
    settings = fixture_settings(state_dir, args.port)
    _, asgi = fixture_app(settings)
    uvicorn.run(asgi, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
