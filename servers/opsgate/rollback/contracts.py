"""Rollback contracts: rollout history, status, recent changes, and the rollback itself."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import Field, model_validator

from opsgate.contracts import Page, ToolInput, ToolOutput, WriteInput, WriteOutput

NAMESPACE = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"


class DeploymentRef(ToolInput):
    namespace: str = Field(pattern=NAMESPACE, description="Kubernetes namespace")
    deployment: str = Field(pattern=NAME, description="Deployment name")


class HistoryInput(DeploymentRef):
    limit: int = Field(default=10, ge=1, le=50, description="Most revisions to return, newest first")


class RevisionItem(ToolOutput):
    revision: int
    current: bool = Field(description="True for the revision the Deployment runs now")
    images: dict[str, str] = Field(description="container -> image")
    change_cause: str | None
    created: datetime | None
    replica_set: str
    replicas: int
    ready_replicas: int


class HistoryOutput(Page[RevisionItem]):
    namespace: str
    deployment: str
    current_revision: int | None


class StatusInput(DeploymentRef):
    pass


class Condition(ToolOutput):
    type: str
    status: str
    reason: str | None = None
    message: str | None = None


class RolloutStatus(ToolOutput):
    namespace: str
    deployment: str
    revision: int | None
    state: Literal["complete", "progressing", "failed", "paused"]
    message: str
    generation: int
    observed_generation: int
    replicas: int = Field(description="Desired replicas")
    updated_replicas: int
    ready_replicas: int
    available_replicas: int
    images: dict[str, str]
    conditions: list[Condition]


class ChangesInput(ToolInput):
    namespace: str = Field(pattern=NAMESPACE, description="Kubernetes namespace")
    since_minutes: int = Field(default=120, ge=1, le=10080, description="Look back this many minutes")
    deployment: str | None = Field(default=None, pattern=NAME, description="Only this Deployment")
    limit: int = Field(default=50, ge=1, le=200, description="Most changes to return, newest first")


class ChangeItem(ToolOutput):
    deployment: str
    revision: int
    created: datetime | None = Field(description="When the revision's ReplicaSet was created")
    changed_at: datetime | None = Field(
        description="When this revision last rolled out (ReplicaSet creation, or the Deployment's last progress "
        "for the current revision, e.g. after a rollback to an older ReplicaSet)"
    )
    images: dict[str, str]
    change_cause: str | None
    current: bool


class ChangesOutput(Page[ChangeItem]):
    namespace: str
    since: datetime


class RollbackInput(DeploymentRef, WriteInput):
    to_revision: int | None = Field(default=None, ge=1, description="Target revision; default: the previous one")
    dry_run: bool = Field(default=True, description="Preview only (server-side dry run); false applies it")
    reason: str | None = Field(default=None, min_length=3, max_length=500, description="Why (required to apply)")
    approval_id: str | None = Field(
        default=None, pattern=r"^apr_[0-9a-f]{20}$", description="Approval id for a real rollback"
    )

    @model_validator(mode="after")
    def _reason_to_apply(self) -> Self:
        if not self.dry_run and not self.reason:
            raise ValueError("reason is required when dry_run is false")
        return self


class ImageChange(ToolOutput):
    container: str
    before: str | None
    after: str | None


class EnvChange(ToolOutput):
    container: str
    name: str
    before: str | None
    after: str | None


class DryRunOutcome(ToolOutput):
    ok: bool
    message: str


class RollbackOutput(WriteOutput):
    namespace: str
    deployment: str
    from_revision: int | None
    to_revision: int
    dry_run: bool
    applied: bool = Field(description="True when the Deployment was changed")
    failed: bool = Field(description="True when the rollout failed to become ready")
    noop: bool = Field(description="True when the Deployment already runs that template")
    images_before: dict[str, str]
    images_after: dict[str, str]
    image_changes: list[ImageChange]
    env_changes: list[EnvChange]
    other_changes: list[str] = Field(description="Other pod-template fields that differ")
    server_dry_run: DryRunOutcome | None
    rollout: RolloutStatus | None = Field(description="The rollout status when applied (final, or at the wait limit)")
    waited_s: float
    next_step: str
