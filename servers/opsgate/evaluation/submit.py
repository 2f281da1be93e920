"""`submit_diagnosis`: the eval-only tool an investigator answers with (as SREGym's submission).

It exists only in the evaluation server (`opsgate.evaluation.server`), which adds this capability to the
app it assembles; `opsgate serve` and `opsgate sandbox` never load it. A call records the answer to a
file the eval reads after the run (the last call wins); it changes nothing in the world.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field

from opsgate.contracts import Capability, Contract
from opsgate.gate import CallContext

Kind = Literal["Deployment", "Dependency", "Load", "Certificate", "Node"]
ProposedAction = Literal["rollback", "scale", "restart", "escalate", "none"]


class Suspect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind = Field(description="Deployment for a change; Dependency, Load or Certificate for a non-change cause")
    namespace: str | None = Field(default=None, max_length=63)
    name: str = Field(min_length=1, max_length=253, description="Deployment, dependency or service name")
    revision: int | None = Field(default=None, ge=1, description="The guilty revision, for a Deployment")


class DiagnosisInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    root_cause: Suspect
    alternatives: list[Suspect] = Field(default_factory=list, max_length=4, description="Next suspects, in order")
    category: str = Field(min_length=1, max_length=64, description="e.g. bad-deploy, dependency-outage, traffic-surge")
    confidence: float = Field(ge=0, le=1)
    proposed_action: ProposedAction
    action_target: str | None = Field(default=None, max_length=253, description="namespace/deployment[@revision]")
    summary: str = Field(default="", max_length=2000)


class DiagnosisRecorded(BaseModel):
    recorded: bool
    ranked: list[str]


def label(s: Suspect) -> str:
    """How the eval names a suspect: `Deployment shop/checkout@8`."""
    where = f"{s.namespace}/" if s.namespace else ""
    return f"{s.kind} {where}{s.name}" + (f"@{s.revision}" if s.revision else "")


def build_submit_capability(record: Path) -> Capability:
    async def submit(args: DiagnosisInput, ctx: CallContext) -> DiagnosisRecorded:
        text = json.dumps(args.model_dump(mode="json"), indent=2)
        await anyio.Path(record).write_text(text)
        return DiagnosisRecorded(recorded=True, ranked=[label(s) for s in [args.root_cause, *args.alternatives]])

    return Capability(
        name="evaluation",
        contracts=[
            Contract(
                name="submit_diagnosis",
                capability="evaluation",
                title="Submit diagnosis (evaluation only)",
                purpose="Record your answer for this evaluation: the root cause (then alternatives, ranked), the "
                "category, your confidence and the action you propose. Exists only under `opsgate eval`.",
                input_model=DiagnosisInput,
                output_model=DiagnosisRecorded,
                scope="read",
                risk="low",
                handler=submit,
                summarize=lambda out: f"Diagnosis recorded: {', '.join(out.ranked)}.",
            )
        ],
    )
