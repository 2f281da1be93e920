"""The policy data document (`policies/data.json`, `[policy.data]`) and its published JSON Schema.

The Rego rules read `data.opsgate_config`; a value they cannot read (a freeze window with a plain date,
a budget given as a string) would make a rule undefined in Rego. So the data is checked against this
model when an engine loads it and in `opsgate check`, and a document that does not fit refuses to load
with the path of the entry at fault (`opsgate_config.freeze_windows[0].start: ...`). The rules are also
written to deny when they meet such data anyway (OPA may be fed a bundle opsgate never saw).

The published schema is `docs/policy-data.schema.json`, generated from these models
(`python -m opsgate.policy.data_schema > docs/policy-data.schema.json`); a test keeps the two equal. It
is not kept in `policies/`: OPA loads every JSON file of a policy folder as data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from opsgate.policy.decision import PolicyError

SCHEMA_FILE_NAME = "docs/policy-data.schema.json"
SCHEMA_ID = "https://opsgate.dev/schemas/policy-data.schema.json"

# RFC 3339 as Rego's `time.parse_rfc3339_ns` (Go's time.RFC3339) reads it: a date, `T`, a time, and a zone.
RFC3339 = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
_RFC3339 = re.compile(RFC3339)


def _rfc3339(value: str) -> str:
    if not _RFC3339.match(value):
        raise ValueError(
            f"{value!r} is not an RFC 3339 date-time with a zone (e.g. 2026-12-24T00:00:00Z); "
            "a plain date or a time without a zone cannot be evaluated by the policy"
        )
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid date-time: {exc}") from None
    return value


Timestamp = Annotated[
    str,
    Field(json_schema_extra={"format": "date-time", "pattern": RFC3339}),
    AfterValidator(_rfc3339),
]
Name = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FreezeWindow(_Strict):
    """No real write lands in `environments` ("*" for all) from `start` (inclusive) to `end` (exclusive)."""

    start: Timestamp
    end: Timestamp
    environments: list[Name] = Field(min_length=1)
    reason: Name

    @model_validator(mode="after")
    def _ordered(self) -> FreezeWindow:
        start = datetime.fromisoformat(self.start.replace("Z", "+00:00"))
        end = datetime.fromisoformat(self.end.replace("Z", "+00:00"))
        if end <= start:
            raise ValueError(f"end {self.end} is not after start {self.start}")
        return self


class Budget(_Strict):
    """Real writes of one tool (the `budgets` key) or of any write tool (`default`).

    The one place write budgets are configured: the policy denies a write over budget with its reason,
    and the gate reserves the write against the same numbers (`obligations.budget`) before it runs.
    """

    target_interval_s: float = Field(
        ge=0, le=3600, description="seconds between two writes of this tool on one target (at most an hour)"
    )
    target_1h: int = Field(ge=0, description="writes of this tool on one target in the last hour")
    global_1m: int = Field(ge=0, description="writes of any tool in the last minute, across targets")


class SilenceLimits(_Strict):
    """The longest alert silence `alert_silence` may create, in seconds, in production and elsewhere."""

    production: int = Field(default=7200, ge=60)
    default: int = Field(default=14400, ge=60)


class ApprovalChannels(_Strict):
    """Which approval channels (`input.approval.channel`, verified by the server) count where.

    Without it the policy's defaults apply: production `ssh-signature` and `oidc`; elsewhere also
    `confirmation` (a form accept in the client).
    """

    production: list[Literal["ssh-signature", "oidc", "confirmation"]]
    other: list[Literal["ssh-signature", "oidc", "confirmation"]]


class OpsgateConfig(_Strict):
    """`data.opsgate_config`: everything the shipped Rego rules read from data."""

    default_autonomy: Literal["read-only", "advised", "approved", "autonomous"]
    max_items: int = Field(ge=0)
    max_items_by_tool: dict[Name, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    max_points: int = Field(ge=1)
    raw_query_roles: list[Name]
    approver_roles: list[Name] = Field(min_length=1)
    approvals_needed: int = Field(ge=1)
    production_environments: list[Name]
    redact_patterns: list[Name] = Field(default_factory=list)
    budgets: dict[Name, Budget] = Field(json_schema_extra={"required": ["default"]})
    freeze_windows: list[FreezeWindow] = Field(default_factory=list)
    approval_channels: ApprovalChannels | None = None
    alert_silence_max_s: SilenceLimits = Field(default_factory=lambda: SilenceLimits())

    @model_validator(mode="after")
    def _default_budget(self) -> OpsgateConfig:
        if "default" not in self.budgets:
            raise ValueError("budgets needs a `default` entry (the budget of write tools not named)")
        return self


class PolicyData(BaseModel):
    """The whole data document; keys beside `opsgate_config` belong to other policy packages."""

    model_config = ConfigDict(
        extra="allow",
        strict=True,
        json_schema_extra={"$id": SCHEMA_ID, "$schema": "https://json-schema.org/draft/2020-12/schema"},
        title="opsgate policy data",
    )

    opsgate_config: OpsgateConfig


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of the policy data document."""
    return PolicyData.model_json_schema()


def _location(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "<root>"


def validate_policy_data(data: Mapping[str, Any], source: str) -> PolicyData:
    """Check `data` against the schema; raise PolicyError naming `source` and each entry at fault."""
    try:
        return PolicyData.model_validate(dict(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{_location(err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors(include_url=False)
        )
        raise PolicyError(f"policy data {source} does not match its schema ({SCHEMA_FILE_NAME}): {problems}") from None


def schema_text() -> str:
    """The published schema file's exact text."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    print(schema_text(), end="")


if __name__ == "__main__":
    main()
