"""`opsgate approvals list|show|approve|deny|allowed-signers`: a human decides pending approvals.

Runs against the same state dir as the server (from `--config`, `$OPSGATE_STATE_DIR`, or
`--state-dir`). Being able to run this command proves nothing (an agent with a shell can run it
too): a grant counts only with the approver's SSH signature over the approval's statement, made
with a key the approvers file lists (`--key` signs with `ssh-keygen -Y sign`, so a key file, a key
in ssh-agent with `--agent`, or a FIDO2 `-sk` key all work; `--signature` takes a signature made
elsewhere over `opsgate approvals show ID --statement`). Identity and roles are the approvers
file's, and the server verifies the signature again when the agent uses the approval.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from opsgate import sshsig
from opsgate.approvals import (
    Approval,
    ApprovalError,
    ApprovalStore,
    SqliteApprovalStore,
    is_self_approval,
    ssh_grant,
)
from opsgate.approvers import NAMESPACE, Approvers, ApproversError
from opsgate.config import ConfigError, Settings, load_settings
from opsgate.state.base import StateError


def _paths(args: argparse.Namespace) -> tuple[Path, Path, Settings | None]:
    """(state dir, approvers file) from the flags, else from the configuration (returned when it was loaded)."""
    if args.state_dir and args.approvers:
        return Path(args.state_dir), Path(args.approvers), None
    settings = load_settings(args.config)
    state_dir = Path(args.state_dir) if args.state_dir else settings.state_dir
    approvers = Path(args.approvers) if args.approvers else settings.approvers_file
    return state_dir, approvers, settings


def _line(a: Approval) -> str:
    decided = f" by {a.decided_by} ({', '.join(a.decided_roles) or '-'}, {a.channel})" if a.decided_by else ""
    args = json.dumps(a.args, sort_keys=True, separators=(",", ":"))
    return f"{a.id}  {a.status:<8} {a.tool:<22} {a.target:<28} requested by {a.requester}{decided}  {args}"


def _show(a: Approval) -> str:
    lines = [
        f"approval   {a.id} ({a.status})",
        f"tool       {a.tool} on {a.target}",
        f"requester  {a.requester}",
        f"arguments  {json.dumps(a.args, sort_keys=True)}",
        f"reasons    {'; '.join(a.reasons) or '-'}",
        f"approvers  role {' or '.join(a.approvers) or '-'}",
        f"expires    {a.summary()['expires_at']}",
        "plan (what the server will do; the approval is void if this changes):",
    ]
    lines += [f"  {key}: {json.dumps(value, sort_keys=True)}" for key, value in sorted(a.plan.items())] or ["  -"]
    return "\n".join(lines)


def _signature(args: argparse.Namespace, statement: bytes) -> str:
    if args.signature:
        return Path(args.signature).read_text()
    key = Path(args.key).expanduser()
    if args.in_process:
        return sshsig.sign_with_key(sshsig.load_private_key(key), statement, NAMESPACE)
    return sshsig.sign_with_ssh_keygen(key, statement, NAMESPACE, agent=args.agent)


def _open_store(state_dir: Path, settings: Settings | None) -> tuple[ApprovalStore, Callable[[], None]]:
    """The server's approval store and how to close it: the shared one (PostgreSQL) when the configuration
    names a `state_url` (`settings` is None when `--state-dir` overrides it), else SQLite in the state dir."""
    if settings is not None and settings.state_url:
        from opsgate.state import open_state

        state = open_state(settings)
        if state.approvals is not None:
            return state.approvals, state.close
        state.close()
    store = SqliteApprovalStore(state_dir)
    return store, store.close


def _decide(store: ApprovalStore, approvers_file: Path, args: argparse.Namespace) -> int:
    approval = store.get(args.id)
    if approval.kind != "grant":
        raise ApprovalError(f"approval {approval.id} is a client confirmation; it cannot be decided here")
    decision: Literal["approve", "deny"] = "approve" if args.approvals_cmd == "approve" else "deny"
    if approval.status != "pending":
        raise ApprovalError(f"approval {approval.id} is already {approval.status}")
    print(_show(approval))
    if decision == "deny" and not (args.key or args.signature):
        # a denial only ever stops a write, so an unsigned one is accepted (and labelled as such)
        by = f"unverified:{getpass.getuser()}"
        denied = store.decide(approval.id, status="denied", by=by, roles=[], channel=None, proof=None, note=args.note)
        print(f"denied {denied.id} (unsigned, recorded as {by})")
        return 0
    approvers = Approvers.load(approvers_file)
    statement = approval.statement(decision)
    signature = _signature(args, statement)
    signer = approvers.verify(signature, statement)
    a = signer.approver
    grant = ssh_grant(signer)
    if decision == "approve" and is_self_approval(grant, approval.requester):
        raise ApprovalError(
            f"{a.identity} made request {approval.id} ({approval.requester}) and cannot approve it; "
            "nobody approves their own request"
        )
    decided = store.decide(
        approval.id,
        status="granted" if decision == "approve" else "denied",
        by=a.identity,
        roles=list(a.roles),
        channel="ssh-signature",
        proof=signature,
        note=args.note,
    )
    verb = "approved" if decision == "approve" else "denied"
    print(f"{verb} {decided.id} as {a.identity} (role(s) {', '.join(a.roles)}; {signer.key_type} {signer.fingerprint})")
    if decision == "approve":
        print(f"the agent may now call {decided.tool} once with approval_id={decided.id}, for this plan only")
    return 0


def check_lines(settings: Settings) -> tuple[list[str], bool]:
    """`opsgate check`'s lines about approvals: the approvers file, and approver keys the server can read."""
    path = settings.approvers_file
    try:
        approvers = Approvers.load(path)
    except ApproversError as exc:
        return [f"FAIL approvers: {exc}"], False
    keyed = sum(1 for a in approvers.approvers if a.ssh_keys)
    lines = [f"approvers: {len(approvers.approvers)} in {path} ({keyed} with SSH keys)"]
    if not approvers.approvers:
        lines.append("  note: nobody can grant a signed approval until approvers.yaml lists someone")
    listed = {blob: a.identity for a in approvers.approvers for blob in a.ssh_keys}
    for found, identity in _readable_approver_keys(listed, [settings.state_dir, Path.home() / ".ssh"]):
        lines.append(
            f"  WARNING: {found} is the private key of approver {identity} and the server's user can read it; "
            "an agent running as this user could sign approvals with it (keep approvers' keys elsewhere, "
            "prefer FIDO2 -sk keys)"
        )
    return lines, True


def _readable_approver_keys(listed: dict[bytes, str], folders: list[Path]) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    if not listed:
        return found
    for folder in folders:
        if not folder.is_dir():
            continue
        paths = folder.rglob("*") if folder.name != ".ssh" else folder.iterdir()
        for path in paths:
            try:
                if not path.is_file() or path.stat().st_size > 65536:
                    continue
                head = path.read_bytes()
            except OSError:
                continue
            if not head.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----"):
                continue
            blob = _public_blob_of(path, head)
            if blob is not None and blob in listed:
                found.append((path, listed[blob]))
    return found


def _public_blob_of(path: Path, data: bytes) -> bytes | None:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_ssh_private_key(data, password=None)
        line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        return sshsig.public_key_blob(line.decode())
    except (ValueError, TypeError, sshsig.SshSigError, UnsupportedAlgorithm):
        pass
    sibling = path.with_name(path.name + ".pub")  # an encrypted or security-key file: judge by its .pub
    try:
        return sshsig.public_key_blob(sibling.read_text())
    except (OSError, sshsig.SshSigError):
        return None


def cmd_approvals(args: argparse.Namespace) -> int:
    try:
        state_dir, approvers_file, settings = _paths(args)
        if args.approvals_cmd == "allowed-signers":
            print(Approvers.load(approvers_file).allowed_signers(), end="")
            return 0
        store, close_store = _open_store(state_dir, None if args.state_dir else settings)
    except (ApprovalError, ApproversError, ConfigError, StateError) as exc:
        print(f"opsgate: {exc}", file=sys.stderr)
        return 2
    try:
        if args.approvals_cmd == "list":
            items = store.find(status=None if args.all else "pending", limit=args.n)
            if args.json:
                print(json.dumps([a.summary() for a in items], indent=2, sort_keys=True))
            elif not items:
                print("no pending approvals" if not args.all else "no approvals")
            for a in items if not args.json else []:
                print(_line(a))
            return 0
        if args.approvals_cmd == "show":
            approval = store.get(args.id)
            if args.statement:
                sys.stdout.write(approval.statement("deny" if args.deny else "approve").decode())
            elif args.json:
                print(json.dumps(approval.summary(), indent=2, sort_keys=True))
            else:
                print(_show(approval))
            return 0
        return _decide(store, approvers_file, args)
    except (ApprovalError, ApproversError, sshsig.SshSigError, OSError, ValueError) as exc:
        print(f"opsgate: {exc}", file=sys.stderr)
        return 1
    finally:
        close_store()


def register(sub: Any) -> None:
    """Add `approvals` to the `opsgate` command's subparsers."""
    approvals = sub.add_parser("approvals", help="list, show, approve or deny pending approvals of write calls")
    approvals_sub = approvals.add_subparsers(dest="approvals_cmd", required=True)
    list_cmd = approvals_sub.add_parser("list", help="pending approvals (newest first)")
    list_cmd.add_argument("--all", action="store_true", help="include granted, denied, used and void approvals")
    list_cmd.add_argument("-n", type=int, default=50)
    list_cmd.add_argument("--json", action="store_true")
    show = approvals_sub.add_parser("show", help="one approval with its plan, or the statement to sign")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.add_argument(
        "--statement", action="store_true", help=f"print the statement to sign (ssh-keygen -Y sign -n {NAMESPACE})"
    )
    show.add_argument("--deny", action="store_true", help="with --statement: the statement of a denial")
    approve = approvals_sub.add_parser("approve", help="grant a pending approval (single use), signed with your key")
    deny = approvals_sub.add_parser("deny", help="deny a pending approval (signing is optional)")
    for p, required in ((approve, True), (deny, False)):
        p.add_argument("id")
        how = p.add_mutually_exclusive_group(required=required)
        how.add_argument("--key", help="your SSH private key (or with --agent its .pub, the key held in ssh-agent)")
        how.add_argument("--signature", help="a signature made elsewhere over `approvals show ID --statement`")
        p.add_argument("--agent", action="store_true", help="the key is in ssh-agent (ssh-keygen -Y sign -U)")
        p.add_argument(
            "--in-process",
            action="store_true",
            help="sign in process instead of with ssh-keygen (unencrypted ed25519/ECDSA key files only)",
        )
        p.add_argument("--note", default=None)
    allowed = approvals_sub.add_parser(
        "allowed-signers", help="the approvers' keys as an allowed_signers file (for ssh-keygen -Y verify)"
    )
    for p in (list_cmd, show, approve, deny, allowed):
        p.add_argument("--state-dir", default=None, help="the server's state dir (default: from config)")
        p.add_argument("--approvers", default=None, help="the approvers file (default: from config)")
    approvals.set_defaults(func=cmd_approvals)
