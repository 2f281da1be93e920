"""Shared state: the audit trail, limit reservations, breakers (and, beside them, approvals and API keys).

`open_state(settings)` picks the backend: SQLite files in the state directory (the embedded default,
shared by the processes of one machine) or PostgreSQL when `state_url = "postgresql://..."` (shared by
every replica). Both implement `opsgate.state.base`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opsgate.state.base import ApiKeyStore, AuditStore, LimitStore, StateUnavailable
from opsgate.state.files import private_dir, private_file

if TYPE_CHECKING:
    from opsgate.audit import AuditLog
    from opsgate.config import Settings

# limit events, breakers and API keys of the embedded backend
STATE_DB = "state.db"

__all__ = ["State", "StateUnavailable", "open_audit", "open_state", "private_dir", "private_file"]


@dataclass
class State:
    audit_store: AuditStore
    limits: LimitStore
    api_keys: ApiKeyStore
    backend: str
    # a shared ApprovalStore (PostgreSQL); None: the approvals hook uses its SQLite store in the state dir
    approvals: Any = None
    _closers: list[Any] = field(default_factory=list)

    def close(self) -> None:
        self.limits.close()
        self.audit_store.close()
        for close in self._closers:
            close()


def is_postgres(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("postgresql://", "postgres://"))


def open_state(settings: Settings) -> State:
    if is_postgres(settings.state_url):
        from opsgate.state.postgres import open_postgres_state

        state: State = open_postgres_state(str(settings.state_url), approval_ttl_s=settings.approvals.ttl_s)
        return state
    if settings.state_url:
        raise StateUnavailable(f"state_url {settings.state_url!r}: only postgresql:// URLs are supported")
    from opsgate.state.sqlite import SqliteAuditStore, SqliteLimitStore

    private_dir(settings.state_dir)
    shared = SqliteLimitStore(settings.state_dir / STATE_DB)
    return State(audit_store=SqliteAuditStore(settings.audit_file), limits=shared, api_keys=shared, backend="sqlite")


def audit_checkpoints(settings: Settings, *, create_key: bool = True) -> Any:
    """The checkpoint signer, export and public keys `settings` describe (None when signing is off).

    With `create_key` false (verification), a missing signing key is not generated: its public half
    (`<key>.pub.pem`), when present, and `audit.public_keys` are what signatures are checked against.
    """
    from opsgate.audit import AuditError, Checkpoints
    from opsgate.audit_keys import (
        AuditKeyError,
        JsonlSink,
        load_or_create_signing_key,
        load_public_keys,
        public_path,
    )

    a = settings.audit
    if not a.sign:
        return None
    key_path = settings.audit_key_file
    state = settings.state_dir.resolve()
    if key_path.resolve().is_relative_to(state):
        raise AuditError(
            f"audit.signing_key {key_path} is inside the state directory {state}: keep it apart from the database"
        )
    try:
        key = load_or_create_signing_key(key_path) if create_key or key_path.exists() else None
        extra = [public_path(key_path)] if key is None and public_path(key_path).exists() else []
        public = load_public_keys([*a.public_keys, *extra])
    except AuditKeyError as exc:
        raise AuditError(str(exc)) from exc
    return Checkpoints(
        signing_key=key,
        sink=JsonlSink(settings.audit_export_file, syslog=a.syslog),
        public_keys=public,
        every=a.checkpoint_every,
        interval_s=a.checkpoint_interval_s,
    )


def open_audit(
    settings: Settings, store: AuditStore | None = None, *, check_anchor: bool = True, create_key: bool = True
) -> AuditLog:
    """The audit trail `settings` describe, with its checkpoints; refuses a trail missing its last export."""
    from opsgate.audit import AuditLog

    if store is not None:
        checkpoints = audit_checkpoints(settings, create_key=create_key)
        return AuditLog(store, checkpoints=checkpoints, check_anchor=check_anchor)
    opened: AuditStore
    if is_postgres(settings.state_url):
        from opsgate.state.postgres import PgAuditStore, PgDatabase

        # its own pool, closed with the log (a whole State's would stay open: its stores leave the pool to it)
        opened = PgAuditStore(PgDatabase(str(settings.state_url)), owns_db=True)
    else:
        from opsgate.state.sqlite import SqliteAuditStore

        private_dir(settings.state_dir)
        opened = SqliteAuditStore(settings.audit_file)
    try:
        return open_audit(settings, opened, check_anchor=check_anchor, create_key=create_key)
    except BaseException:
        opened.close()
        raise
