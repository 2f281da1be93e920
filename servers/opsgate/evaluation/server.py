"""The evaluation's MCP server process: `opsgate serve all` plus `submit_diagnosis` and usage counting,
served over stdio the way `opsgate serve` serves it (`opsgate.launch`, `opsgate.stdio`).

    python -m opsgate.evaluation.server --config eval.toml --record diagnosis.json --usage usage.jsonl

Every tool result's size is appended to the usage file (tool, bytes of text content), so the eval can
report calls, bytes and estimated tokens for any investigator, including an agent it cannot see into.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
from mcp_types import TextContent

from opsgate.config import load_settings
from opsgate.evaluation.submit import build_submit_capability
from opsgate.launch import DeferredApp
from opsgate.server import App, build_app
from opsgate.stdio import serve_stdio


def build_eval_app(config: Path, record: Path, usage: Path) -> App:
    """The app `opsgate serve all` builds from `config`, plus `submit_diagnosis` and usage counting."""
    settings = load_settings(config)
    app = build_app(settings, ["all"], capabilities=[build_submit_capability(record)])
    gate = app.gate
    original = gate.call_tool

    async def counted(*a: Any, **kw: Any) -> Any:
        result = await original(*a, **kw)
        content = getattr(result, "content", None) or []
        size = sum(len(b.text.encode()) for b in content if isinstance(b, TextContent))
        name = a[0] if a else kw.get("name", "?")
        error = bool(getattr(result, "is_error", False))
        line = json.dumps({"tool": str(name), "bytes": size, "error": error}) + "\n"
        async with await anyio.open_file(usage, "a") as out:
            await out.write(line)
        return result

    gate.call_tool = counted  # type: ignore[method-assign]
    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opsgate.evaluation.server")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--record", type=Path, required=True, help="where submit_diagnosis writes the answer")
    parser.add_argument("--usage", type=Path, required=True, help="JSON lines: one per tool call")
    args = parser.parse_args(argv)
    for name in ("httpx", "httpcore", "kubernetes", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    load_settings(args.config)  # a bad config stops the server now, not at the agent's first call
    # the same stdio path as `opsgate serve`: `initialize` answered at once (agents time the handshake), the
    # app built on first use, and every malformed JSON-RPC line answered with an error (opsgate.stdio)
    deferred = DeferredApp(lambda: build_eval_app(args.config, args.record, args.usage))

    async def serve() -> None:
        try:
            await serve_stdio(deferred.server)
        finally:
            await deferred.aclose()

    anyio.run(serve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
