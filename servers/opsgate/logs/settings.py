"""The `[logs]` configuration section: which backend, its settings, and the response budgets."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from opsgate.config import ConfigError, Settings, load_section
from opsgate.durations import parse_duration
from opsgate.logs.backend_settings import AzureSettings, KubernetesSettings, LokiSettings
from opsgate.logs.backends.files import FilesSettings

BACKENDS = ("files", "kubernetes", "loki", "azure")
EXAMPLES_NOW = datetime.fromisoformat("2026-11-23T05:00:00+00:00")
"""The clock of the bundled example logs: their incident ends shortly before this moment."""


class LogsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["files", "kubernetes", "loki", "azure"] = "files"
    default_since: str = Field(default="1h", description="Window when a call gives none")
    max_window: str = Field(default="7d", description="Longest window a call may ask for")
    now: datetime | None = Field(default=None, description="Freeze 'now' (replayed logs); default: the clock")
    timeout_s: float = Field(default=20.0, gt=0, le=300)
    max_message_chars: int = Field(default=400, ge=80, le=20000)
    patterns_max_lines: int = Field(default=200_000, ge=1000, le=5_000_000)
    filter_max_lines: int = Field(
        default=50_000,
        ge=100,
        le=5_000_000,
        description="Loki/Azure with text or regex under redaction: most lines one logs_query reads to fill a page",
    )
    files: FilesSettings = Field(default_factory=FilesSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    loki: LokiSettings = Field(default_factory=LokiSettings)
    azure: AzureSettings = Field(default_factory=AzureSettings)

    @field_validator("default_since", "max_window")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


def load(section: dict[str, Any]) -> LogsSettings:
    """Parse `[logs]`; ConfigError names the key and the problem."""
    backend = section.get("backend", "files")
    if backend not in BACKENDS:
        raise ConfigError(f"[logs] backend = {backend!r} is not a logs backend; choose one of {', '.join(BACKENDS)}")
    parsed = load_section("logs", section, LogsSettings)
    if parsed.now is None and parsed.backend == "files" and "sources" not in section.get("files", {}):
        parsed = parsed.model_copy(update={"now": EXAMPLES_NOW})
    return parsed


def validate(settings: Settings) -> LogsSettings:
    """The `[logs]` section parsed; ConfigError names a bad key."""
    return load(settings.logs)
