"""Register a hosted opsgate server in a Microsoft Foundry Toolbox (remote MCP over Streamable HTTP).

    pip install "azure-ai-projects>=2.10" azure-identity
    az login   # or any credential DefaultAzureCredential finds (managed identity, workload identity, env)
    python examples/foundry/register_toolbox.py \\
        --project-endpoint https://<account>.services.ai.azure.com/api/projects/<project> \\
        --server-url https://opsgate.example.com/mcp --auth entra --connection opsgate-entra

    # what it would send, without Azure:
    python examples/foundry/register_toolbox.py --server-url https://opsgate.example.com/mcp \\
        --auth key --connection opsgate-key --print-body

How Foundry authenticates to opsgate is a *project connection* (created once in the Foundry portal or
with Bicep; it holds the secret, so the toolbox definition never does):

- `key`: a Custom keys connection with the header `Authorization: Bearer ogk_...` (an opsgate API key
  from `opsgate keys new --subject agent@foundry --role responder`). One shared identity.
- `entra`: a Microsoft Entra connection (agent identity or project managed identity) with audience
  `api://opsgate`; opsgate verifies the token (`[http] oidc_issuer`, `oidc_audience`) and takes the
  caller's roles from the app roles assigned to that identity. One shared identity, no secret.
- `oauth`: an OAuth identity passthrough connection: each user signs in once, and opsgate sees the
  person (their roles, their approvals). Use it where the audit trail must name the human.

Foundry stops a non-streaming MCP call after 100 seconds. opsgate's long call, `rollback_deployment`,
waits for its rollout for at most `[rollback] wait_s` (45 s by default) and then returns the applied
state for `rollout_status` to follow; this script refuses tools whose configured timeout could pass
the limit. Write tools are also marked `require_approval: always`, so Foundry asks its user before
calling them; opsgate's own policy and out-of-band approvals still apply on top.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

FOUNDRY_CALL_LIMIT_S = 100.0
READ_TOOLS = (
    "runbook_search",
    "runbook_fetch",
    "logs_query",
    "logs_patterns",
    "metrics_query",
    "metrics_anomalies",
    "metrics_compare",
    "rollout_history",
    "rollout_status",
    "changes_recent",
    "workload_status",
    "k8s_events",
    "alerts_list",
    "incident_triage",
)
WRITE_TOOLS = ("rollback_deployment", "alert_silence")
AUTH_MODES = ("key", "entra", "oauth")


class RegistrationError(Exception):
    """The registration cannot go ahead; the message says what to change."""


@dataclass(frozen=True)
class Plan:
    """What to register, validated."""

    toolbox: str
    server_url: str
    server_label: str
    auth: str
    connection: str
    tools: tuple[str, ...]
    description: str

    @property
    def write_tools(self) -> list[str]:
        return [t for t in self.tools if t in WRITE_TOOLS]

    @property
    def read_tools(self) -> list[str]:
        return [t for t in self.tools if t not in WRITE_TOOLS]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Register opsgate in a Microsoft Foundry Toolbox.")
    parser.add_argument("--project-endpoint", help="https://<account>.services.ai.azure.com/api/projects/<project>")
    parser.add_argument("--toolbox", default="opsgate", help="toolbox name (created if missing; a new version if not)")
    parser.add_argument("--server-url", required=True, help="opsgate's public Streamable HTTP URL, ending in /mcp")
    parser.add_argument("--server-label", default="opsgate", help="tools appear as <label>___<tool> in Foundry")
    parser.add_argument("--auth", choices=AUTH_MODES, required=True, help="how Foundry authenticates to opsgate")
    parser.add_argument("--connection", required=True, help="project connection name (or full resource id)")
    parser.add_argument(
        "--tools", default="all", help="'all', 'read' (no write tools) or a comma-separated list of opsgate tools"
    )
    parser.add_argument("--description", default="opsgate: policy-gated logs, metrics, rollback and runbooks")
    parser.add_argument(
        "--opsgate-config", default=None, help="the hosted server's opsgate TOML, to check its tool timeouts"
    )
    parser.add_argument("--print-body", action="store_true", help="print the request body and exit (no Azure calls)")
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    url = urlsplit(args.server_url)
    if url.scheme != "https" and url.hostname not in ("127.0.0.1", "localhost"):
        raise RegistrationError(f"--server-url {args.server_url} must be https (Foundry sends credentials to it)")
    if not url.path.rstrip("/").endswith("/mcp"):
        raise RegistrationError(f"--server-url {args.server_url} should be opsgate's MCP endpoint, ending in /mcp")
    if "___" in args.server_label or not args.server_label.replace("-", "").replace("_", "").isalnum():
        raise RegistrationError(f"--server-label {args.server_label!r}: letters, digits, - and _ only")
    known = READ_TOOLS + WRITE_TOOLS
    tools: tuple[str, ...]
    if args.tools == "all":
        tools = known
    elif args.tools == "read":
        tools = READ_TOOLS
    else:
        tools = tuple(t.strip() for t in args.tools.split(",") if t.strip())
        unknown = [t for t in tools if t not in known]
        if unknown or not tools:
            raise RegistrationError(f"--tools: unknown tool(s) {', '.join(unknown) or '(none given)'}")
    return Plan(
        toolbox=args.toolbox,
        server_url=args.server_url,
        server_label=args.server_label,
        auth=args.auth,
        connection=args.connection,
        tools=tools,
        description=args.description,
    )


def check_call_limits(tools: Sequence[str], timeouts: dict[str, float]) -> list[str]:
    """Tools whose server-side timeout could outlast Foundry's 100 s limit on a non-streaming call."""
    return [
        f"{name} may run {timeouts[name]:g}s, past Foundry's {FOUNDRY_CALL_LIMIT_S:g}s limit "
        "(lower [rollback] wait_s or leave the tool out)"
        for name in tools
        if timeouts.get(name, 0.0) >= FOUNDRY_CALL_LIMIT_S
    ]


def local_timeouts(config: str | None) -> dict[str, float]:
    """Each tool's timeout as opsgate with `config` sets it (empty if opsgate is not installed here)."""
    try:
        from pathlib import Path

        from opsgate.config import load_settings
        from opsgate.server import build_app
    except ImportError:
        return {}
    app = build_app(load_settings(Path(config) if config else None), ["all"])
    try:
        return {name: contract.timeout_s for name, contract in app.gate.contracts.items()}
    finally:
        import asyncio

        asyncio.run(app.aclose())


def toolbox_tool(plan: Plan, connection_id: str) -> Any:
    """The `MCPToolboxTool` for opsgate (the SDK model; `.as_dict()` is its JSON)."""
    from azure.ai.projects.models import MCPToolboxTool, MCPToolFilter, MCPToolRequireApproval

    approval: Any = "never"
    if plan.write_tools:
        approval = MCPToolRequireApproval(
            always=MCPToolFilter(tool_names=plan.write_tools),
            never=MCPToolFilter(tool_names=plan.read_tools),
        )
    return MCPToolboxTool(
        server_label=plan.server_label,
        server_url=plan.server_url,
        server_description=plan.description,
        allowed_tools=list(plan.tools),
        require_approval=approval,
        project_connection_id=connection_id,
    )


def request_body(plan: Plan, connection_id: str) -> dict[str, Any]:
    """The JSON body of `POST {project}/toolboxes/{name}/versions`."""
    return {
        "description": plan.description,
        "metadata": {"opsgate.auth": plan.auth, "opsgate.server_url": plan.server_url},
        "tools": [toolbox_tool(plan, connection_id).as_dict()],
    }


def resolve_connection(client: Any, plan: Plan) -> str:
    """The connection's resource id; checks its credential type fits `--auth`."""
    if plan.connection.startswith("/subscriptions/"):
        return plan.connection
    connection = client.connections.get(plan.connection)
    kind = str(getattr(getattr(connection, "credentials", None), "type", "") or "")
    expected = {"key": ("CustomKeys", "ApiKey"), "entra": ("AAD", "AgenticIdentityToken_Preview"), "oauth": ()}
    if kind and expected[plan.auth] and kind not in expected[plan.auth]:
        raise RegistrationError(
            f"connection {plan.connection!r} uses credential type {kind}, which does not fit --auth {plan.auth}"
        )
    return str(connection.id)


def register(client: Any, plan: Plan, connection_id: str, **request_options: Any) -> Any:
    """Create a new toolbox version (the toolbox itself on first use) and make it the default."""
    body = request_body(plan, connection_id)
    created = client.toolboxes.create_version(
        plan.toolbox,
        tools=[toolbox_tool(plan, connection_id)],
        description=body["description"],
        metadata=body["metadata"],
        **request_options,
    )
    client.toolboxes.update(plan.toolbox, default_version=created.version, **request_options)
    return created


def consumer_endpoint(project_endpoint: str, toolbox: str) -> str:
    return f"{project_endpoint.rstrip('/')}/toolboxes/{toolbox}/mcp?api-version=v1"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        plan = make_plan(args)
        problems = check_call_limits(plan.tools, local_timeouts(args.opsgate_config))
        if problems:
            raise RegistrationError("; ".join(problems))
        if args.print_body:
            print(json.dumps(request_body(plan, plan.connection), indent=2, sort_keys=True))
            return 0
        if not args.project_endpoint:
            raise RegistrationError("--project-endpoint is required (or use --print-body)")
        from azure.ai.projects import AIProjectClient
        from azure.identity import DefaultAzureCredential

        with DefaultAzureCredential() as credential, AIProjectClient(args.project_endpoint, credential) as client:
            created = register(client, plan, resolve_connection(client, plan))
    except RegistrationError as exc:
        print(f"register_toolbox: {exc}", file=sys.stderr)
        return 2
    print(f"toolbox {plan.toolbox} version {created.version}: {len(plan.tools)} opsgate tool(s) via {plan.auth}")
    print(f"agents connect to {consumer_endpoint(args.project_endpoint, plan.toolbox)}")
    print(f"tools are named {plan.server_label}___<tool>, e.g. {plan.server_label}___{plan.tools[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
