"""`[runbooks]` settings: light to import, so a server can check its configuration before it builds anything."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from opsgate.config import REPO_ROOT, Settings, load_section


class RunbookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dir: Path = REPO_ROOT / "examples" / "runbooks"


def validate(settings: Settings) -> RunbookSettings:
    """The `[runbooks]` section parsed; ConfigError names a bad key."""
    return load_section("runbooks", settings.runbooks, RunbookSettings)
