"""`opsgate demo`: the incident sandbox end to end (see `opsgate.sandbox.demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def cmd_demo(args: argparse.Namespace) -> int:
    from opsgate.sandbox.demo import main

    color = False if args.no_color else None
    return main(Path(args.state_dir) if args.state_dir else None, color=color)


def register(sub: Any) -> None:
    """Add `demo` to the `opsgate` command's subparsers."""
    demo = sub.add_parser(
        "demo",
        help="run the incident sandbox end to end: a bad deploy investigated and rolled back by a scripted agent",
    )
    demo.add_argument(
        "--state-dir", default=None, help="where the demo keeps config, audit trail, approvals (default: a temp dir)"
    )
    demo.add_argument("--no-color", action="store_true", help="plain output even on a terminal")
    demo.set_defaults(func=cmd_demo)
