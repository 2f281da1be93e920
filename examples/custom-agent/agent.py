"""A custom Python agent on the official MCP client that investigates a regression and handles approvals.

    python examples/custom-agent/agent.py --namespace shop --service checkout            # investigate
    python examples/custom-agent/agent.py --namespace shop --service checkout --apply    # and roll back

It starts `opsgate serve all` over stdio (or connects to a hosted server with `--url` and an API key
from `$OPSGATE_API_KEY`), finds the anomaly, correlates it with the service's recent rollout, reads the
error patterns and dry-runs the rollback. With `--apply` it asks for the real rollback: opsgate answers
with a pending approval, the agent prints what a human must run, and waits. It never approves anything
itself: a form elicitation from the server is declined (a headless agent clicking "accept" would prove
nothing), and it calls again with the approval id only after a human granted it out of band.

The decision logic is plain rules so the example runs without a model; in a real agent an LLM chooses
the calls, and this loop is the part you keep: call, read the structured result, handle
`opsgate/approval` in the result metadata, and retry with `approval_id` once approved.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp_types import CallToolResult, ElicitRequestParams, ElicitResult, Implementation, TextContent

WAITING = "still pending"


def _text(result: CallToolResult) -> str:
    return next((b.text for b in result.content if isinstance(b, TextContent)), "")


def _data(result: CallToolResult) -> dict[str, Any]:
    if result.is_error or not isinstance(result.structured_content, dict):
        raise AgentError(_text(result))
    return result.structured_content


class AgentError(Exception):
    pass


async def decline_elicitation(context: Any, params: ElicitRequestParams) -> ElicitResult:
    """This agent has no human at its keyboard: it never accepts a confirmation on anyone's behalf."""
    print(f"[agent] the server asked for confirmation ({params.message}); declining: a human approves out of band")
    return ElicitResult(action="decline")


class Agent:
    def __init__(self, client: Client, namespace: str, service: str) -> None:
        self.client = client
        self.namespace = namespace
        self.service = service

    async def call(self, tool: str, args: dict[str, Any]) -> CallToolResult:
        result = await self.client.call_tool(tool, args)
        print(f"[agent] {tool}: {_text(result)[:300]}")
        return result

    async def investigate(self) -> dict[str, Any] | None:
        """The suspect rollout of the service, or None when the evidence does not point at one."""
        ns, svc = self.namespace, self.service
        anomalies = _data(await self.call("metrics_anomalies", {"namespace": ns, "service": svc, "since": "2h"}))
        starts = [datetime.fromisoformat(a["start"].replace("Z", "+00:00")) for a in anomalies["items"]]
        if not starts:
            print(f"[agent] no anomaly for {svc}: nothing to roll back")
            return None
        began = min(starts)
        changes = _data(await self.call("changes_recent", {"namespace": ns, "deployment": svc, "since_minutes": 240}))
        suspects = [
            c
            for c in changes["items"]
            if c["current"] and began - timedelta(minutes=30) <= datetime.fromisoformat(c["created"]) <= began
        ]
        if not suspects:
            print(f"[agent] the anomaly began {began:%H:%M}Z with no {svc} rollout just before it: escalate")
            return None
        await self.call("logs_patterns", {"service": svc, "namespace": ns, "since": "30m", "min_severity": "warn"})
        return dict(suspects[0])

    async def roll_back(self, suspect: dict[str, Any], *, apply: bool, wait_s: float, poll_s: float) -> bool:
        target = {"namespace": self.namespace, "deployment": self.service}
        preview = _data(await self.call("rollback_deployment", {**target, "dry_run": True}))
        if not apply:
            print(f"[agent] dry run: revision {preview['from_revision']} -> {preview['to_revision']}; run with --apply")
            return True
        reason = f"regression began right after revision {suspect['revision']} ({suspect.get('change_cause')})"
        args = {**target, "dry_run": False, "reason": reason}
        result = await self.call("rollback_deployment", args)
        approval = (result.meta or {}).get("opsgate/approval")
        if result.is_error and isinstance(approval, dict):
            approval_id = str(approval["id"])
            roles = " or ".join(approval.get("approvers") or ["an approver"])
            print(f"[agent] APPROVAL NEEDED: a human with role {roles} runs")
            print(f"[agent]   opsgate approvals approve {approval_id} --key <their SSH key>")
            result = await self._retry_when_approved({**args, "approval_id": approval_id}, wait_s, poll_s)
        outcome = _data(result)
        return bool(outcome.get("applied")) and not outcome.get("failed")

    async def _retry_when_approved(self, args: dict[str, Any], wait_s: float, poll_s: float) -> CallToolResult:
        """Call again with the approval id until the human has decided (or `wait_s` passes)."""
        deadline = time.monotonic() + wait_s
        while True:
            result = await self.client.call_tool("rollback_deployment", args)
            if not (result.is_error and WAITING in _text(result)):
                print(f"[agent] rollback_deployment: {_text(result)[:300]}")
                return result
            if time.monotonic() > deadline:
                raise AgentError(f"approval {args['approval_id']} was not granted within {wait_s:.0f}s")
            await anyio.sleep(poll_s)


def server_params(args: argparse.Namespace) -> Any:
    if args.url:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        key = os.environ.get("OPSGATE_API_KEY")
        if not key:
            raise AgentError("set OPSGATE_API_KEY for a hosted server")
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120)
        return streamable_http_client(args.url, http_client=http)
    command = shlex.split(args.server_command)
    return StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))


async def run(args: argparse.Namespace) -> int:
    info = Implementation(name="opsgate-custom-agent", version="1.0")
    async with Client(server_params(args), client_info=info, elicitation_callback=decline_elicitation) as client:
        agent = Agent(client, args.namespace, args.service)
        suspect = await agent.investigate()
        if suspect is None:
            return 0
        print(f"[agent] suspect: {args.service} revision {suspect['revision']} rolled out at {suspect['created']}")
        ok = await agent.roll_back(suspect, apply=args.apply, wait_s=args.approval_wait, poll_s=args.approval_poll)
    print("[agent] rolled back and the rollout completed" if ok and args.apply else "[agent] done")
    return 0 if ok else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--apply", action="store_true", help="ask for the real rollback (needs a human approval)")
    parser.add_argument("--server-command", default="opsgate serve all", help="stdio server command line")
    parser.add_argument("--url", default=None, help="a hosted opsgate (Streamable HTTP) instead of stdio")
    parser.add_argument("--approval-wait", type=float, default=900.0, help="seconds to wait for the human")
    parser.add_argument("--approval-poll", type=float, default=5.0, help="seconds between checks")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return anyio.run(run, parse_args(argv))
    except AgentError as exc:
        print(f"[agent] stopped: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
