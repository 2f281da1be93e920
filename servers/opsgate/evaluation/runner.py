"""`opsgate eval`: replay each scenario, let an investigator work it over MCP, score the outcome.

For each scenario: start its world frozen at the anchor (every read sees the same world), write an
opsgate config whose backends read it (autonomy `autonomous`, so the policy's budgets, not a human,
bound writes), start the evaluation server over stdio (`opsgate.evaluation.server`: all tools plus
`submit_diagnosis`), run the investigator, then read its submission, the audit trail and the usage log,
and ask the cluster whether the world recovered.

An agent command (`--agent "CMD"`) runs in the scenario's work folder with:

- `OPSGATE_EVAL_MCP_CONFIG`: the path of an `.mcp.json` (also written to the work folder) whose server
  `opsgate` starts the evaluation server over stdio (the format Claude Code, Copilot CLI and VS Code read);
- `OPSGATE_EVAL_TASK`: the task as text (the firing alert, and to call `submit_diagnosis`);
- `OPSGATE_EVAL_TASK_JSON`: the same as JSON (namespace, alert, service, summary).

The scenario's id is not given (it would name the answer). See docs/scenarios.md.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import anyio
from mcp import StdioServerParameters

from opsgate.audit import AuditLog
from opsgate.evaluation.baseline import BaselineInvestigator, Task
from opsgate.evaluation.scoring import ScenarioScore, chance, rank_of, unsafe_actions
from opsgate.evaluation.server import build_eval_app
from opsgate.evaluation.submit import Suspect, label
from opsgate.sandbox.scenario import Scenario, load_scenario
from opsgate.sandbox.world import SandboxWorld

AGENT_SUBJECT = "agent@opsgate-eval"
RECOVERY_WAIT_S = 20.0


class Investigator(Protocol):
    """Gets the server as stdio parameters (a process to start) or, when `in_process`, the MCP server
    object itself; either way it speaks MCP to it through a client session."""

    name: str
    in_process: bool

    async def investigate(self, server: Any, task: Task) -> None: ...


class AgentCommand:
    """Any agent as a command line: it gets the MCP config file and the task in its environment."""

    in_process = False

    def __init__(self, command: str, timeout_s: float = 600.0) -> None:
        self.command = command
        self.name = command
        self.timeout_s = timeout_s
        self.workdir: Path | None = None
        self.log: str = ""

    async def investigate(self, server: Any, task: Task) -> None:
        assert self.workdir is not None and isinstance(server, StdioServerParameters)
        params = server
        config = self.workdir / ".mcp.json"
        server = {"type": "stdio", "command": params.command, "args": list(params.args), "env": params.env or {}}
        config.write_text(json.dumps({"mcpServers": {"opsgate": server}}, indent=2))
        env = {
            **os.environ,
            "OPSGATE_EVAL_MCP_CONFIG": str(config),
            "OPSGATE_EVAL_TASK": task.prompt(),
            "OPSGATE_EVAL_TASK_JSON": json.dumps(asdict(task)),
        }

        def run() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                shlex.split(self.command), cwd=self.workdir, env=env, capture_output=True, text=True,
                timeout=self.timeout_s, check=False,
            )  # fmt: skip

        done = await anyio.to_thread.run_sync(run)
        self.log = (done.stdout + done.stderr)[-4000:]
        (self.workdir / "agent.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:  # scored as an error naming the exit, not a silent "(no submission)"
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
            raise RuntimeError(f"agent exited {done.returncode} (see agent.log): {last[0][:200]}")


def task_of(scenario: Scenario) -> Task:
    alert = scenario.alert
    return Task(alert.namespace, alert.name, alert.service, alert.annotations.get("summary", alert.name))


def eval_config(world: SandboxWorld, state: Path, kubeconfig: Path) -> str:
    return world.config_toml(state, kubeconfig, autonomy="autonomous", caller=(AGENT_SUBJECT, "responder"))


async def run_scenario(name: str, make_investigator: Callable[[], Investigator], workdir: Path) -> ScenarioScore:
    scenario = load_scenario(name)
    state = workdir / scenario.id
    state.mkdir(parents=True, exist_ok=True)
    record, usage = state / "diagnosis.json", state / "usage.jsonl"
    investigator = make_investigator()
    if isinstance(investigator, AgentCommand):
        investigator.workdir = state
    error = ""
    with SandboxWorld(scenario, mode="frozen") as world:
        kubeconfig = world.write_kubeconfig(state / "kubeconfig")
        config = state / "opsgate.toml"
        config.write_text(eval_config(world, state, kubeconfig))
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "opsgate.evaluation.server", "--config", str(config), "--record", str(record),
                  "--usage", str(usage)],
            env=_server_env(config),
        )  # fmt: skip
        started = time.monotonic()
        try:
            if investigator.in_process:
                app = build_eval_app(config, record, usage)
                try:
                    await investigator.investigate(app.server, task_of(scenario))
                finally:
                    await app.aclose()
            else:
                await investigator.investigate(params, task_of(scenario))
        except Exception as exc:  # an investigator that fails is scored, not fatal to the run
            error = f"{type(exc).__name__}: {exc}"[:300]
        wall = time.monotonic() - started
        mitigated: bool | None = None
        if scenario.recovery.action is not None:
            deadline = time.monotonic() + RECOVERY_WAIT_S
            while not (mitigated := world.recovered()) and time.monotonic() < deadline:
                if not _rolling(world):
                    break
                await anyio.sleep(0.2)
    audit = AuditLog(state / "audit.db")
    records = [r.record for r in audit.records()]
    audit.close()
    submission = json.loads(record.read_text()) if record.is_file() else None
    ranked = [submission["root_cause"], *submission.get("alternatives", [])] if submission else []
    rank = rank_of(ranked, scenario)
    calls = [json.loads(line) for line in usage.read_text().splitlines()] if usage.is_file() else []
    size = sum(int(c.get("bytes", 0)) for c in calls)
    answer = label(Suspect.model_validate(ranked[0])) if ranked else "(no submission)"
    return ScenarioScore(
        scenario=scenario.id,
        fault_class=scenario.fault_class,
        rollback_is_wrong=scenario.rollback_is_wrong,
        submitted=submission is not None,
        answer=answer,
        rank=rank,
        ac1=1.0 if rank == 1 else 0.0,
        ac3=1.0 if rank is not None and rank <= 3 else 0.0,
        chance1=chance(scenario, 1),
        chance3=chance(scenario, 3),
        mitigated=mitigated,
        unsafe=unsafe_actions(records, scenario),
        calls=len(calls),
        bytes=size,
        tokens=(size + 3) // 4,
        wall_s=round(wall, 2),
        error=error,
    )


def _server_env(config: Path) -> dict[str, str]:
    """Only what the server needs (the MCP client adds a safe default environment; no secrets copied into
    the .mcp.json an agent reads)."""
    env = {"OPSGATE_CONFIG": str(config)}
    for name in ("PYTHONPATH", "PATH", "HOME", "XDG_STATE_HOME"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def _rolling(world: SandboxWorld) -> bool:
    """True while some Deployment of the world is not yet at its desired, ready state."""
    from opsgate.sandbox.kube_api import DEPLOYMENTS

    for service in world.scenario.services:
        deployment = world.cluster.get(DEPLOYMENTS, service.namespace, service.name)
        status = deployment.get("status") or {}
        if status.get("observedGeneration") != deployment["metadata"].get("generation"):
            return True
        if int(status.get("updatedReplicas") or 0) != int(status.get("replicas") or 0):
            return True
    return False


async def run_eval(
    names: list[str],
    make_investigator: Callable[[], Investigator],
    *,
    workdir: Path | None = None,
    progress: Callable[[str], None] = lambda _line: None,
) -> list[ScenarioScore]:
    root = workdir or Path(tempfile.mkdtemp(prefix="opsgate-eval-"))
    scores: list[ScenarioScore] = []
    for index, name in enumerate(names, 1):
        progress(f"[{index}/{len(names)}] {name} ...")
        score = await run_scenario(name, make_investigator, root)
        verdict = "AC@1" if score.ac1 else ("AC@3" if score.ac3 else "miss")
        extra = f", {len(score.unsafe)} unsafe" if score.unsafe else ""
        progress(
            f"[{index}/{len(names)}] {name}: {verdict} ({score.answer}), mitigated={score.mitigated}{extra}, "
            f"{score.calls} calls, {score.wall_s:.1f}s"
        )
        scores.append(score)
    return scores


def baseline() -> Investigator:
    return BaselineInvestigator()
