"""What a handler receives beside its arguments: the call's context and target.

A small module of its own so that `contracts` (what a tool is) and `gate` (how a call runs) both use it
without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from mcp.server.context import ServerRequestContext
from pydantic import BaseModel, ConfigDict

from opsgate.caller import Caller
from opsgate.policy.decision import Decision


class Target(BaseModel):
    """What a call acts on; the gate fills a missing environment from configuration."""

    model_config = ConfigDict(frozen=True)

    environment: str | None = None
    namespace: str | None = None
    service: str | None = None

    @cached_property
    def document(self) -> dict[str, Any]:
        """The target as the policy input and the audit record carry it (dumped once per call)."""
        return self.model_dump()


class ProgressFn(Protocol):
    async def __call__(self, progress: float, total: float | None = None, message: str | None = None) -> None: ...


async def no_progress(progress: float, total: float | None = None, message: str | None = None) -> None:
    return None


@dataclass
class CallContext:
    """What a handler may use of the call beyond its arguments."""

    call_id: str
    caller: Caller
    target: Target
    request_id: str | None
    decision: Decision | None = None
    progress: ProgressFn = no_progress
    mcp: ServerRequestContext[Any, Any] | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def redaction(self) -> Callable[[str], str] | None:
        """The policy's redaction for this call, None when it asks for none.

        A handler that filters text the caller will only see redacted (a regex over log lines) filters the
        redacted text: matching the raw text would answer "does the masked secret start with h?".
        """
        decision = self.decision
        if decision is None or not decision.obligations.redact:
            return None
        from opsgate.redaction import redactor_for  # re2 loads with the first call that needs it

        redactor = redactor_for(tuple(decision.obligations.redact_patterns))
        return lambda text: redactor.redact_text(text)[0]
