"""Approvals on PostgreSQL: the `opsgate.approvals.ApprovalStore` interface, shared by every replica.

Every state change is one conditional UPDATE (pending -> granted|denied|void, granted -> used|void),
so of two replicas racing to decide or to consume an approval exactly one wins. Creating a pending
grant takes a transaction-scoped advisory lock on its binding, so two replicas asked for the same
call at once reuse one pending approval. Arguments are stored with secrets masked
(`opsgate.audit.redact_for_storage`); `args_digest` binds the exact ones. The statements and the row
mapping are `opsgate.approvals.SqlApprovalStore`'s, the same as the SQLite store's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

from opsgate.approvals import DEFAULT_TTL_S, SqlApprovalStore
from opsgate.state.postgres import PgDatabase

T = TypeVar("T")


class PgApprovalStore(SqlApprovalStore):
    _PARAM = "%s"

    def __init__(self, db: PgDatabase, *, ttl_s: float = DEFAULT_TTL_S, clock: Any = time.time) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._clock = clock

    def close(self) -> None:
        """The pool belongs to the State that opened it."""

    def _run(self, work: Callable[[Any], T]) -> T:
        return self.db.run(work)  # one transaction on a pooled connection

    def _lock_binding(self, conn: psycopg.Connection[Any], binding: str) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (binding,))
