"""`[rollback]` settings: light to import, so a server can check its configuration before it builds anything."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from opsgate.config import Settings, load_section


class RollbackSettings(BaseModel):
    """`[rollback]`: which cluster, and how long a rollback waits for its rollout."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["auto", "kubernetes"] = Field(
        default="auto", description="auto and kubernetes: the cluster of api_url, kubeconfig or in_cluster"
    )
    api_url: str | None = Field(default=None, description="API server URL (no credentials; e.g. the loopback API)")
    kubeconfig: Path | None = None
    context: str | None = None
    in_cluster: bool = False
    request_timeout_s: float = Field(default=8.0, gt=0, le=60)
    wait_s: float = Field(default=30.0, ge=0, le=90, description="Longest wait for a rollout inside one call")
    poll_s: float = Field(default=0.5, gt=0, le=10)


def validate(settings: Settings) -> RollbackSettings:
    """The `[rollback]` section parsed; ConfigError names a bad key."""
    return load_section("rollback", settings.rollback, RollbackSettings)
