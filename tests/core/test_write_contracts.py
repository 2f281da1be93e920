"""Write tools declare what the gate reads of them (`dry_run`, `approval_id`, `applied`, `failed`) by
extending the typed bases in `opsgate.contracts`; a write contract that does not is refused when it is
declared, not discovered at the first real write."""

from __future__ import annotations

import pytest
from pydantic import Field

from opsgate.contracts import CallContext, Contract, ToolInput, ToolOutput, WriteInput, WriteOutput


class LooseInput(ToolInput):
    value: int
    dry_run: bool = True  # the right name, but not the declared base: the gate must not guess


class LooseOutput(ToolOutput):
    applied: bool


class SetInput(WriteInput):
    value: int = Field(ge=0)


class SetOutput(WriteOutput):
    value: int


async def _handler(args: SetInput, ctx: CallContext) -> SetOutput:
    return SetOutput(applied=not args.dry_run, value=args.value)


@pytest.mark.parametrize(
    ("input_model", "output_model", "missing"),
    [(LooseInput, SetOutput, "WriteInput"), (SetInput, LooseOutput, "WriteOutput")],
)
def test_a_write_contract_without_the_typed_bases_is_refused(
    input_model: type[ToolInput], output_model: type[ToolOutput], missing: str
) -> None:
    with pytest.raises(ValueError, match=missing):
        Contract(
            name="demo_set",
            capability="demo",
            purpose="Set a value.",
            input_model=input_model,
            output_model=output_model,
            scope="write",
            risk="high",
            handler=_handler,  # type: ignore[arg-type]
        )


def test_write_bases_default_to_a_dry_run_that_applied_nothing() -> None:
    contract = Contract(
        name="demo_set",
        capability="demo",
        purpose="Set a value.",
        input_model=SetInput,
        output_model=SetOutput,
        scope="write",
        risk="high",
        handler=_handler,
    )
    args = SetInput.model_validate({"value": 1})
    assert args.dry_run is True and args.approval_id is None
    schema = contract.input_schema()["properties"]
    assert schema["dry_run"]["default"] is True and "approval_id" in schema
    assert set(contract.output_schema()["required"]) >= {"applied", "value"}
