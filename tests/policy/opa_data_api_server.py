"""A loopback stand-in for an OPA server, NOT OPA: it speaks OPA's Data API wire format and decides
with opsgate's embedded engine, so `OpaServerEngine` can be tested over real HTTP without an OPA
binary (none can be fetched here).

Wire format, as OPA serves it:
- `POST /v1/data/<path>` with `{"input": ...}` => 200 `{"result": <value>}`, or 200 `{}` when the
  document is undefined;
- errors => `{"code": ..., "message": ...}` with an HTTP error status;
- `GET /v1/status` => `{"result": {"bundles": {name: {"active_revision": ...}}}}`.

`mode` makes it misbehave for the failure tests: "ok", "undefined", "error500", "garbage",
"slow" (sleeps `delay_s` before answering), "missing_allow", "allow_string", "flaky" (500 for the
first `fail_first` requests, then ok).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from opsgate.policy.decision import PolicyError
from opsgate.policy.embedded import EmbeddedEngine
from tests.support.loopback import free_port, serve_asgi


@dataclass
class ServerBehaviour:
    mode: str = "ok"
    delay_s: float = 0.0
    fail_first: int = 0
    requests: int = 0
    paths: list[str] = field(default_factory=list)
    # decides instead of the engine the server started with (e.g. one loaded with broken data)
    engine: EmbeddedEngine | None = None


def build_app(engine: EmbeddedEngine, behaviour: ServerBehaviour) -> Starlette:
    async def data_api(request: Request) -> Response:
        behaviour.requests += 1
        path = request.path_params["path"]
        behaviour.paths.append(path)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse(
                {"code": "invalid_parameter", "message": "body contains malformed input document"},
                status_code=400,
            )
        mode = behaviour.mode
        if mode == "flaky":
            mode = "error500" if behaviour.requests <= behaviour.fail_first else "ok"
        if mode == "slow":
            await asyncio.sleep(behaviour.delay_s)
        if mode == "error500":
            return JSONResponse(
                {
                    "code": "internal_error",
                    "message": "eval_conflict_error: complete rules must not produce multiple outputs",
                },
                status_code=500,
            )
        if mode == "garbage":
            return PlainTextResponse('{"result": {"allow": tru', media_type="application/json")
        if mode == "undefined" or path.replace("/", ".") != "opsgate.decision":
            return JSONResponse({})
        try:
            decision: dict[str, Any] | None = (behaviour.engine or engine).evaluate(body.get("input"))
        except PolicyError as exc:  # as OPA answers an evaluation error
            return JSONResponse({"code": "internal_error", "message": str(exc)}, status_code=500)
        if decision is None:
            return JSONResponse({})
        if mode == "missing_allow":
            decision = {k: v for k, v in decision.items() if k != "allow"}
        if mode == "allow_string":
            decision = {**decision, "allow": "true"}
        return JSONResponse({"result": decision})

    async def status(request: Request) -> Response:
        return JSONResponse({"result": {"bundles": {"opsgate": {"active_revision": engine.revision}}}})

    return Starlette(
        routes=[
            Route("/v1/data/{path:path}", data_api, methods=["POST"]),
            Route("/v1/status", status, methods=["GET"]),
        ]
    )


@contextlib.contextmanager
def serve(policy_dir: Path, behaviour: ServerBehaviour | None = None) -> Iterator[tuple[str, ServerBehaviour]]:
    """Run the stand-in on 127.0.0.1 (random port) in a thread; yields (base url, behaviour)."""
    behaviour = behaviour or ServerBehaviour()
    # the engine keeps one regorus VM per thread, built on first use there: safe to build it here
    with serve_asgi(build_app(EmbeddedEngine(policy_dir), behaviour), free_port()) as url:
        yield url, behaviour
