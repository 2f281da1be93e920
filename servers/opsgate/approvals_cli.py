"""`opsgate approvals list|approve|deny`: a human grants or denies pending approvals out of band.

Runs against the same state dir as the server (from `--config`, `$OPSGATE_STATE_DIR`, or
`--state-dir`). Who may run it is whoever can write the state dir; the approver's name and role are
recorded in the signed grant, and the policy checks the role when the agent presents the approval.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from opsgate.approvals import Approval, ApprovalError, ApprovalStore
from opsgate.config import load_settings


def _store(args: argparse.Namespace) -> ApprovalStore:
    state_dir = Path(args.state_dir) if args.state_dir else load_settings(args.config).state_dir
    return ApprovalStore(state_dir)


def _line(a: Approval) -> str:
    decided = f" by {a.decided_by} ({', '.join(a.decided_roles) or '-'})" if a.decided_by else ""
    args = json.dumps(a.args, sort_keys=True, separators=(",", ":"))
    return f"{a.id}  {a.status:<8} {a.tool:<22} {a.target:<28} requested by {a.requester}{decided}  {args}"


def cmd_approvals(args: argparse.Namespace) -> int:
    try:
        store = _store(args)
    except ApprovalError as exc:
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
        if args.approvals_cmd == "approve":
            granted = store.approve(args.id, by=args.as_, roles=args.role, note=args.note)
            print(f"approved {granted.id} as {granted.decided_by} with role(s) {', '.join(granted.decided_roles)}")
            print(f"the agent may now call {granted.tool} once with approval_id={granted.id}")
            return 0
        denied = store.deny(args.id, by=args.as_, note=args.note)
        print(f"denied {denied.id} as {denied.decided_by}")
        return 0
    except ApprovalError as exc:
        print(f"opsgate: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def register(sub: Any) -> None:
    """Add `approvals` to the `opsgate` command's subparsers."""
    approvals = sub.add_parser("approvals", help="list, approve or deny pending approvals of write calls")
    approvals_sub = approvals.add_subparsers(dest="approvals_cmd", required=True)
    list_cmd = approvals_sub.add_parser("list", help="pending approvals (newest first)")
    list_cmd.add_argument("--all", action="store_true", help="include granted, denied and used approvals")
    list_cmd.add_argument("-n", type=int, default=50)
    list_cmd.add_argument("--json", action="store_true")
    approve = approvals_sub.add_parser("approve", help="grant a pending approval (single use)")
    approve.add_argument("id")
    approve.add_argument("--as", dest="as_", default=getpass.getuser(), help="who approves (default: OS user)")
    approve.add_argument("--role", action="append", required=True, help="the approver's role (repeatable)")
    approve.add_argument("--note", default=None)
    deny = approvals_sub.add_parser("deny", help="deny a pending approval")
    deny.add_argument("id")
    deny.add_argument("--as", dest="as_", default=getpass.getuser(), help="who denies (default: OS user)")
    deny.add_argument("--note", default=None)
    for p in (list_cmd, approve, deny):
        p.add_argument("--state-dir", default=None, help="the server's state dir (default: from config)")
    approvals.set_defaults(func=cmd_approvals)
