"""Assembly: settings -> policy engine, audit trail, gate, capabilities -> one MCP server."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette

from opsgate import __version__
from opsgate.approvals import Approvals
from opsgate.audit import AuditLog
from opsgate.config import Settings
from opsgate.contracts import Capability
from opsgate.gate import ApprovalHook, Gate
from opsgate.http_auth import auth_for
from opsgate.http_routes import add_hosted_routes
from opsgate.launch import CAPABILITIES as CAPABILITIES
from opsgate.launch import INSTRUCTIONS
from opsgate.launch import resolve_names as resolve_names
from opsgate.limits import Limiter
from opsgate.policy.engine import PolicyEngine
from opsgate.policy.loader import make_engine
from opsgate.state import State, open_audit, open_state


class UnknownCapability(ValueError):
    pass


def load_capability(name: str, settings: Settings) -> Capability:
    if name not in CAPABILITIES:
        raise UnknownCapability(f"unknown capability {name!r}; choose from {', '.join(CAPABILITIES)} or all")
    if name == "triage":  # the composite: wired to the others' service interfaces (opsgate.composition)
        from opsgate.composition import triage

        return triage(settings)
    module = importlib.import_module(f"opsgate.{name}.server")
    capability: Capability = module.build(settings)
    return capability


def engine_from_settings(settings: Settings) -> PolicyEngine:
    p = settings.policy
    if p.engine == "opa":
        return make_engine("opa", url=p.opa_url, policy_path=p.opa_path, timeout_s=p.timeout_s, retries=p.retries)
    return make_engine("embedded", policy_dir=p.dir, data=p.data)


@dataclass
class App:
    """A built server: the MCP server, its gate, and what to close."""

    server: MCPServer
    gate: Gate
    capabilities: list[Capability]
    state: State | None = None

    async def aclose(self) -> None:
        for capability in self.capabilities:
            await capability.aclose()
        await self.gate.engine.aclose()
        if isinstance(self.gate.approvals, Approvals):
            self.gate.approvals.close()
        self.gate.audit.close()
        self.gate.limiter.close()
        if self.state is not None:
            self.state.close()


def build_app(
    settings: Settings,
    names: Sequence[str] = ("all",),
    *,
    engine: PolicyEngine | None = None,
    audit: AuditLog | None = None,
    approvals: ApprovalHook | None = None,
    capabilities: Sequence[Capability] = (),
    http: bool = False,
) -> App:
    engine = engine or engine_from_settings(settings)
    state = open_state(settings)
    if audit is None:
        audit = open_audit(settings, state.audit_store)
        audit.start_periodic()
    else:
        state.audit_store.close()
    approvals = approvals or Approvals.from_settings(settings, http=http, store=state.approvals)
    gate = Gate(settings, engine, audit, approvals=approvals, limiter=Limiter(settings.limits, state.limits))
    loaded = [load_capability(n, settings) for n in resolve_names(names)] if names else []
    loaded.extend(capabilities)
    for capability in loaded:
        gate.register(capability)
    kwargs: dict[str, Any] = {}
    if http and settings.http.require_auth:
        kwargs["auth"], kwargs["token_verifier"] = auth_for(settings.http, state.api_keys)
    server = MCPServer(
        name="opsgate",
        title="opsgate",
        version=__version__,
        instructions=INSTRUCTIONS,
        middleware=[gate.middleware],
        **kwargs,
    )
    return App(server=server, gate=gate, capabilities=loaded, state=state)


def http_app(app: App, settings: Settings) -> Starlette:
    h = settings.http
    allowed_hosts = [f"{h.host}:{h.port}", f"localhost:{h.port}", f"127.0.0.1:{h.port}"]
    origins = [f"http://{host}" for host in allowed_hosts]
    if h.public_url:
        public = urlsplit(h.public_url)
        allowed_hosts.append(public.netloc)
        origins.append(f"{public.scheme}://{public.netloc}")
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=allowed_hosts,
        allowed_origins=h.allowed_origins or origins,
    )
    starlette = app.server.streamable_http_app(streamable_http_path=h.path, transport_security=security, host=h.host)
    add_hosted_routes(starlette, h, app.gate.contracts)
    hook = app.gate.approvals
    if isinstance(hook, Approvals) and hook.oidc is not None and hook.page_url is not None:
        from opsgate.approval_page import ApprovalPage

        starlette.router.routes.extend(ApprovalPage(hook, settings).routes())
    return starlette
