"""The baseline investigator: deterministic, no model, only public tools over a real MCP session.

It works the way the runbooks and skills teach: read the recent changes, find what is anomalous and
since when, look at the rollouts' state and the error log patterns, then rank suspects:

- a rollout of an anomalous service shortly before its anomaly began, or a rollout that is stuck;
- a dependency named in the error logs (a certificate when the errors are x509 failures), when the
  anomalous service did not change;
- load, when request rates rose with no change to explain them.

It proposes a rollback only for a rollout suspect with an earlier revision, and applies it (dry run
first) only when the evidence is strong; otherwise it escalates. When the server offers
`incident_triage`, one call of it replaces the gathering and ranking: its ranked suspects are the
answer, and it rolls back only where triage's next step proposes a rollback (to the revision triage
names). Without it, `gather` and `rank` below do the same work from the individual tools.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mcp import Client
from mcp_types import CallToolResult


@dataclass
class Task:
    """What an investigator is told: the firing alert and where."""

    namespace: str
    alert: str
    service: str | None
    summary: str

    def prompt(self) -> str:
        where = f"service {self.service} in " if self.service else ""
        return (
            f"Alert {self.alert} is firing for {where}namespace {self.namespace}: {self.summary}. Investigate with "
            "the opsgate tools, find the root cause, mitigate it if a tool can (safely), and call submit_diagnosis "
            "with your ranked answer."
        )


@dataclass
class Evidence:
    changes: list[dict[str, Any]] = field(default_factory=list)
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    rollouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    error_lines: dict[str, list[str]] = field(default_factory=dict)
    triage: dict[str, Any] | None = None


@dataclass
class Suspect:
    kind: str
    name: str
    namespace: str | None = None
    revision: int | None = None
    score: float = 0.0
    why: str = ""

    def as_arg(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name}
        if self.namespace:
            out["namespace"] = self.namespace
        if self.revision is not None:
            out["revision"] = self.revision
        return out


def _data(result: CallToolResult) -> dict[str, Any]:
    data = result.structured_content
    return data if isinstance(data, dict) and not result.is_error else {}


def _time(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()
    except ValueError:
        return None


def _service_of(series: str) -> str | None:
    found = re.search(r'service="([^"]+)"', series)
    return found.group(1) if found else None


_HOST = re.compile(r"https?://([a-z0-9.-]+)")
_DEP = re.compile(r"\b([a-z][a-z0-9]*-(?:db|gateway|cache|queue|api))\b")


def _dependency_in(lines: list[str], services: set[str]) -> tuple[str, bool] | None:
    """A dependency named in error lines (and whether the errors are certificate failures)."""
    counts: dict[str, int] = {}
    tls = False
    for line in lines:
        tls = tls or "x509" in line or "certificate" in line
        names = set(_DEP.findall(line))
        for host in _HOST.findall(line):
            names.update(label for label in host.split(".") if "-" in label)
        for name in names - services:
            counts[name] = counts.get(name, 0) + 1
    if not counts:
        return None
    best = max(sorted(counts), key=lambda n: counts[n])
    return best, tls


class BaselineInvestigator:
    """Runs in the eval's process by default (an in-memory MCP session with the same server the agents
    get over stdio); `in_process=False` makes it start the server over stdio like an agent."""

    name = "baseline"

    def __init__(self, *, act: bool = True, in_process: bool = True) -> None:
        self.act = act
        self.in_process = in_process

    async def investigate(self, server: Any, task: Task) -> None:
        async with Client(server) as client:
            triaged = await self.triage(client, task)
            if triaged is not None:
                suspects, step = triaged
                await self.conclude(client, task, suspects, step)
                return
            evidence = await self.gather(client, task)  # an opsgate without the triage capability
            suspects = self.rank(evidence, task)
            await self.conclude(client, task, suspects)

    async def triage(self, client: Client, task: Task) -> tuple[list[Suspect], dict[str, Any]] | None:
        """Suspects and the next step from one `incident_triage` call, or None when the tool is absent."""
        args: dict[str, Any] = {"namespace": task.namespace, "alert": task.alert}
        if task.service:
            args["service"] = task.service
        out = await self.call(client, "incident_triage", args)
        if not out.get("items") and not out.get("next_step"):
            return None
        # The answer carries triage's ranking and its coarse confidence, not its measured figures (lags,
        # sizes), which move with the sampling grid: two runs of a scenario submit the same diagnosis.
        certainty = {"high": 3.6, "medium": 2.4, "low": 1.2}.get(str(out.get("confidence")), 1.2)
        step = dict(out.get("next_step") or {})
        suspects = [
            Suspect(
                str(item["kind"]),
                str(item["name"]),
                item.get("namespace"),
                item.get("revision"),
                certainty if rank == 0 else min(certainty, 4.0 * float(item.get("score") or 0.0)),
                f"incident_triage ranks it {rank + 1} ({out.get('confidence')} confidence); next step: "
                f"{step.get('action', 'investigate')}",
            )
            for rank, item in enumerate(out.get("items") or [])
            if item.get("kind") in ("Deployment", "Dependency", "Certificate", "Load", "Node")
        ]
        return suspects, step

    async def call(self, client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        return _data(await client.call_tool(tool, args))

    async def gather(self, client: Client, task: Task) -> Evidence:
        ns = task.namespace
        ev = Evidence()
        ev.changes = (await self.call(client, "changes_recent", {"namespace": ns, "since_minutes": 360})).get(
            "items"
        ) or []
        ev.anomalies = (await self.call(client, "metrics_anomalies", {"namespace": ns, "since": "2h"})).get(
            "items"
        ) or []
        for change in ev.changes:
            name = str(change.get("deployment"))
            if change.get("current") and name not in ev.rollouts:
                ev.rollouts[name] = await self.call(client, "rollout_status", {"namespace": ns, "deployment": name})
        services = {s for s in (_service_of(str(a.get("series", ""))) for a in ev.anomalies) if s}
        if task.service:
            services.add(task.service)
        for service in sorted(services):
            found = await self.call(
                client,
                "logs_query",
                {"namespace": ns, "service": service, "since": "1h", "min_severity": "error", "limit": 50},
            )
            ev.error_lines[service] = [str(i.get("message", "")) for i in found.get("items") or []]
        return ev

    def rank(self, ev: Evidence, task: Task) -> list[Suspect]:
        ns = task.namespace
        onset: dict[str, float] = {}
        load_up: set[str] = set()
        memory_up: set[str] = set()
        for a in ev.anomalies:
            service = _service_of(str(a.get("series", "")))
            start = _time(a.get("start"))
            if service is None or start is None or a.get("direction") != "up":
                continue
            metric = str(a.get("series", "")).split("{")[0]
            if metric == "request_rate":
                load_up.add(service)
            if metric == "memory_usage_bytes":
                memory_up.add(service)
            onset[service] = min(start, onset.get(service, start))
        changed = {str(c.get("deployment")) for c in ev.changes if c.get("current")}
        suspects: list[Suspect] = []
        for change in ev.changes:
            if not change.get("current"):
                continue
            name = str(change.get("deployment"))
            at = _time(change.get("changed_at") or change.get("created"))
            revision = change.get("revision")
            rollout = ev.rollouts.get(name) or {}
            score, why = 0.0, []
            if rollout.get("state") not in (None, "complete"):
                score += 3.0
                why.append(f"rollout {rollout.get('state')}")
            first = onset.get(name)
            if first is not None and at is not None and at - 300 <= first <= at + 4 * 3600:
                score += 2.0
                if first <= at + 600:
                    score += 1.0
                    why.append("its anomaly began within 10 minutes of the rollout")
                elif name in memory_up or ev.error_lines.get(name):
                    score += 0.8
                    why.append("its anomaly began after the rollout, with its own errors")
                else:
                    why.append("its anomaly began long after the rollout")
            elif first is not None:
                score += 0.5
            if name == task.service:
                score += 0.5
            suspects.append(Suspect("Deployment", name, ns, int(revision) if revision else None, score, "; ".join(why)))
        services = set(onset) | changed
        # errors of anomalous services that did not change, naming something they call
        unchanged_lines = [line for svc, lines in ev.error_lines.items() if svc not in changed for line in lines]
        all_lines = [line for lines in ev.error_lines.values() for line in lines]
        dependency = _dependency_in(unchanged_lines, services) or _dependency_in(all_lines, services)
        changed_anomalous = any(s.score >= 3.0 for s in suspects)
        if dependency is not None:
            name, tls = dependency
            named_by_unchanged = _dependency_in(unchanged_lines, services) is not None
            score = 3.4 if named_by_unchanged else (1.0 if changed_anomalous else 3.0)
            kind = "Certificate" if tls else "Dependency"
            suspects.append(Suspect(kind, name, None, None, score, "named in the errors of unchanged services"))
        if len(load_up) >= 2 or (load_up and not changed_anomalous):
            front = task.service if task.service in load_up else sorted(load_up, key=lambda s: onset[s])[0]
            suspects.append(Suspect("Load", front, ns, None, 3.2 if not changed_anomalous else 0.8, "request rate up"))
        suspects.sort(key=lambda s: (-s.score, s.kind, s.name))
        return suspects

    async def conclude(
        self, client: Client, task: Task, suspects: list[Suspect], step: dict[str, Any] | None = None
    ) -> None:
        top = suspects[0] if suspects else Suspect("Deployment", task.service or "unknown", task.namespace)
        action = "escalate"
        target = None
        if step is not None:  # incident_triage decided: a rollback only where it proposes one
            arguments = step.get("arguments") or {}
            rollback = step.get("action") == "rollback" and arguments.get("deployment") == top.name
            to_revision = arguments.get("to_revision")
        else:
            rollback = top.kind == "Deployment" and bool(top.revision) and (top.revision or 0) > 1 and top.score >= 2.5
            to_revision = (top.revision or 1) - 1
        if top.kind == "Deployment" and rollback:
            action = "rollback"
            target = f"{top.namespace}/{top.name}@{to_revision}"
            if self.act:
                base = {"namespace": top.namespace, "deployment": top.name}
                if to_revision:
                    base["to_revision"] = to_revision
                dry = await client.call_tool("rollback_deployment", {**base, "dry_run": True})
                if not dry.is_error:
                    await client.call_tool(
                        "rollback_deployment",
                        {**base, "dry_run": False, "reason": f"baseline: {top.why or 'top suspect'}"},
                    )
        elif top.kind == "Load" or (step is not None and step.get("action") == "scale"):
            action = "scale"
        category = {
            "Dependency": "dependency-outage",
            "Certificate": "certificate-expiry",
            "Load": "traffic-surge",
        }.get(top.kind, "bad-deploy")
        await client.call_tool(
            "submit_diagnosis",
            {
                "root_cause": top.as_arg(),
                "alternatives": [s.as_arg() for s in suspects[1:4]],
                "category": category,
                "confidence": round(min(1.0, top.score / 4.0), 2),
                "proposed_action": action,
                "action_target": target,
                "summary": top.why or "no strong evidence",
            },
        )
