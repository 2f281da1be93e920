"""Approvals on PostgreSQL: the `opsgate.approvals.ApprovalStore` interface, shared by every replica.

Every state change is one conditional UPDATE (pending -> granted|denied|void, granted -> used|void),
so of two replicas racing to decide or to consume an approval exactly one wins. Creating a pending
grant takes a transaction-scoped advisory lock on its binding, so two replicas asked for the same
call at once reuse one pending approval. Arguments are stored with secrets masked
(`opsgate.audit.redact_for_storage`); `args_digest` binds the exact ones.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from opsgate.approvals import (
    DEFAULT_TTL_S,
    Approval,
    ApprovalError,
    Channel,
    Kind,
    Status,
    _iso,
    _row,
    plan_digest,
)
from opsgate.audit import canonical_json, redact_for_storage
from opsgate.state.postgres import PgDatabase

_COLUMNS = (
    "id, kind, status, tool, args_digest, args, target, requester, call_id, reasons, approvers, plan, plan_digest,"
    " created_at, expires_at, decided_by, decided_roles, decided_at, decision_note, channel, proof, used_at,"
    " used_by_call"
)


class PgApprovalStore:
    def __init__(self, db: PgDatabase, *, ttl_s: float = DEFAULT_TTL_S, clock: Any = time.time) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._clock = clock

    def close(self) -> None:
        """The pool belongs to the State that opened it."""

    def now(self) -> float:
        return float(self._clock())

    def _one(self, approval_id: str) -> Approval | None:
        def work(conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
            with conn.cursor(row_factory=dict_row) as cur:
                return cur.execute(f"SELECT {_COLUMNS} FROM approvals WHERE id = %s", (approval_id,)).fetchone()

        row = self.db.run(work)
        return _row(row) if row else None

    def get(self, approval_id: str) -> Approval:
        found = self._one(approval_id)
        if found is None:
            raise ApprovalError(f"no approval with id {approval_id!r}")
        return found

    def find(self, *, status: Status | None = None, limit: int = 100) -> list[Approval]:
        def work(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
            with conn.cursor(row_factory=dict_row) as cur:
                if status:
                    cur.execute(
                        f"SELECT {_COLUMNS} FROM approvals WHERE status = %s ORDER BY created_at DESC LIMIT %s",
                        (status, limit),
                    )
                else:
                    cur.execute(f"SELECT {_COLUMNS} FROM approvals ORDER BY created_at DESC LIMIT %s", (limit,))
                return cur.fetchall()

        return [_row(r) for r in self.db.run(work)]

    def create(
        self,
        *,
        kind: Kind,
        tool: str,
        args_digest: str,
        args: dict[str, Any],
        target: str,
        requester: str,
        call_id: str,
        reasons: list[str],
        approvers: list[str],
        plan: dict[str, Any],
    ) -> Approval:
        now = self.now()
        pdigest = plan_digest(plan)

        def work(conn: psycopg.Connection[Any]) -> str:
            if kind == "grant":
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{args_digest}|{target}|{requester}|{pdigest}",)
                )
                row = conn.execute(
                    "SELECT id FROM approvals WHERE kind = 'grant' AND status = 'pending' AND args_digest = %s"
                    " AND target = %s AND requester = %s AND plan_digest = %s AND expires_at > %s"
                    " ORDER BY created_at DESC LIMIT 1",
                    (args_digest, target, requester, pdigest, now),
                ).fetchone()
                if row is not None:
                    return str(row[0])
            approval_id = "apr_" + secrets.token_hex(10)
            conn.execute(
                "INSERT INTO approvals (id, kind, status, tool, args_digest, args, target, requester, call_id,"
                " reasons, approvers, plan, plan_digest, created_at, expires_at)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                (
                    approval_id,
                    kind,
                    "pending",
                    tool,
                    args_digest,
                    canonical_json(redact_for_storage(args)[0]),  # the digest binds the exact ones
                    target,
                    requester,
                    call_id,
                    json.dumps(reasons),
                    json.dumps(approvers),
                    canonical_json(plan),
                    pdigest,
                    now,
                    int(now + self.ttl_s) + 1,
                ),
            )
            return approval_id

        return self.get(self.db.run(work))

    def decide(
        self,
        approval_id: str,
        *,
        status: Literal["granted", "denied"],
        by: str,
        roles: list[str],
        channel: Channel | None,
        proof: str | None,
        note: str | None,
    ) -> Approval:
        now = self.now()
        changed = self.db.run(
            lambda c: (
                c.execute(
                    "UPDATE approvals SET status = %s, decided_by = %s, decided_roles = %s, decided_at = %s,"
                    " decision_note = %s, channel = %s, proof = %s WHERE id = %s AND status = 'pending'"
                    " AND expires_at > %s",
                    (status, by, json.dumps(sorted(set(roles))), now, note, channel, proof, approval_id, now),
                ).rowcount
            )
        )
        if changed != 1:
            current = self.get(approval_id)
            if current.expired(now):
                raise ApprovalError(f"approval {approval_id} expired at {_iso(current.expires_at)}")
            who = f" by {current.decided_by}" if current.decided_by else ""
            raise ApprovalError(f"approval {approval_id} is already {current.status}{who}")
        return self.get(approval_id)

    def use(self, approval_id: str, call_id: str) -> None:
        now = self.now()
        changed = self.db.run(
            lambda c: (
                c.execute(
                    "UPDATE approvals SET status = 'used', used_at = %s, used_by_call = %s"
                    " WHERE id = %s AND status = 'granted' AND expires_at > %s",
                    (now, call_id, approval_id, now),
                ).rowcount
            )
        )
        if changed != 1:
            raise ApprovalError(f"approval {approval_id} was used or expired while this call was checked")

    def void(self, approval_id: str, reason: str) -> None:
        self.db.run(
            lambda c: c.execute(
                "UPDATE approvals SET status = 'void', decision_note = %s WHERE id = %s"
                " AND status IN ('pending', 'granted')",
                (reason, approval_id),
            )
        )
