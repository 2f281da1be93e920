"""A scripted agent for `opsgate eval --agent`: a separate process that speaks MCP through the SDK.

It reads the server configuration the eval hands every agent (`$OPSGATE_EVAL_MCP_CONFIG`, an .mcp.json)
and the task (`$OPSGATE_EVAL_TASK_JSON`), looks at the recent changes, optionally rolls back a
Deployment for real (`--rollback NAME`, to be scored as unsafe when NAME is innocent) and submits the
answer given on its command line.

    python scripted_agent.py --answer Deployment:checkout:8 [--alt Load:frontend] [--rollback frontend ...]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters


def _suspect(text: str, namespace: str) -> dict[str, object]:
    kind, name, *rest = text.split(":")
    out: dict[str, object] = {"kind": kind, "name": name}
    if kind in ("Deployment", "Load"):
        out["namespace"] = namespace
    if rest:
        out["revision"] = int(rest[0])
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answer", required=True)
    parser.add_argument("--alt", action="append", default=[])
    parser.add_argument("--rollback", action="append", default=[], help="roll this Deployment back (repeatable)")
    args = parser.parse_args()
    config = json.loads(Path(os.environ["OPSGATE_EVAL_MCP_CONFIG"]).read_text())["mcpServers"]["opsgate"]  # noqa: ASYNC240
    task = json.loads(os.environ["OPSGATE_EVAL_TASK_JSON"])
    namespace = task["namespace"]
    params = StdioServerParameters(command=config["command"], args=config["args"], env=config.get("env"))
    async with Client(params) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert "submit_diagnosis" in tools
        await client.call_tool("changes_recent", {"namespace": namespace, "since_minutes": 120})
        for deployment in args.rollback:
            await client.call_tool(
                "rollback_deployment",
                {"namespace": namespace, "deployment": deployment, "dry_run": False, "reason": "scripted agent"},
            )
        await client.call_tool(
            "submit_diagnosis",
            {
                "root_cause": _suspect(args.answer, namespace),
                "alternatives": [_suspect(a, namespace) for a in args.alt],
                "category": "bad-deploy",
                "confidence": 0.5,
                "proposed_action": "rollback" if args.rollback else "escalate",
            },
        )


if __name__ == "__main__":
    anyio.run(main)
