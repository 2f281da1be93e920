"""skills/: each SKILL.md has valid Agent Skills front matter, and every tool and argument it names
exists in the live `tools/list` of `opsgate serve all` (read over an MCP session)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
import yaml
from mcp import Client

from opsgate.config import Settings
from opsgate.server import build_app

REPO = Path(__file__).resolve().parents[1]
SKILLS = sorted((REPO / "skills").glob("*/SKILL.md"))
NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
TOOL_PREFIXES = ("logs_", "log_", "metrics_", "metric_", "rollout_", "rollback_", "changes_", "runbook_", "runbooks_")
CALL = re.compile(r"\b([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\(([^`]*?)\)")
ARG = re.compile(r"(?:^|[(,\s])([a-z][a-z0-9_]*)=")
IDENT = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")
SKILL_REF = re.compile(r"`([a-z0-9-]+)` skill")


@dataclass
class Finding:
    skill: str
    problem: str


async def _list_tools(state_dir: Path) -> dict[str, set[str]]:
    app = build_app(Settings(state_dir=state_dir), ["all"])
    try:
        async with Client(app.server) as client:
            tools = (await client.list_tools()).tools
    finally:
        await app.aclose()
    return {t.name: set((t.input_schema or {}).get("properties", {})) for t in tools}


@pytest.fixture(scope="module")
def live_tools(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Tool name -> argument names, from `tools/list` of the full server (all capabilities)."""
    return anyio.run(_list_tools, tmp_path_factory.mktemp("skills-state"))


def front_matter(text: str) -> dict[str, object]:
    match = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert match, "SKILL.md must start with YAML front matter between --- lines"
    data = yaml.safe_load(match.group(1))
    assert isinstance(data, dict)
    return data


def _unquoted(text: str) -> str:
    return re.sub(r'"[^"]*"', '""', text)


def check_skill(name: str, text: str, tools: dict[str, set[str]], skill_names: set[str]) -> list[Finding]:
    """Every tool a skill calls or names exists, every `arg=` it passes is an argument of that tool (or,
    outside a call, of a tool named in the same section), and every skill it refers to exists."""
    findings: list[Finding] = []
    body = text.split("\n---\n", 1)[1]
    for section in re.split(r"\n(?=#)", body):
        spans = re.findall(r"`([^`]+)`", section)
        named: set[str] = set()
        loose_args: list[str] = []
        for span in spans:
            calls = list(CALL.finditer(_unquoted(span)))
            for call in calls:
                tool, inner = call.group(1), call.group(2)
                if tool not in tools:
                    findings.append(Finding(name, f"calls unknown tool {tool}"))
                    continue
                named.add(tool)
                for arg in ARG.findall(inner):
                    if arg not in tools[tool]:
                        findings.append(Finding(name, f"{tool} has no argument {arg!r}"))
            if calls:
                continue
            bare = span.strip()
            if IDENT.match(bare) and bare.startswith(TOOL_PREFIXES):
                if bare in tools:
                    named.add(bare)
                else:
                    findings.append(Finding(name, f"names unknown tool {bare}"))
            loose_args.extend(ARG.findall(_unquoted(bare)) if re.match(r"^[a-z_]+=", bare) else [])
        for arg in loose_args:
            if not any(arg in tools[t] for t in named):
                findings.append(
                    Finding(name, f"`{arg}=` is not an argument of any tool named in its section ({sorted(named)})")
                )
    for ref in SKILL_REF.findall(body):
        if ref not in skill_names:
            findings.append(Finding(name, f"refers to a skill {ref!r} that does not exist"))
    return findings


def test_the_four_incident_workflows_have_skills() -> None:
    names = {p.parent.name for p in SKILLS}
    assert {"triage-alert", "investigate-regression", "rollback-deployment", "follow-runbook"} <= names


@pytest.mark.parametrize("path", SKILLS, ids=lambda p: p.parent.name)
def test_front_matter_follows_the_agent_skills_format(path: Path) -> None:
    meta = front_matter(path.read_text())
    assert meta["name"] == path.parent.name
    assert isinstance(meta["name"], str) and NAME.match(meta["name"]) and len(meta["name"]) <= 64
    description = meta["description"]
    assert isinstance(description, str) and 40 <= len(description) <= 1024
    assert "Use when" in description, "the description should say when to use the skill"


@pytest.mark.parametrize("path", SKILLS, ids=lambda p: p.parent.name)
def test_skill_names_only_real_tools_and_arguments(path: Path, live_tools: dict[str, set[str]]) -> None:
    skill_names = {p.parent.name for p in SKILLS}
    text = path.read_text()
    assert check_skill(path.parent.name, text, live_tools, skill_names) == []
    mentioned = {c.group(1) for c in CALL.finditer(text)}
    assert mentioned & set(live_tools), "a skill should drive at least one opsgate tool"


def test_every_tool_is_taught_by_some_skill(live_tools: dict[str, set[str]]) -> None:
    taught = {c.group(1) for path in SKILLS for c in CALL.finditer(path.read_text())}
    assert set(live_tools) - taught == set()


def test_the_checker_catches_made_up_tools_and_arguments(live_tools: dict[str, set[str]]) -> None:
    bad = """---
name: bad
description: x
---
# Step
Call `logs_search(service="a")`, then `logs_query(service="a", severity="error")`, then `metric_query`.
Pass `dry_run=false` here, and see the `nonexistent-skill` skill.
"""
    problems = {f.problem for f in check_skill("bad", bad, live_tools, {"bad"})}
    assert problems == {
        "calls unknown tool logs_search",
        "logs_query has no argument 'severity'",
        "names unknown tool metric_query",
        "`dry_run=` is not an argument of any tool named in its section (['logs_query'])",
        "refers to a skill 'nonexistent-skill' that does not exist",
    }
