"""Approvals: single-use grants bound to one exact call and its resolved plan, proven by the approver.

A write the policy holds for approval becomes a *pending approval* (`ApprovalStore`; the embedded
default is SQLite in `<state_dir>/approvals.db`) bound to the argument digest, the target, the
requester, an expiry and the **plan**: the facts the server computed before deciding (for a rollback:
from/to revision, the pod templates before and after, the images), which is what the human sees.

A grant counts only with a proof the requester cannot make (the store itself proves nothing: anyone
who can write the state dir can write a row):
- `ssh-signature`: an SSHSIG signature (namespace `opsgate-approval`) over the approval's
  *statement* (id, tool, target, requester, argument digest, plan digest, decision, expiry), made with
  a key listed in the approvers file (`opsgate.approvers`); identity and roles come from that file;
- `oidc`: an ID token from the hosted approval page's login whose `nonce` is the statement's digest
  (`opsgate.approval_oidc`); identity is its `sub`, roles its roles claim.
The proof is verified again every time the agent presents the approval (`attach`), against the
*current* plan: if the target moved (another rollout, a changed template), the statement no longer
matches, the approval is void, and the agent is told to request a new one. Self-approval is judged
on the verified identity (and the approver's aliases), normalised (NFKC, invisible characters
removed, case folded). The policy sees `approval.channel` and decides which channels count where.

A form-mode elicitation "accept" from the client is a *confirmation* (channel `confirmation`): it only
proves that someone (or a client hook) clicked, so it is offered only where the policy's decision says
a confirmation is enough (`obligations.confirmation_ok`), and it counts only inside the call that asked.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from mcp_types import (
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitRequestURLParams,
    ElicitResult,
    InputRequiredResult,
)
from mcp_types.version import is_version_at_least
from pydantic import ValidationError

from opsgate.approval_oidc import IdTokenError, IdTokenVerifier
from opsgate.approvers import Approvers, ApproversError, VerifiedSigner, same_person
from opsgate.audit import canonical_json, digest, redact_for_storage
from opsgate.config import Settings
from opsgate.contracts import ToolError
from opsgate.gate import CallContext, Denied, GatedCall
from opsgate.policy.decision import Decision
from opsgate.state.files import private_file
from opsgate.state.sql import SqlRunner

T = TypeVar("T")
Status = Literal["pending", "granted", "denied", "used", "void"]
Kind = Literal["grant", "confirmation"]
Channel = Literal["ssh-signature", "oidc", "confirmation"]

DEFAULT_TTL_S = 1800.0
DB_FILE = "approvals.db"
PAGE_PATH = "/approvals"
CONFIRMATION_SUBJECT = "client-confirmation"
CONFIRM_KEY = "opsgate_confirm"
PAGE_KEY = "opsgate_approval_page"
STATEMENT_HEADER = "opsgate approval statement v1"
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
    plan TEXT NOT NULL,
    plan_digest TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at INTEGER NOT NULL,
    decided_by TEXT,
    decided_roles TEXT,
    decided_at REAL,
    decision_note TEXT,
    channel TEXT,
    proof TEXT,
    used_at REAL,
    used_by_call TEXT
);
CREATE INDEX IF NOT EXISTS approvals_lookup ON approvals(args_digest, target, requester, status);
"""


class ApprovalError(Exception):
    """An approval cannot be granted, denied or used; the message says why."""


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def plan_digest(facts: dict[str, Any]) -> str:
    """What an approval binds to besides the arguments: the server-computed facts of the call."""
    return digest(facts)


@dataclass(frozen=True)
class Approval:
    """One approval row (as stored: nothing in it is trusted without its proof)."""

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
    plan: dict[str, Any]
    plan_digest: str
    created_at: float
    expires_at: int
    decided_by: str | None
    decided_roles: list[str]
    decided_at: float | None
    decision_note: str | None
    channel: Channel | None
    proof: str | None
    used_at: float | None
    used_by_call: str | None

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def statement(self, decision: Literal["approve", "deny"], *, plan: str | None = None) -> bytes:
        """The exact text an approver signs (SSH) or logs in for (OIDC nonce = its digest).

        `plan` overrides the stored plan digest: the server checks a proof against the plan it
        computes now, so a proof for a plan that has since changed does not verify.
        """
        lines = [
            STATEMENT_HEADER,
            f"id: {self.id}",
            f"decision: {decision}",
            f"tool: {self.tool}",
            f"target: {self.target}",
            f"requester: {self.requester}",
            f"args_digest: {self.args_digest}",
            f"plan_digest: {plan or self.plan_digest}",
            f"expires_at: {_iso(self.expires_at)}",
        ]
        return ("\n".join(lines) + "\n").encode()

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
            "plan": self.plan,
            "plan_digest": self.plan_digest,
            "reasons": self.reasons,
            "approvers": self.approvers,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "decided_by": self.decided_by,
            "decided_roles": self.decided_roles,
            "decided_at": _iso(self.decided_at),
            "decision_note": self.decision_note,
            "channel": self.channel,
            "used_at": _iso(self.used_at),
            "used_by_call": self.used_by_call,
        }


def statement_nonce(statement: bytes) -> str:
    """The OIDC `nonce` that binds a login to one statement."""
    return digest(statement.decode())


class ApprovalStore(Protocol):
    """Where approvals live. SQLite (`SqliteApprovalStore`) is the embedded default; a shared store
    (PostgreSQL) implements the same methods so that replicas see the same approvals.

    Every state change is conditional on the current status (pending -> granted|denied|void,
    granted -> used|void), so of two racing deciders or consumers exactly one wins.
    """

    def now(self) -> float: ...

    def close(self) -> None: ...

    def get(self, approval_id: str) -> Approval: ...

    def find(self, *, status: Status | None = None, limit: int = 100) -> list[Approval]: ...

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
        """A new pending approval, or the still-pending grant for the same binding and plan."""
        ...

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
        """Record a decision on a pending approval (raises ApprovalError when it is no longer pending)."""
        ...

    def use(self, approval_id: str, call_id: str) -> None:
        """Mark a granted approval used; exactly one caller wins a race for it."""
        ...

    def void(self, approval_id: str, reason: str) -> None:
        """A pending or granted approval no longer applies (its target moved)."""
        ...


# The approvals table's columns, in the order `_row` reads them (both stores' schema has these).
_COLUMNS = (
    "id", "kind", "status", "tool", "args_digest", "args", "target", "requester", "call_id", "reasons",
    "approvers", "plan", "plan_digest", "created_at", "expires_at", "decided_by", "decided_roles", "decided_at",
    "decision_note", "channel", "proof", "used_at", "used_by_call",
)  # fmt: skip
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM approvals"


class SqlApprovalStore(SqlRunner):
    """The statements, row mapping and refusals of an `ApprovalStore` on SQL, written once.

    A backend says how one unit of work runs on its connection (`_run`), how its driver writes
    parameters (`_PARAM`; the statements here use `?`, as in `opsgate.state.sql`) and, for PostgreSQL,
    how creators of one binding are serialised across replicas (`_lock_binding`). SQLite is
    `SqliteApprovalStore` below, PostgreSQL is `opsgate.state.approvals_pg.PgApprovalStore`.
    """

    ttl_s: float
    _clock: Any

    def _lock_binding(self, conn: Any, binding: str) -> None:
        """Serialise the creators of one pending grant (nothing to do where `_run` already does)."""

    def now(self) -> float:
        return float(self._clock())

    def get(self, approval_id: str) -> Approval:
        sql = self._sql(f"{_SELECT} WHERE id = ?")
        row = self._run(lambda c: c.execute(sql, (approval_id,)).fetchone())
        if row is None:
            raise ApprovalError(f"no approval with id {approval_id!r}")
        return _row(dict(zip(_COLUMNS, row, strict=True)))

    def find(self, *, status: Status | None = None, limit: int = 100) -> list[Approval]:
        sql = self._sql(_SELECT + (" WHERE status = ?" if status else "") + " ORDER BY created_at DESC LIMIT ?")
        params: tuple[Any, ...] = (status, limit) if status else (limit,)
        rows = self._run(lambda c: c.execute(sql, params).fetchall())
        return [_row(dict(zip(_COLUMNS, r, strict=True))) for r in rows]

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
        reuse = self._sql(
            "SELECT id FROM approvals WHERE kind = 'grant' AND status = 'pending' AND args_digest = ?"
            " AND target = ? AND requester = ? AND plan_digest = ? AND expires_at > ?"
            " ORDER BY created_at DESC LIMIT 1"
        )
        insert = self._sql(
            "INSERT INTO approvals (id, kind, status, tool, args_digest, args, target, requester, call_id,"
            " reasons, approvers, plan, plan_digest, created_at, expires_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        )

        def work(conn: Any) -> str:
            if kind == "grant":
                self._lock_binding(conn, f"{args_digest}|{target}|{requester}|{pdigest}")
                row = conn.execute(reuse, (args_digest, target, requester, pdigest, now)).fetchone()
                if row is not None:
                    return str(row[0])
            approval_id = "apr_" + secrets.token_hex(10)
            conn.execute(
                insert,
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

        return self.get(self._run(work))

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
        sql = self._sql(
            "UPDATE approvals SET status = ?, decided_by = ?, decided_roles = ?, decided_at = ?,"
            " decision_note = ?, channel = ?, proof = ? WHERE id = ? AND status = 'pending' AND expires_at > ?"
        )
        params = (status, by, json.dumps(sorted(set(roles))), now, note, channel, proof, approval_id, now)
        changed = self._run(lambda c: c.execute(sql, params).rowcount)
        if changed != 1:
            current = self.get(approval_id)
            if current.expired(now):
                raise ApprovalError(f"approval {approval_id} expired at {_iso(current.expires_at)}")
            who = f" by {current.decided_by}" if current.decided_by else ""
            raise ApprovalError(f"approval {approval_id} is already {current.status}{who}")
        return self.get(approval_id)

    def use(self, approval_id: str, call_id: str) -> None:
        now = self.now()
        sql = self._sql(
            "UPDATE approvals SET status = 'used', used_at = ?, used_by_call = ?"
            " WHERE id = ? AND status = 'granted' AND expires_at > ?"
        )
        changed = self._run(lambda c: c.execute(sql, (now, call_id, approval_id, now)).rowcount)
        if changed != 1:
            raise ApprovalError(f"approval {approval_id} was used or expired while this call was checked")

    def void(self, approval_id: str, reason: str) -> None:
        sql = self._sql(
            "UPDATE approvals SET status = 'void', decision_note = ? WHERE id = ? AND status IN ('pending', 'granted')"
        )
        self._run(lambda c: c.execute(sql, (reason, approval_id)))


class SqliteApprovalStore(SqlApprovalStore):
    """Pending and decided approvals in `<state_dir>/approvals.db` (shared by the server and the CLI)."""

    def __init__(self, state_dir: Path, *, ttl_s: float = DEFAULT_TTL_S, clock: Any = time.time) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir = state_dir
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(private_file(state_dir / DB_FILE)), check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(approvals)")}
        if columns and "plan_digest" not in columns:
            # approvals from before plans and proofs cannot be used any more: start the table afresh
            self._db.execute("ALTER TABLE approvals RENAME TO approvals_v0")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, work: Callable[[Any], T]) -> T:
        # one connection in autocommit mode; the lock keeps this process's threads off each other
        with self._lock:
            return work(self._db)


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
        plan=json.loads(r["plan"]),
        plan_digest=r["plan_digest"],
        created_at=float(r["created_at"]),
        expires_at=int(r["expires_at"]),
        decided_by=r["decided_by"],
        decided_roles=json.loads(r["decided_roles"]) if r["decided_roles"] else [],
        decided_at=r["decided_at"],
        decision_note=r["decision_note"],
        channel=r["channel"],
        proof=r["proof"],
        used_at=r["used_at"],
        used_by_call=r["used_by_call"],
    )


@dataclass(frozen=True)
class ProvenGrant:
    """Who granted an approval, as its proof says (never as the store says)."""

    identity: str
    roles: list[str]
    channel: Channel
    aliases: tuple[str, ...] = ()
    detail: str | None = None


def is_self_approval(grant: ProvenGrant, requester: str) -> bool:
    return same_person(requester, (grant.identity, *grant.aliases))


def ssh_grant(signer: VerifiedSigner) -> ProvenGrant:
    """Who a verified SSH signature says granted: the approvers file's entry for the signing key."""
    a = signer.approver
    return ProvenGrant(a.identity, list(a.roles), "ssh-signature", a.aliases, f"{signer.key_type} {signer.fingerprint}")


def oidc_grant(claims: dict[str, Any], roles: list[str], approvers: Approvers | None) -> ProvenGrant:
    """Who a verified ID token says granted: its `sub`, with its username or email and, when the approvers
    file lists that person (by `sub`, else by that name), their identity and aliases as aliases."""
    name = claims.get("preferred_username") or claims.get("email")
    aliases: tuple[str, ...] = (name,) if isinstance(name, str) else ()
    matched = None
    if approvers is not None:
        matched = approvers.matching(str(claims["sub"])) or (approvers.matching(aliases[0]) if aliases else None)
    if matched is not None:
        aliases += (matched.identity, *matched.aliases)
    return ProvenGrant(str(claims["sub"]), roles, "oidc", aliases, name if isinstance(name, str) else None)


class ApproverDirectory:
    """The approvers file, re-read when it changes (a reviewed change applies without a restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[float, int] | None = None
        self._approvers = Approvers([], str(path))

    def current(self) -> Approvers:
        try:
            stat = self.path.stat()
            stamp: tuple[float, int] | None = (stat.st_mtime, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._approvers = Approvers.load(self.path)
            self._stamp = stamp
        return self._approvers


async def prove(
    approval: Approval,
    plan: str,
    *,
    approvers: Approvers,
    oidc: IdTokenVerifier | None,
) -> ProvenGrant:
    """Verify a granted approval's proof against the statement for `plan`; raise ApprovalError if it fails."""
    statement = approval.statement("approve", plan=plan)
    if approval.channel == "ssh-signature":
        try:
            signer = approvers.verify(approval.proof or "", statement)
        except ApproversError as exc:
            raise ApprovalError(str(exc)) from None
        return ssh_grant(signer)
    if approval.channel == "oidc":
        if oidc is None:
            raise ApprovalError("it was granted on the approval page, but this server has no OIDC login configured")
        try:
            claims = await oidc.verify(
                approval.proof or "",
                nonce=statement_nonce(statement),
                check_expiry=False,
                issued_within=(approval.created_at, float(approval.expires_at)),
            )
        except IdTokenError as exc:
            raise ApprovalError(str(exc)) from None
        return oidc_grant(claims, oidc.roles(claims), approvers)
    raise ApprovalError(f"it has no proof of who granted it (channel {approval.channel!r}); request a new approval")


def approve_command(
    approval_id: str, *, state_dir: Path | None, approvers_file: Path | None, key: str | None = None
) -> str:
    """The `opsgate approvals approve` command line a human can run as written, from any folder.

    It names the server's state dir and approvers file when they are not the defaults the CLI would
    find without a config, and `opsgate` by its absolute path when that is not the one on PATH. The
    signing key is the approver's own (`~/.ssh/id_ed25519`, OpenSSH's default) unless the server knows it
    (the sandbox's throwaway approver).
    """
    import shlex
    import shutil
    import sys

    from opsgate.config import Settings

    program = "opsgate"
    installed = Path(sys.executable).parent / "opsgate"
    on_path = shutil.which("opsgate")
    if installed.exists() and (on_path is None or Path(on_path).resolve() != installed.resolve()):
        program = shlex.quote(str(installed))
    # the approver's own key: the usual OpenSSH default (a human with another key names theirs)
    words = [program, "approvals", "approve", approval_id, "--key", shlex.quote(key) if key else "~/.ssh/id_ed25519"]
    defaults = Settings()
    if state_dir is not None and state_dir.expanduser().resolve() != defaults.state_dir.expanduser().resolve():
        words += ["--state-dir", shlex.quote(str(state_dir.expanduser().resolve()))]
    if approvers_file is not None and approvers_file.resolve() != defaults.approvers_file.resolve():
        words += ["--approvers", shlex.quote(str(approvers_file.resolve()))]
    return " ".join(words)


class Approvals:
    """The gate's `ApprovalHook`, backed by an `ApprovalStore`."""

    def __init__(
        self,
        store: ApprovalStore,
        *,
        approvers: ApproverDirectory | None = None,
        oidc: IdTokenVerifier | None = None,
        page_url: str | None = None,
        approver_key: str | None = None,
    ) -> None:
        self.store = store
        # the sandbox's throwaway approver key, named in the instruction; real approvers bring their own
        self.approver_key = approver_key
        self.approvers = approvers
        self.oidc = oidc
        self.page_url = page_url
        # approvals used by this process: a row flipped back to `granted` in the store still cannot be replayed here
        self._used: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings, *, http: bool = False, store: ApprovalStore | None = None) -> Approvals:
        """The server's hook: a store (default: SQLite in the state dir; pass a shared one for replicas),
        the approvers file, and the approval page's login."""
        oidc = None
        page_url = None
        h = settings.http
        if h.oidc_issuer and settings.approvals.oidc_client_id:
            oidc = IdTokenVerifier(
                h.oidc_issuer,
                settings.approvals.oidc_client_id,
                jwks_url=h.oidc_jwks_url,
                algorithms=tuple(h.oidc_algorithms),
                roles_claim=h.roles_claim,
            )
            if http:
                from opsgate.http_auth import public_base

                page_url = public_base(h) + PAGE_PATH
        return cls(
            store or SqliteApprovalStore(settings.state_dir, ttl_s=settings.approvals.ttl_s),
            approvers=ApproverDirectory(settings.approvers_file),
            oidc=oidc,
            page_url=page_url,
        )

    def close(self) -> None:
        self.store.close()

    def _approvers(self) -> Approvers:
        if self.approvers is None:
            return Approvers([], "<no approvers file>")
        try:
            return self.approvers.current()
        except ApproversError as exc:
            raise ToolError(f"the approvers file cannot be used: {exc}") from None

    async def attach(self, call: GatedCall) -> dict[str, Any] | None:
        assert call.approval_id is not None
        try:
            approval = self.store.get(call.approval_id)
        except ApprovalError as exc:
            raise ToolError(str(exc)) from None
        self._check_usable(approval, call)
        current = plan_digest(call.facts)
        if current != approval.plan_digest:
            reason = (
                f"the target changed since it was approved (plan then: {_plan_text(approval.plan)}; "
                f"now: {_plan_text(call.facts)})"
            )
            self.store.void(approval.id, reason)
            raise ToolError(
                f"it is void: {reason}. Nothing was changed; call {call.contract.name} again without approval_id "
                "to request a new approval for the current plan"
            )
        try:
            grant = await prove(approval, current, approvers=self._approvers(), oidc=self.oidc)
        except ApprovalError as exc:
            raise ToolError(f"its proof does not hold: {exc}") from None
        if is_self_approval(grant, call.caller.subject):
            raise ToolError(
                f"it was granted by {grant.identity}, who is the requester {call.caller.subject!r}; "
                "nobody approves their own request"
            )
        return {
            "id": approval.id,
            "kind": "grant",
            "channel": grant.channel,
            "granted_by": grant.identity,
            "roles": grant.roles,
            "proof": grant.detail,
            "plan_digest": current,
            "granted_at": _iso(approval.decided_at),
            "expires_at": _iso(approval.expires_at),
        }

    def _check_usable(self, a: Approval, call: GatedCall) -> None:
        now = self.store.now()
        if a.status == "used" or a.id in self._used:
            raise ToolError(
                f"it was already used by call {a.used_by_call} at {_iso(a.used_at)}; approvals are single-use"
            )
        if a.status == "void":
            raise ToolError(f"it is void ({a.decision_note}); request a new approval")
        if a.status == "denied":
            note = f" ({a.decision_note})" if a.decision_note else ""
            raise ToolError(f"it was denied by {a.decided_by}{note}")
        if a.expired(now):
            raise ToolError(f"it expired at {_iso(a.expires_at)}; request a new approval")
        if a.status == "pending":
            who = " or ".join(a.approvers) or "an approver"
            raise ToolError(
                f"it is still pending; a human with role {who} must approve it first "
                f"(`{self.approve_command(a.id)}`{self._page_hint(a.id)})"
            )
        if a.kind != "grant":
            raise ToolError("a client confirmation counts only inside the call that asked for it")
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

    def approve_command(self, approval_id: str) -> str:
        """The command a human runs to grant `approval_id`, with this server's state dir and approvers file."""
        state_dir = getattr(self.store, "state_dir", None)
        approvers = self.approvers.path if self.approvers is not None else None
        return approve_command(
            approval_id,
            state_dir=state_dir if isinstance(state_dir, Path) else None,
            approvers_file=approvers,
            key=self.approver_key,
        )

    def _page_hint(self, approval_id: str) -> str:
        return f" or on the approval page {self.page_url}/{approval_id}" if self.page_url else ""

    def approval_url(self, approval_id: str) -> str | None:
        return f"{self.page_url}/{approval_id}" if self.page_url else None

    async def request(self, call: GatedCall, decision: Decision, ctx: CallContext) -> tuple[str, dict[str, Any]]:
        pending = self._create_pending(call, decision)
        roles = " or ".join(decision.approvers) or "an approver role"
        reasons = "; ".join(decision.reasons) or "policy requires an approval"
        command = self.approve_command(pending.id)
        message = (
            f"{call.contract.name}: approval required ({reasons}). Pending approval {pending.id} "
            f"(expires {_iso(pending.expires_at)}) for the plan {_plan_text(call.facts)}. Ask a human with role "
            f"{roles} to approve it with their own key: `{command}`"
            f"{self._page_hint(pending.id)}. You cannot approve it yourself. Then call {call.contract.name} "
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
            "plan_digest": pending.plan_digest,
            "approve_command": command,
        }
        url = self.approval_url(pending.id)
        if url:
            extra["url"] = url
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
        if mcp is None:
            return None
        if not decision.obligations.confirmation_ok or not _supports_form(mcp):
            return await self._elicit_page(call, decision, mcp)
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
        confirmation = self._record_confirmation(call, decision.reasons)
        call.approval_id = confirmation.id
        return {
            "id": confirmation.id,
            "kind": "confirmation",
            "channel": "confirmation",
            "granted_by": confirmation.decided_by,
            "roles": [],
            "via": "elicitation/form",
            "continues_call": continues,
        }

    async def _elicit_page(
        self, call: GatedCall, decision: Decision, mcp: Any
    ) -> dict[str, Any] | InputRequiredResult | None:
        """URL-mode elicitation: point the client's user at the approval page for this call's approval.

        The client's answer only says the user saw (or opened) the link; it approves nothing. If the
        approval was granted on the page by the time the client answers, its proof is verified as for
        any presented approval and the call goes on; otherwise the caller gets the pending approval.
        """
        if self.page_url is None or not _supports_url(mcp):
            return None
        who = " or ".join(decision.approvers) or "an approver"
        message = (
            f"opsgate: {call.contract.name} on {call.target_key} needs an approval by role {who} "
            f"(plan: {_plan_text(call.facts)}). An approver reviews and approves it on this page."
        )
        if is_version_at_least(mcp.protocol_version, INPUT_REQUIRED_VERSION):
            params = mcp.params or {}
            state = _read_state(params.get("requestState"))
            answer = (params.get("inputResponses") or {}).get(PAGE_KEY)
            if answer is not None and state is not None and isinstance(state.get("approval_id"), str):
                approval_id = str(state["approval_id"])  # the sealed state of the round that asked
            else:
                pending = self._create_pending(call, decision)
                url = self.approval_url(pending.id)
                assert url is not None
                request = ElicitRequest(
                    params=ElicitRequestURLParams(message=message, url=url, elicitation_id=pending.id)
                )
                state_doc = {"approval_id": pending.id, "call_id": call.call_id}
                return InputRequiredResult(input_requests={PAGE_KEY: request}, request_state=canonical_json(state_doc))
        else:
            if not mcp.session.can_send_request:
                return None
            pending = self._create_pending(call, decision)
            url = self.approval_url(pending.id)
            assert url is not None
            await mcp.session.elicit_url(message, url, pending.id, related_request_id=mcp.request_id)
            approval_id = pending.id
        try:
            if self.store.get(approval_id).status != "granted":
                return None
        except ApprovalError:
            return None
        call.approval_id = approval_id
        try:
            return await self.attach(call)
        except ToolError:
            call.approval_id = None
            return None

    def _create(self, call: GatedCall, kind: Kind, reasons: list[str], approvers: list[str]) -> Approval:
        """A pending approval bound to this call: its tool, arguments, target, requester and plan."""
        return self.store.create(
            kind=kind,
            tool=call.contract.name,
            args_digest=call.args_digest,
            args=call.args_doc,
            target=call.target_key,
            requester=call.caller.subject,
            call_id=call.call_id,
            reasons=reasons,
            approvers=approvers,
            plan=call.facts,
        )

    def _create_pending(self, call: GatedCall, decision: Decision) -> Approval:
        return self._create(call, "grant", decision.reasons, decision.approvers)

    def _record_confirmation(self, call: GatedCall, reasons: list[str]) -> Approval:
        """A granted `confirmation` for this exact call (a form accept in the client), used at once."""
        pending = self._create(call, "confirmation", reasons, [])
        return self.store.decide(
            pending.id,
            status="granted",
            by=f"{CONFIRMATION_SUBJECT}:{call.caller.client}",
            roles=[],
            channel="confirmation",
            proof=None,
            note="accepted in the client",
        )

    async def consume(self, call: GatedCall) -> None:
        assert call.approval_id is not None
        if call.approval_id in self._used:
            raise Denied(f"{call.contract.name}: approval {call.approval_id} was already used", "denied")
        try:
            self.store.use(call.approval_id, call.call_id)
        except ApprovalError as exc:
            raise Denied(f"{call.contract.name}: {exc}", "denied") from None
        self._used.add(call.approval_id)


def _supports_url(mcp: Any) -> bool:
    capabilities = mcp.session.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and elicitation.url is not None


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


def _plan_text(facts: dict[str, Any]) -> str:
    """A short human reading of a plan (revisions and images when the facts have them)."""
    if not facts:
        return "(no server-computed facts)"
    if "from_revision" in facts and "to_revision" in facts:
        images = (
            ", ".join(f"{c['before']} -> {c['after']}" for c in facts.get("image_changes") or []) or "no image change"
        )
        return f"revision {facts['from_revision']} -> {facts['to_revision']} ({images})"
    return canonical_json(facts)[:200]
