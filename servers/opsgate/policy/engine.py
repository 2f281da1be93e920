"""The policy engine protocol: one question (`data.opsgate.decision`), many engines."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from opsgate.policy.decision import Decision

DECISION_PATH = "opsgate/decision"


@runtime_checkable
class PolicyEngine(Protocol):
    """Evaluates `data.opsgate.decision` for one policy input document.

    `decide` raises `PolicyError` (or any exception, or hangs past the gate's timeout) on
    trouble; the gate turns every one of those into a deny.
    """

    name: str

    @property
    def revision(self) -> str:
        """An identifier of the policy bundle being evaluated (digest of policies and data)."""
        ...

    async def decide(self, policy_input: dict[str, Any]) -> Decision: ...

    async def aclose(self) -> None: ...
