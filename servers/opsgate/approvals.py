"""Approvals: signed, single-use grants bound to one exact call, for every write tool.

A write the policy holds for approval becomes a *pending approval* stored in SQLite beside the audit
trail (`<state_dir>/approvals.db`), bound to the argument digest, the target, the requester and an
expiry. A human grants or denies it out of band (`opsgate approvals approve|deny`, see
`opsgate.approvals_cli`); nobody approves their own request. The grant is signed with an HMAC key kept
in the state dir (`approvals.key`, created 0600), so a row edited in the database without the key no
longer verifies. The agent calls again with `approval_id`; `attach` checks the grant against that exact
call and the gate marks it used (`consume`) right before execution.

A form-mode elicitation "accept" from the client is a *confirmation*: it only proves that someone (or
a client hook) clicked, so it is offered only where the policy's decision says a confirmation is
enough (`obligations.confirmation_ok`); the policy input then carries `{"kind": "confirmation"}` and
the policy refuses it for a production write. A client without elicitation gets the pending approval.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mcp_types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult
from mcp_types.version import is_version_at_least
from pydantic import ValidationError

from opsgate.audit import canonical_json
from opsgate.contracts import ToolError
from opsgate.gate import CallContext, Denied, GatedCall
from opsgate.policy.decision import Decision

Status = Literal["pending", "granted", "denied", "used"]
Kind = Literal["grant", "confirmation"]

DEFAULT_TTL_S = 1800.0
KEY_FILE = "approvals.key"
DB_FILE = "approvals.db"
CONFIRMATION_SUBJECT = "client-confirmation"
CONFIRM_KEY = "opsgate_confirm"
# First protocol revision that elicits inside `InputRequiredResult` instead of a server-to-client request.
INPUT_REQUIRED_VERSION = "2026-07-28"
CONFIRM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "confirm": {"type": "boolean", "title": "Confirm", "description": "Run this change now"},
    },
    "required": ["confirm"],
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    tool TEXT NOT NULL,
    args_digest TEXT NOT NULL,
    args TEXT NOT NULL,
    target TEXT NOT NULL,
    requester TEXT NOT NULL,
    call_id TEXT NOT NULL,
    reasons TEXT NOT NULL,
    approvers TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    decided_by TEXT,
    decided_roles TEXT,
    decided_at REAL,
    decision_note TEXT,
    used_at REAL,
    used_by_call TEXT,
    signature TEXT
);
CREATE INDEX IF NOT EXISTS approvals_lookup ON approvals(args_digest, target, requester, status);
"""


class ApprovalError(Exception):
    """An approval cannot be granted, denied or used; the message says why."""


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Approval:
    """One approval row."""

    id: str
    kind: Kind
    status: Status
    tool: str
    args_digest: str
    args: dict[str, Any]
    target: str
    requester: str
    call_id: str
    reasons: list[str]
    approvers: list[str]
    created_at: float
    expires_at: float
    decided_by: str | None
    decided_roles: list[str]
    decided_at: float | None
    decision_note: str | None
    used_at: float | None
    used_by_call: str | None
    signature: str | None

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def signed_fields(self) -> dict[str, Any]:
        """What the grant's signature covers: the binding and who granted it with which roles."""
        return {
            "id": self.id,
            "kind": self.kind,
            "tool": self.tool,
            "args_digest": self.args_digest,
            "target": self.target,
            "requester": self.requester,
            "expires_at": self.expires_at,
            "granted_by": self.decided_by,
            "roles": sorted(self.decided_roles),
            "granted_at": self.decided_at,
        }

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly view for the CLI and tool-result metadata."""
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "tool": self.tool,
            "target": self.target,
            "requester": self.requester,
            "args": self.args,
            "args_digest": self.args_digest,
            "reasons": self.reasons,
            "approvers": self.approvers,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "decided_by": self.decided_by,
            "decided_roles": self.decided_roles,
            "decided_at": _iso(self.decided_at),
            "decision_note": self.decision_note,
            "used_at": _iso(self.used_at),
            "used_by_call": self.used_by_call,
        }


def load_or_create_key(state_dir: Path) -> bytes:
    """The HMAC key in `state_dir/approvals.key`, created with mode 0600 on first use."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fd = -1
    if fd < 0:
        key = path.read_bytes()
        if len(key) < 32:
            raise ApprovalError(f"approval signing key {path} is shorter than 32 bytes; delete it to make a new one")
        return key
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def sign(key: bytes, fields: dict[str, Any]) -> str:
    return hmac.new(key, canonical_json(fields).encode(), hashlib.sha256).hexdigest()


class ApprovalStore:
    """Pending and decided approvals in `<state_dir>/approvals.db` (shared by the server and the CLI)."""

    def __init__(self, state_dir: Path, *, ttl_s: float = DEFAULT_TTL_S, clock: Any = time.time) -> None:
        self.state_dir = state_dir
        self.ttl_s = ttl_s
        self._clock = clock
        self._key = load_or_create_key(state_dir)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(state_dir / DB_FILE), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def now(self) -> float:
        return float(self._clock())

    # -- reads --------------------------------------------------------------------------------

    def get(self, approval_id: str) -> Approval:
        with self._lock:
            row = self._db.execute("SELECT * FROM approvals WHERE id = ?", (approval_id,)).fetchone()
            names = [d[0] for d in self._db.execute("SELECT * FROM approvals LIMIT 0").description]
        if row is None:
            raise ApprovalError(f"no approval with id {approval_id!r}")
        return _row(dict(zip(names, row, strict=True)))

    def find(self, *, status: Status | None = None, limit: int = 100) -> list[Approval]:
        sql = "SELECT * FROM approvals" + (" WHERE status = ?" if status else "") + " ORDER BY created_at DESC LIMIT ?"
        params: tuple[Any, ...] = (status, limit) if status else (limit,)
        with self._lock:
            cursor = self._db.execute(sql, params)
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        return [_row(dict(zip(names, r, strict=True))) for r in rows]

    def verify_signature(self, approval: Approval) -> bool:
        if approval.signature is None:
            return False
        return hmac.compare_digest(approval.signature, sign(self._key, approval.signed_fields()))

    # -- writes -------------------------------------------------------------------------------

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
    ) -> Approval:
        """A new pending approval, or the still-pending one for the same call binding (no duplicates)."""
        now = self.now()
        with self._lock:
            if kind == "grant":
                row = self._db.execute(
                    "SELECT id FROM approvals WHERE kind = 'grant' AND status = 'pending' AND args_digest = ?"
                    " AND target = ? AND requester = ? AND expires_at > ? ORDER BY created_at DESC LIMIT 1",
                    (args_digest, target, requester, now),
                ).fetchone()
            else:
                row = None
            if row is None:
                approval_id = "apr_" + secrets.token_hex(10)
                self._db.execute(
                    "INSERT INTO approvals (id, kind, status, tool, args_digest, args, target, requester, call_id,"
                    " reasons, approvers, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        approval_id,
                        kind,
                        "pending",
                        tool,
                        args_digest,
                        canonical_json(args),
                        target,
                        requester,
                        call_id,
                        json.dumps(reasons),
                        json.dumps(approvers),
                        now,
                        now + self.ttl_s,
                    ),
                )
            else:
                approval_id = str(row[0])
        return self.get(approval_id)

    def approve(self, approval_id: str, *, by: str, roles: list[str], note: str | None = None) -> Approval:
        """Grant a pending approval. The requester can never approve their own request."""
        if not by.strip():
            raise ApprovalError("the approver's name (--as) must not be empty")
        if not roles:
            raise ApprovalError("an approval needs the approver's role (--role)")
        current = self.get(approval_id)
        self._check_decidable(current)
        if current.kind == "grant" and by == current.requester:
            raise ApprovalError(
                f"{by} made request {approval_id} and cannot approve it; nobody approves their own request"
            )
        return self._decide(current, "granted", by, sorted(set(roles)), note)

    def deny(self, approval_id: str, *, by: str, note: str | None = None) -> Approval:
        if not by.strip():
            raise ApprovalError("the name of the person denying (--as) must not be empty")
        current = self.get(approval_id)
        self._check_decidable(current)
        return self._decide(current, "denied", by, [], note)

    def record_confirmation(self, call: GatedCall, reasons: list[str], client: str) -> Approval:
        """A granted `confirmation` approval for this exact call (a form accept in the client)."""
        pending = self.create(
            kind="confirmation",
            tool=call.contract.name,
            args_digest=call.args_digest,
            args=call.args_doc,
            target=call.target_key,
            requester=call.caller.subject,
            call_id=call.call_id,
            reasons=reasons,
            approvers=[],
        )
        return self._decide(pending, "granted", f"{CONFIRMATION_SUBJECT}:{client}", [], "accepted in the client")

    def use(self, approval_id: str, call_id: str) -> None:
        """Mark a granted approval used; exactly one caller wins a race for it."""
        now = self.now()
        with self._lock:
            cursor = self._db.execute(
                "UPDATE approvals SET status = 'used', used_at = ?, used_by_call = ?"
                " WHERE id = ? AND status = 'granted' AND expires_at > ?",
                (now, call_id, approval_id, now),
            )
            changed = cursor.rowcount
        if changed != 1:
            raise ApprovalError(f"approval {approval_id} was used or expired while this call was checked")

    def _check_decidable(self, approval: Approval) -> None:
        if approval.status != "pending":
            who = f" by {approval.decided_by}" if approval.decided_by else ""
            raise ApprovalError(f"approval {approval.id} is already {approval.status}{who}")
        if approval.expired(self.now()):
            raise ApprovalError(f"approval {approval.id} expired at {_iso(approval.expires_at)}")

    def _decide(self, current: Approval, status: Status, by: str, roles: list[str], note: str | None) -> Approval:
        now = self.now()
        decided = replace(
            current, status=status, decided_by=by, decided_roles=roles, decided_at=now, decision_note=note
        )
        signature = sign(self._key, decided.signed_fields()) if status == "granted" else None
        with self._lock:
            cursor = self._db.execute(
                "UPDATE approvals SET status = ?, decided_by = ?, decided_roles = ?, decided_at = ?,"
                " decision_note = ?, signature = ? WHERE id = ? AND status = 'pending'",
                (status, by, json.dumps(roles), now, note, signature, current.id),
            )
            changed = cursor.rowcount
        if changed != 1:
            raise ApprovalError(f"approval {current.id} was decided by someone else meanwhile")
        return self.get(current.id)


def _row(r: dict[str, Any]) -> Approval:
    return Approval(
        id=r["id"],
        kind=r["kind"],
        status=r["status"],
        tool=r["tool"],
        args_digest=r["args_digest"],
        args=json.loads(r["args"]),
        target=r["target"],
        requester=r["requester"],
        call_id=r["call_id"],
        reasons=json.loads(r["reasons"]),
        approvers=json.loads(r["approvers"]),
        created_at=float(r["created_at"]),
        expires_at=float(r["expires_at"]),
        decided_by=r["decided_by"],
        decided_roles=json.loads(r["decided_roles"]) if r["decided_roles"] else [],
        decided_at=r["decided_at"],
        decision_note=r["decision_note"],
        used_at=r["used_at"],
        used_by_call=r["used_by_call"],
        signature=r["signature"],
    )


def approve_command(approval_id: str, state_dir: Path, approvers: list[str]) -> str:
    """The `opsgate approvals approve` command line a human can run as written, from any folder.

    It names the server's state dir unless that is the default one, fills in the approver role when
    the policy names exactly one, and names `opsgate` by its absolute path when it is not on PATH.
    The approver is the OS user running it (`--as` defaults to that).
    """
    import shlex
    import shutil
    import sys

    from opsgate.config import default_state_dir

    program = "opsgate"
    installed = Path(sys.executable).parent / "opsgate"
    on_path = shutil.which("opsgate")
    if installed.exists() and (on_path is None or Path(on_path).resolve() != installed.resolve()):
        program = shlex.quote(str(installed))
    words = [program, "approvals", "approve", approval_id]
    roles = approvers if len(approvers) == 1 else ["ROLE"]
    words += ["--role", shlex.quote(roles[0])]
    state = state_dir.expanduser().resolve()
    if state != default_state_dir().expanduser().resolve():
        words += ["--state-dir", shlex.quote(str(state))]
    return " ".join(words)


class Approvals:
    """The gate's `ApprovalHook`, backed by an `ApprovalStore`."""

    def __init__(self, store: ApprovalStore) -> None:
        self.store = store

    @classmethod
    def for_state_dir(cls, state_dir: Path, *, ttl_s: float = DEFAULT_TTL_S) -> Approvals:
        return cls(ApprovalStore(state_dir, ttl_s=ttl_s))

    def close(self) -> None:
        self.store.close()

    async def attach(self, call: GatedCall) -> dict[str, Any] | None:
        assert call.approval_id is not None
        try:
            approval = self.store.get(call.approval_id)
        except ApprovalError as exc:
            raise ToolError(str(exc)) from None
        self._check_usable(approval, call)
        document: dict[str, Any] = {
            "id": approval.id,
            "kind": approval.kind,
            "granted_by": approval.decided_by,
            "roles": approval.decided_roles,
            "granted_at": _iso(approval.decided_at),
            "expires_at": _iso(approval.expires_at),
        }
        return document

    def _check_usable(self, a: Approval, call: GatedCall) -> None:
        now = self.store.now()
        if a.status == "used":
            raise ToolError(
                f"it was already used by call {a.used_by_call} at {_iso(a.used_at)}; approvals are single-use"
            )
        if a.status == "denied":
            note = f" ({a.decision_note})" if a.decision_note else ""
            raise ToolError(f"it was denied by {a.decided_by}{note}")
        if a.expired(now):
            raise ToolError(f"it expired at {_iso(a.expires_at)}; request a new approval")
        if a.status == "pending":
            who = " or ".join(a.approvers) or "an approver"
            raise ToolError(
                f"it is still pending; a human with role {who} must run "
                f"`{approve_command(a.id, self.store.state_dir, a.approvers)}` first"
            )
        if a.tool != call.contract.name:
            raise ToolError(f"it was granted for tool {a.tool}, not {call.contract.name}")
        if a.args_digest != call.args_digest:
            raise ToolError(
                f"it was granted for different arguments ({json.dumps(a.args, sort_keys=True)}); "
                "call with exactly those arguments or request a new approval"
            )
        if a.target != call.target_key:
            raise ToolError(f"it was granted for target {a.target}, not {call.target_key}")
        if a.requester != call.caller.subject:
            raise ToolError(f"it was requested by {a.requester}, not by {call.caller.subject}")
        if a.kind == "grant" and a.decided_by == a.requester:
            raise ToolError(f"it was approved by its own requester {a.requester}; nobody approves their own request")
        if not self.store.verify_signature(a):
            raise ToolError("its signature does not verify (the approval record was altered); request a new approval")

    async def request(self, call: GatedCall, decision: Decision, ctx: CallContext) -> tuple[str, dict[str, Any]]:
        pending = self.store.create(
            kind="grant",
            tool=call.contract.name,
            args_digest=call.args_digest,
            args=call.args_doc,
            target=call.target_key,
            requester=call.caller.subject,
            call_id=call.call_id,
            reasons=decision.reasons,
            approvers=decision.approvers,
        )
        roles = " or ".join(decision.approvers) or "an approver role"
        reasons = "; ".join(decision.reasons) or "policy requires an approval"
        command = approve_command(pending.id, self.store.state_dir, decision.approvers)
        message = (
            f"{call.contract.name}: approval required ({reasons}). Pending approval {pending.id} "
            f"(expires {_iso(pending.expires_at)}). Ask a human with role {roles} to approve it: "
            f"`{command}`. Then call {call.contract.name} "
            f'again with exactly the same arguments plus approval_id="{pending.id}". Nothing was changed.'
        )
        if decision.alternative:
            message += f" Alternative meanwhile: {decision.alternative}."
        extra = {
            "id": pending.id,
            "status": pending.status,
            "kind": "grant",
            "approvers": decision.approvers,
            "expires_at": _iso(pending.expires_at),
            "approve_command": command,
        }
        return message, extra

    async def confirm(
        self, call: GatedCall, decision: Decision, ctx: CallContext
    ) -> dict[str, Any] | InputRequiredResult | None:
        """Ask the client for a form confirmation where the policy says one is enough.

        Returns the policy input's `approval` (kind "confirmation") when the client accepted, an
        `InputRequiredResult` to send on 2026-07-28 (the client answers in a second `tools/call`
        round, whose sealed `requestState` names the first round's call), or None when no
        confirmation can count (then the caller gets a pending approval, never a silent yes).
        """
        mcp = ctx.mcp
        if mcp is None or not decision.obligations.confirmation_ok or not _supports_form(mcp):
            return None
        message = (
            f"opsgate: confirm {call.contract.name} on {call.target_key} with arguments "
            f"{json.dumps(call.args_doc, sort_keys=True)}? This is a real change."
        )
        continues: str | None = None
        if is_version_at_least(mcp.protocol_version, INPUT_REQUIRED_VERSION):
            params = mcp.params or {}
            state = _read_state(params.get("requestState"))
            answer = (params.get("inputResponses") or {}).get(CONFIRM_KEY)
            binding = {"args_digest": call.args_digest, "target": call.target_key, "requester": call.caller.subject}
            if answer is None or state is None or any(state.get(k) != v for k, v in binding.items()):
                request = ElicitRequest(
                    params=ElicitRequestFormParams(message=message, requested_schema=CONFIRM_SCHEMA)
                )
                return InputRequiredResult(
                    input_requests={CONFIRM_KEY: request},
                    request_state=canonical_json({**binding, "call_id": call.call_id}),
                )
            try:
                result = ElicitResult.model_validate(answer)
            except ValidationError:
                return None
            continues = str(state.get("call_id"))
        else:
            if not mcp.session.can_send_request:
                return None
            result = await mcp.session.elicit_form(message, CONFIRM_SCHEMA, related_request_id=mcp.request_id)
        if (
            result.action != "accept"
            or not isinstance(result.content, dict)
            or result.content.get("confirm") is not True
        ):
            return None
        confirmation = self.store.record_confirmation(call, decision.reasons, client=call.caller.client)
        call.approval_id = confirmation.id
        return {
            "id": confirmation.id,
            "kind": "confirmation",
            "granted_by": confirmation.decided_by,
            "roles": [],
            "via": "elicitation/form",
            "continues_call": continues,
        }

    async def consume(self, call: GatedCall) -> None:
        assert call.approval_id is not None
        try:
            self.store.use(call.approval_id, call.call_id)
        except ApprovalError as exc:
            raise Denied(f"{call.contract.name}: {exc}", "denied") from None


def _supports_form(mcp: Any) -> bool:
    capabilities = mcp.session.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    # A bare `elicitation: {}` (before modes existed) means form support; url-only does not.
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def _read_state(raw: Any) -> dict[str, Any] | None:
    """The plaintext `requestState` (the SDK seals and verifies it on the wire)."""
    if not isinstance(raw, str):
        return None
    try:
        state = json.loads(raw)
    except ValueError:
        return None
    return state if isinstance(state, dict) else None
