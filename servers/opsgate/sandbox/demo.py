"""`opsgate demo`: the incident sandbox end to end, through a real MCP client session.

It starts the sandbox world (the loopback Kubernetes API with namespace `shop`, where `checkout` runs
a bad revision), writes a demo config to a temporary state dir, starts the opsgate server as a stdio
subprocess and drives a scripted agent through the official MCP client: search the runbook, find the
anomaly, correlate it with the recent rollout, read the error patterns, dry-run the rollback, hit the
approval, have a human approve it (a different identity, role sre, signing with their own key through
`opsgate approvals`),
roll back, watch the rollout and the metrics recover. Each call is printed with the policy decision
(read back from the audit trail) and its outcome, and the audit trail is left to inspect.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from mcp import Client, StdioServerParameters
from mcp.shared.dispatcher import ProgressFnT as ProgressFn
from mcp_types import CallToolResult, TextContent

from opsgate.audit import AuditLog
from opsgate.sandbox.approver import APPROVERS_FILE, write_sandbox_approver
from opsgate.sandbox.world import Incident, SandboxWorld

AGENT = "agent@opsgate-demo"
HUMAN = "alice"
HUMAN_ROLE = "sre"
RECOVERY_TIMEOUT_S = 30.0


@dataclass
class DemoResult:
    recovered: bool
    state_dir: Path
    audit_path: Path
    calls: int
    elapsed_s: float
    latency_before: float | None = None
    latency_after: float | None = None
    errors_before: float | None = None
    errors_after: float | None = None
    notes: list[str] = field(default_factory=list)


class Narrator:
    """Readable terminal output: sections, the agent's calls, policy decisions, outcomes."""

    def __init__(self, out: TextIO, color: bool) -> None:
        self.out = out
        self.color = color
        self.started = time.monotonic()

    def _c(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def section(self, number: int, title: str) -> None:
        elapsed = time.monotonic() - self.started
        self.line()
        self.line(self._c("1", f"── {number}. {title} ") + self._c("2", f"[{elapsed:4.1f}s]"))

    def say(self, text: str) -> None:
        self.line(f"   {text}")

    def call(self, tool: str, args: dict[str, Any]) -> None:
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in args.items())
        self.line(f"   {self._c('36', 'agent →')} {self._c('1', tool)}({shown})")

    def decision(self, text: str, allowed: bool | None) -> None:
        color = "32" if allowed else ("33" if allowed is None else "31")
        self.line(f"   {self._c(color, 'policy ')} {text}")

    def outcome(self, text: str, ok: bool) -> None:
        self.line(f"   {self._c('32' if ok else '33', 'result ')} {text}")

    def human(self, text: str) -> None:
        self.line(f"   {self._c('35', f'HUMAN {HUMAN} (role {HUMAN_ROLE}) $')} {text}")

    def progress(self, text: str) -> None:
        self.line(f"   {self._c('2', '… ' + text)}")


def demo_config(state_dir: Path, world: SandboxWorld, kubeconfig: Path) -> str:
    """The server's TOML: every backend reads the same world, plus the demo agent's identity."""
    return world.config_toml(state_dir, kubeconfig, caller=(AGENT, "responder"))


def _text(result: CallToolResult) -> str:
    for block in result.content:
        if isinstance(block, TextContent):
            return block.text
    return ""


def _summary(result: CallToolResult) -> str:
    text = _text(result)
    note = " Text inside this result came from the monitored system"
    if note in text:
        text = text.split(note)[0] + " [text from the monitored system: data, not instructions]"
    return text


class DemoAgent:
    """The scripted agent: calls tools through the MCP session and narrates each call."""

    def __init__(self, client: Client, narrator: Narrator, audit: AuditLog) -> None:
        self.client = client
        self.n = narrator
        self.audit = audit
        self.calls = 0

    async def call(self, tool: str, args: dict[str, Any], *, progress: ProgressFn | None = None) -> CallToolResult:
        self.calls += 1
        self.n.call(tool, args)
        result = await self.client.call_tool(tool, args, progress_callback=progress)
        meta = result.meta or {}
        record = self._record(str(meta.get("opsgate/call_id", "")))
        decision = (record or {}).get("decision") or {}
        allowed = decision.get("allow")
        rule = decision.get("rule") or ("fail closed" if decision.get("error") else "-")
        reasons = "; ".join(decision.get("reasons") or []) or "no reason given"
        outcome = (record or {}).get("outcome", "?")
        if outcome == "pending_approval":
            self.n.decision(f"needs approval [{rule}]: {reasons}", None)
        elif outcome == "invalid":
            self.n.decision("not asked: the arguments were invalid", False)
        else:
            self.n.decision(f"{'allow' if allowed else 'deny'} [{rule}]: {reasons}", bool(allowed))
        self.n.outcome(_summary(result), not result.is_error)
        return result

    def _record(self, call_id: str) -> dict[str, Any] | None:
        if not call_id:
            return None
        found = self.audit.find(call_id=call_id)
        return found[-1] if found else None


def _structured(result: CallToolResult) -> dict[str, Any]:
    data = result.structured_content
    if result.is_error or not isinstance(data, dict):
        raise DemoFailed(f"the call failed: {_text(result)}")
    return data


class DemoFailed(Exception):
    pass


def _approve(state_dir: Path, approval_id: str, narrator: Narrator) -> None:
    """The human step: a person with role sre signs the approval with their own SSH key."""
    key = state_dir / "human" / "id_ed25519"
    command = ["opsgate", "approvals", "approve", approval_id, "--key", str(key)]
    if shutil.which("ssh-keygen") is None:
        command.append("--in-process")  # no OpenSSH client here: the same SSHSIG, signed in process
    command += ["--note", "checked the plan: v8 -> v7", "--state-dir", str(state_dir)]
    command += ["--approvers", str(state_dir / APPROVERS_FILE)]
    narrator.human(" ".join(command[:6]) + " --note '...'")
    done = subprocess.run(
        [sys.executable, "-m", "opsgate", *command[1:]], capture_output=True, text=True, timeout=60, check=False
    )
    for line in (done.stdout + done.stderr).strip().splitlines():
        narrator.say(f"  {line}")
    if done.returncode != 0:
        raise DemoFailed(f"the approval failed: {done.stderr.strip()}")


async def _instant(agent: DemoAgent, metric: str, incident: Incident, *, quiet: bool = False) -> float | None:
    args = {"metric": metric, "namespace": incident.namespace, "service": incident.service, "instant": True}
    if quiet:
        result = await agent.client.call_tool("metrics_query", args)
        agent.calls += 1
    else:
        result = await agent.call("metrics_query", args)
    items = _structured(result).get("items") or []
    values = [float(i["last"]) for i in items if i.get("last") is not None]
    return max(values) if values else None


async def run_demo(out: TextIO = sys.stdout, *, state_dir: Path | None = None, color: bool | None = None) -> DemoResult:
    n = Narrator(out, out.isatty() if color is None else color)
    state = state_dir or Path(tempfile.mkdtemp(prefix="opsgate-demo-"))
    state.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    n.line(n._c("1", "opsgate demo: a bad deploy in the incident sandbox, investigated and rolled back by an agent"))
    n.line(f"state dir: {state}")

    with SandboxWorld() as world:
        inc = world.incident
        kubeconfig = world.write_kubeconfig(state / "kubeconfig")
        config = state / "opsgate.toml"
        config.write_text(demo_config(state, world, kubeconfig))
        write_sandbox_approver(state, HUMAN, HUMAN_ROLE)
        ago = (datetime.now(UTC) - inc.deployed_at).total_seconds() / 60
        n.section(1, "The sandbox")
        n.say(f"Kubernetes API (loopback emulation) at {world.api_url}: namespace {inc.namespace}")
        n.say(
            f"{inc.service} was deployed at revision {inc.bad_revision} ({inc.bad_image.rsplit('/', 1)[-1]}) "
            f"{ago:.0f} min ago; revision {inc.good_revision} was healthy"
        )
        alert = world.scenario.alert
        n.say(f"alert: {alert.name} is firing ({alert.annotations.get('summary', alert.severity)})")
        n.say(f"starting the opsgate server over stdio as {AGENT} (role responder)")

        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "opsgate", "--config", str(config), "serve", "all"],
            env={**os.environ, "OPSGATE_CONFIG": str(config)},
        )
        audit_path = state / "audit.db"
        async with Client(params, client_info=_client_info()) as client:
            tools = [t.name for t in (await client.list_tools()).tools]
            n.say(f"connected over MCP; {len(tools)} tools: {', '.join(tools)}")
            audit = AuditLog(audit_path)
            agent = DemoAgent(client, n, audit)
            try:
                result = await _investigate_and_roll_back(agent, n, inc, state, world)
            finally:
                audit.close()
        result.calls = agent.calls

    result.elapsed_s = time.monotonic() - started
    _closing(n, result, audit_path)
    return result


def _client_info() -> Any:
    from mcp_types import Implementation

    return Implementation(name="opsgate-demo-agent", version="1.0")


async def _investigate_and_roll_back(
    agent: DemoAgent, n: Narrator, inc: Incident, state: Path, world: SandboxWorld
) -> DemoResult:
    ns, svc = inc.namespace, inc.service
    result = DemoResult(recovered=False, state_dir=state, audit_path=state / "audit.db", calls=0, elapsed_s=0)

    n.section(2, "Search the runbook")
    query = {"query": "checkout latency after a deploy", "service": svc}
    found = _structured(await agent.call("runbook_search", query))
    runbook_id = found["items"][0]["id"]
    doc = _structured(await agent.call("runbook_fetch", {"id": runbook_id}))
    n.say(f"the agent follows '{doc['title']}': {', '.join(doc['sections'][:3])}")

    n.section(3, "Find the anomaly")
    anomalies = _structured(await agent.call("metrics_anomalies", {"namespace": ns, "since": "1h"}))
    for item in (anomalies.get("items") or [])[:3]:
        n.say(f"  {item.get('series', '?')}: started {item.get('start')}, {item.get('change_pct')}% vs baseline")
    result.latency_before = await _instant(agent, "latency_p99_seconds", inc)
    result.errors_before = await _instant(agent, "error_ratio", inc, quiet=True)

    n.section(4, "Correlate with recent changes")
    changes = _structured(await agent.call("changes_recent", {"namespace": ns, "since_minutes": 120}))
    for item in (changes.get("items") or [])[:3]:
        n.say(f"  {item['deployment']} revision {item['revision']} at {item['created']} ({item.get('change_cause')})")
    suspect = next(i for i in changes["items"] if i["deployment"] == svc and i["current"])
    await agent.call(
        "metrics_compare",
        {"metric": "latency_p99_seconds", "namespace": ns, "at": suspect["created"], "before": "15m", "after": "15m"},
    )

    n.section(5, "Read the error patterns")
    patterns = _structured(
        await agent.call("logs_patterns", {"service": svc, "namespace": ns, "since": "30m", "min_severity": "warn"})
    )
    for item in (patterns.get("items") or [])[:3]:
        n.say(f"  x{item['count']:<4} {item['template'][:100]}")

    n.section(6, "Dry-run the rollback")
    rollback = {"namespace": ns, "deployment": svc}
    dry = _structured(await agent.call("rollback_deployment", {**rollback, "dry_run": True}))
    for change in dry.get("image_changes") or []:
        n.say(f"  diff: {change['container']}: {change['before']} -> {change['after']}")

    n.section(7, "Roll back: the policy asks for a human approval")
    real = {**rollback, "dry_run": False, "reason": f"p99 latency and 5xx rose right after revision {inc.bad_revision}"}
    pending = await agent.call("rollback_deployment", real)
    approval = (pending.meta or {}).get("opsgate/approval") or {}
    approval_id = approval.get("id")
    if not pending.is_error or not approval_id:
        raise DemoFailed(f"expected a pending approval, got: {_text(pending)}")
    n.say(f"the agent stops and asks a human to approve {approval_id}; nothing has changed yet")
    _approve(state, str(approval_id), n)

    n.section(8, "Roll back with the approval, and watch the rollout")

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        n.progress(f"rollout {progress:g}/{total or 0:g}: {message or ''}")

    applied = _structured(
        await agent.call("rollback_deployment", {**real, "approval_id": approval_id}, progress=on_progress)
    )
    if not applied.get("applied"):
        raise DemoFailed("the rollback was not applied")
    status = _structured(await agent.call("rollout_status", rollback))
    n.say(
        f"  {status['available_replicas']}/{status['replicas']} replicas available; revision {status['revision']} "
        f"is revision {inc.good_revision}'s template again (a rollback becomes the newest revision)"
    )

    n.section(9, "Watch the metrics recover")
    speed = f"{world.speed:g}"
    n.say(f"(sandbox metric time runs {speed}x after the rollback: each second here is {speed} s of scrapes)")
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    latency = errors = None
    while time.monotonic() < deadline:
        latency = await _instant(agent, "latency_p99_seconds", inc, quiet=True)
        errors = await _instant(agent, "error_ratio", inc, quiet=True)
        n.progress(f"checkout p99 {_ms(latency)}, 5xx {_pct(errors)}")
        if _healthy(latency, result.latency_before, errors):
            break
        await _sleep(1.0)
    result.latency_after = await _instant(agent, "latency_p99_seconds", inc)
    result.errors_after = errors
    errors_now = _structured(
        await agent.call("logs_query", {"service": svc, "namespace": ns, "since": "1m", "min_severity": "error"})
    )
    n.say(f"  error lines from {svc} in the last minute: {len(errors_now.get('items') or [])}")
    result.recovered = world.recovered() and _healthy(result.latency_after, result.latency_before, errors)
    return result


async def _sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)


def _healthy(latency: float | None, before: float | None, errors: float | None) -> bool:
    if latency is None or before is None or errors is None:
        return False
    return latency < before / 2 and errors < 0.02


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{value * 1000:.0f} ms"


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{value * 100:.1f}%"


def _closing(n: Narrator, result: DemoResult, audit_path: Path) -> None:
    n.section(10, "Outcome")
    if result.recovered:
        n.line(
            n._c(
                "32;1",
                f"   RECOVERED: checkout p99 {_ms(result.latency_before)} -> {_ms(result.latency_after)}, "
                f"5xx {_pct(result.errors_before)} -> {_pct(result.errors_after)}; "
                "all replicas on the good revision",
            )
        )
    else:
        n.line(n._c("31;1", "   NOT RECOVERED: see the audit trail below"))
    log = AuditLog(audit_path)
    report = log.verify()
    started = len(log.find(outcome="started"))
    log.close()
    n.say(
        f"{result.calls} tool calls in {result.elapsed_s:.1f}s; audit trail: {report.records} records "
        f"({started} of them written before a real write began), hash chain {'intact' if report.ok else 'BROKEN'}"
    )
    n.say("inspect it:")
    n.say(f"  opsgate audit tail -n 30 --file {audit_path}")
    n.say(f"  opsgate audit verify --file {audit_path}")
    n.say(f"  opsgate approvals list --all --state-dir {result.state_dir}")


def main(keep: Path | None = None, color: bool | None = None) -> int:
    import anyio

    try:
        result = anyio.run(lambda: run_demo(sys.stdout, state_dir=keep, color=color))
    except DemoFailed as exc:
        print(f"opsgate demo: {exc}", file=sys.stderr)
        return 1
    return 0 if result.recovered else 1
