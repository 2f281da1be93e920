"""The policy decision document and its strict parsing.

A decision that does not parse is a deny: the gate never guesses what a policy meant. `allow` is
required of every decision; `require_approval` of every decision about a write (`require_fields`),
and when it is true it wins over `allow`.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class PolicyError(Exception):
    """The policy engine could not give a usable decision (fail closed: the gate denies)."""


class WriteBudget(BaseModel):
    """The budget an allowed real write is reserved against (policy data `budgets`, the one source)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    target_interval_s: float = Field(ge=0)
    target_1h: int = Field(ge=0)
    global_1m: int = Field(ge=0)


class Obligations(BaseModel):
    """What the gate must do to an allowed call's output or execution."""

    model_config = ConfigDict(extra="ignore", strict=True)

    max_items: int | None = Field(default=None, ge=0)
    redact: bool = True
    redact_patterns: list[str] = Field(default_factory=list)
    dry_run_only: bool = False
    confirmation_ok: bool = False
    # for an allowed real write: the gate refuses to run it without one (fail closed)
    budget: WriteBudget | None = None


class Decision(BaseModel):
    """`data.opsgate.decision`, as the shipped policy returns it."""

    model_config = ConfigDict(extra="ignore", strict=True)

    allow: bool
    reasons: list[str] = Field(default_factory=list)
    require_approval: bool | None = Field(
        default=None, description="Required for writes (the gate denies a write decision without it)"
    )
    approvers: list[str] = Field(default_factory=list)
    approvals_needed: int = Field(default=0, ge=0)
    alternative: str | None = None
    rule: str | None = None
    obligations: Obligations = Field(default_factory=Obligations)


# The fields a decision must carry, by the call's scope (a missing one makes the decision malformed).
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {"read": ("allow",), "write": ("allow", "require_approval")}


def require_fields(decision: Decision, scope: str) -> None:
    """Raise PolicyError when the decision lacks a field the gate needs for a call of this scope."""
    missing = [name for name in REQUIRED_FIELDS.get(scope, REQUIRED_FIELDS["write"]) if getattr(decision, name) is None]
    if missing:
        raise PolicyError(
            f"policy decision is malformed: a {scope} decision needs {', '.join(missing)} (missing); "
            "the gate never assumes a default"
        )


def parse_decision_json(raw: str | bytes) -> Decision:
    """Parse an engine's result given as JSON text, straight into a Decision.

    What does not validate is parsed again by `parse_decision`, so an undefined or malformed result
    raises the same PolicyError whichever form the engine gave it in.
    """
    try:
        return Decision.model_validate_json(raw)
    except ValidationError:
        try:
            value = json.loads(raw)
        except ValueError:
            raise PolicyError("policy decision is malformed: not JSON") from None
        return parse_decision(value)


def parse_decision(raw: Any) -> Decision:
    """Parse an engine's raw result; an undefined (None, `{}`) or malformed result raises PolicyError."""
    if raw is None or raw == {}:
        raise PolicyError("policy decision is undefined (data.opsgate.decision produced no value)")
    if not isinstance(raw, dict):
        raise PolicyError(f"policy decision is malformed: expected an object, got {type(raw).__name__}")
    try:
        return Decision.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise PolicyError(f"policy decision is malformed: {problems}") from None
