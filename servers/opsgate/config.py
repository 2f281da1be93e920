"""Configuration: one TOML file, overridable by `OPSGATE_*` environment variables.

With no file at all, opsgate serves the bundled examples and sandbox, so it works on a fresh clone.
Nested keys use `__` in the environment: `OPSGATE_POLICY__ENGINE=opa`.
Capability sections (`[logs]`, `[metrics]`, `[rollback]`, `[runbooks]`) are parsed by the capability
itself, so the core never needs to know their shape.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_ENV = "OPSGATE_CONFIG"


def default_state_dir() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "opsgate"


class PolicySettings(BaseModel):
    engine: Literal["embedded", "opa"] = "embedded"
    dir: Path = REPO_ROOT / "policies"
    opa_url: str = "http://127.0.0.1:8181"
    opa_path: str = "opsgate/decision"
    timeout_s: float = Field(default=1.0, gt=0, le=30)
    retries: int = Field(default=2, ge=0, le=10)
    data: dict[str, Any] = Field(default_factory=dict, description="Extra policy data merged over data.json")


class LocalCaller(BaseModel):
    """Who a local (stdio) caller is: the person who started the server vouches for it."""

    subject: str = Field(default_factory=lambda: f"local:{os.environ.get('USER', 'user')}")
    roles: list[str] = Field(default_factory=lambda: ["responder"])


class ApiKey(BaseModel):
    """A static API key for hosted mode, stored as its SHA-256 (`opsgate keys hash` prints one)."""

    sha256: str
    subject: str
    roles: list[str] = Field(default_factory=list)


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8765
    path: str = "/mcp"
    require_auth: bool = True
    api_keys: list[ApiKey] = Field(default_factory=list)
    allowed_origins: list[str] = Field(default_factory=list)
    public_url: str | None = None
    # OAuth 2.1 bearer tokens from an OIDC issuer (see opsgate.oidc; Entra ID: .../{tenant}/v2.0)
    oidc_issuer: str | None = None
    oidc_audience: str | None = Field(default=None, description="Required `aud`; defaults to the public MCP URL")
    oidc_jwks_url: str | None = Field(default=None, description="Default: discovered from the issuer's metadata")
    oidc_algorithms: list[str] = Field(default_factory=lambda: ["RS256"])
    roles_claim: str = "roles"
    write_scope: str | None = Field(
        default=None,
        description="OAuth scope for write tools: advertised in the resource metadata, required by the policy "
        "(context.write_scope; rule write.oauth_scope_missing)",
    )
    metrics_require_auth: bool = True
    # Bounds against connection floods (opsgate.http_guard): open connections, and how long a connection
    # may take to send a request's headers. Keep max_connections well under the open-files limit.
    max_connections: int = Field(default=512, ge=1)
    header_timeout_s: float = Field(default=10.0, gt=0)


# Write budgets live in the policy data (one source, reviewed with the policies): these keys moved there.
_MOVED_TO_POLICY = {
    "writes_per_minute": "global_1m",
    "per_target_write_interval_s": "target_interval_s",
}


class LimitSettings(BaseModel):
    """Per-caller rate limits under a global ceiling, and breakers (protecting the server and backends).

    `per_tool_per_minute` holds per caller (subject) and tool; `global_per_minute` is the ceiling over
    every caller and tool of this process. Write budgets are not here: they are policy data
    (`opsgate_config.budgets` in policies/data.json), reserved in the shared state store before a write runs.
    """

    model_config = ConfigDict(extra="forbid")

    per_tool_per_minute: int = Field(default=600, ge=1)
    global_per_minute: int = Field(default=6000, ge=1)
    breaker_failures: int = Field(default=3, ge=1)
    breaker_cooldown_s: float = Field(default=300, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, budget_key in _MOVED_TO_POLICY.items():
                if key in data:
                    raise ValueError(
                        f"limits.{key} moved to the policy data: set opsgate_config.budgets.<tool>.{budget_key} "
                        "in policies/data.json (or under [policy.data]); write budgets have one source"
                    )
        return data


class AuditSettings(BaseModel):
    """Signed checkpoints of the audit chain (see docs/audit-threat-model.md)."""

    sign: bool = True
    signing_key: Path | None = Field(
        default=None, description="Ed25519 PEM outside the state dir; default <state_dir>-audit-key/ed25519.pem"
    )
    public_keys: list[Path] = Field(default_factory=list, description="extra public keys verify accepts (rotation)")
    export_file: Path | None = Field(
        default=None,
        description="append-only JSONL of checkpoints (default beside the state dir, see audit_export_file)",
    )
    syslog: bool = False
    checkpoint_every: int = Field(default=100, ge=1)
    checkpoint_interval_s: float = Field(default=60.0, gt=0)


class ApprovalSettings(BaseModel):
    """`[approvals]`: who may approve (the approvers file) and the hosted approval page's OIDC login."""

    approvers_file: Path | None = Field(default=None, description="Default: approvers.yaml in the policy dir")
    ttl_s: float = Field(default=1800, gt=0, le=86400, description="How long a pending approval can be granted")
    oidc_client_id: str | None = Field(default=None, description="OIDC client of the approval page's login")
    oidc_client_secret: str | None = Field(default=None, description="Its secret, for a confidential client")


class Settings(BaseSettings):
    """Everything opsgate reads at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="OPSGATE_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    state_dir: Path = Field(default_factory=default_state_dir)
    audit_path: Path | None = None
    audit: AuditSettings = Field(default_factory=AuditSettings)
    state_url: str | None = Field(
        default=None, description="postgresql://... for state shared by replicas; default: SQLite in state_dir"
    )
    default_environment: str = "prod"
    environments: dict[str, str] = Field(
        default_factory=lambda: {"shop": "prod", "staging": "staging", "dev": "dev"},
        description="namespace -> environment; unknown namespaces get default_environment",
    )
    autonomy: Literal["read-only", "advised", "approved", "autonomous"] = "approved"
    max_argument_bytes: int = Field(default=65536, ge=1024)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    caller: LocalCaller = Field(default_factory=LocalCaller)
    http: HttpSettings = Field(default_factory=HttpSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    approvals: ApprovalSettings = Field(default_factory=ApprovalSettings)
    runbooks: dict[str, Any] = Field(default_factory=dict)
    logs: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    rollback: dict[str, Any] = Field(default_factory=dict)
    workloads: dict[str, Any] = Field(default_factory=dict)
    alerts: dict[str, Any] = Field(default_factory=dict)

    @property
    def audit_file(self) -> Path:
        return self.audit_path or self.state_dir / "audit.db"

    @property
    def audit_key_file(self) -> Path:
        return self.audit.signing_key or self.state_dir.parent / f"{self.state_dir.name}-audit-key" / "ed25519.pem"

    @property
    def audit_export_file(self) -> Path:
        """One export per trail: `<state_dir>-audit-export/<trail>.checkpoints.jsonl` unless configured."""
        trail = "postgresql" if self.state_url else self.audit_file.stem
        return self.audit.export_file or (
            self.state_dir.parent / f"{self.state_dir.name}-audit-export" / f"{trail}.checkpoints.jsonl"
        )

    @property
    def approvers_file(self) -> Path:
        return self.approvals.approvers_file or self.policy.dir / "approvers.yaml"

    def environment_of(self, namespace: str | None) -> str:
        if namespace is None:
            return self.default_environment
        return self.environments.get(namespace, self.default_environment)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if settings_cls.model_config.get("toml_file"):
            sources.append(TomlConfigSettingsSource(settings_cls))
        return tuple(sources)


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and the key."""


_WARNED: set[str] = set()


def config_path_from_env() -> Path | None:
    """`$OPSGATE_CONFIG`; empty means unset. A client config's `"${OPSGATE_CONFIG:-}"` reaches us literally
    from clients that do not expand variables: that is unset too (with a warning), not a missing file."""
    value = os.environ.get(CONFIG_ENV, "").strip()
    if not value:
        return None
    if value.startswith("${") and value.endswith("}"):
        if value not in _WARNED:
            _WARNED.add(value)
            print(
                f"opsgate: warning: {CONFIG_ENV}={value} was not expanded by the client; serving without a config file",
                file=sys.stderr,
            )
        return None
    return Path(value)


SectionT = TypeVar("SectionT", bound=BaseModel)


def config_problems(exc: ValidationError, prefix: str = "") -> str:
    """`key.path: what is wrong` for each problem; an unknown key (a typo) is named as such."""
    problems = []
    for err in exc.errors(include_url=False):
        key = ".".join([prefix, *(str(p) for p in err["loc"])] if prefix else [str(p) for p in err["loc"]])
        message = "unknown key (a typo?)" if err["type"] == "extra_forbidden" else err["msg"]
        problems.append(f"{key}: {message}")
    return "; ".join(problems)


def load_section(section: str, raw: Any, model: type[SectionT]) -> SectionT:
    """A capability's `[section]` parsed into its own settings model; ConfigError names the key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid [{section}] configuration: expected a table, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid [{section}] configuration: {config_problems(exc, section)}") from None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load settings from `config_file` (or `$OPSGATE_CONFIG`), the environment and `overrides`."""
    path = config_file or config_path_from_env()
    settings_cls: type[Settings] = Settings
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")

        class FileSettings(Settings):
            model_config = SettingsConfigDict(**{**Settings.model_config, "toml_file": path})

        settings_cls = FileSettings
    try:
        return settings_cls(**overrides)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except ValidationError as exc:
        where = str(path) if path else "environment"
        raise ConfigError(f"invalid configuration ({where}): {config_problems(exc)}") from None
