"""A test-only contract set: tiny read and write tools that exercise the gate, nothing else.

Used by the test suite and the gate benchmark. It is never part of `serve all`; it is served only
when a test or benchmark registers it explicitly.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from opsgate import contracts
from opsgate.contracts import Capability, Contract, Target, ToolInput, ToolOutput
from opsgate.gate import CallContext


class EchoInput(ToolInput):
    text: str = Field(default="ping", max_length=1000)


class EchoOutput(ToolOutput):
    text: str


class NoArgs(ToolInput):
    pass


class WriteInput(contracts.WriteInput):
    namespace: str = Field(pattern=r"^[a-z0-9-]{1,63}$")
    service: str = Field(pattern=r"^[a-z0-9-]{1,63}$")
    value: int = Field(ge=0, le=1000)


class WriteOutput(contracts.WriteOutput):
    value: int


class Ledger:
    """Side effects of the write tool, so a test can prove that nothing executed."""

    def __init__(self) -> None:
        self.executed: list[dict[str, Any]] = []


def build(ledger: Ledger | None = None) -> Capability:
    ledger = ledger or Ledger()

    async def echo(args: EchoInput, ctx: CallContext) -> EchoOutput:
        ledger.executed.append({"tool": "testkit_echo", "text": args.text})
        return EchoOutput(text=args.text)

    async def clock(args: NoArgs, ctx: CallContext) -> EchoOutput:
        ledger.executed.append({"tool": "testkit_noargs"})
        return EchoOutput(text="tick")

    async def write(args: WriteInput, ctx: CallContext) -> WriteOutput:
        ledger.executed.append({"tool": "testkit_write", "value": args.value, "dry_run": args.dry_run})
        return WriteOutput(applied=not args.dry_run, value=args.value)

    def write_target(args: WriteInput) -> Target:
        return Target(namespace=args.namespace, service=args.service)

    contracts: list[Contract[Any, Any]] = [
        Contract(
            name="testkit_echo",
            capability="testkit",
            purpose="Echo text back (test-only).",
            input_model=EchoInput,
            output_model=EchoOutput,
            scope="read",
            risk="low",
            handler=echo,
            summarize=lambda out: f"echo: {out.text}",
        ),
        Contract(
            name="testkit_noargs",
            capability="testkit",
            purpose="A tool with no arguments (test-only).",
            input_model=NoArgs,
            output_model=EchoOutput,
            scope="read",
            risk="low",
            handler=clock,
        ),
        Contract(
            name="testkit_write",
            capability="testkit",
            purpose="Set a value on a service (test-only write).",
            input_model=WriteInput,
            output_model=WriteOutput,
            scope="write",
            risk="high",
            handler=write,
            target=write_target,
        ),
    ]
    capability = Capability(name="testkit", contracts=contracts)
    capability.ledger = ledger  # type: ignore[attr-defined]
    return capability
