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
    register_sandbox(sub)


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Serve every tool over stdio against a live incident sandbox, for wiring a real agent to it."""
    import sys

    from opsgate.config import default_state_dir
    from opsgate.sandbox import demo_server
    from opsgate.sandbox.demo import demo_config, write_demo_approver
    from opsgate.sandbox.kube_api import KubeApiServer
    from opsgate.sandbox.world import SandboxWorld

    state = Path(args.state_dir) if args.state_dir else default_state_dir() / "sandbox"
    state.mkdir(parents=True, exist_ok=True)
    with SandboxWorld() as world:
        server = world._server
        assert isinstance(server, KubeApiServer)
        kubeconfig = state / "kubeconfig"
        server.write_kubeconfig(kubeconfig)
        config = state / "opsgate.toml"
        config.write_text(demo_config(state, kubeconfig))
        key = write_demo_approver(state)
        inc = world.incident
        # stderr: a stdio client shows it in its server log; stdout carries the protocol.
        print(
            f"opsgate sandbox: {inc.service} in namespace {inc.namespace} is at bad revision {inc.bad_revision}; "
            f"approve pending rollbacks with: opsgate approvals approve ID --key {key} --state-dir {state} "
            f"--approvers {state / 'approvers.yaml'} (a throwaway sandbox approver key: the agent could read it too)",
            file=sys.stderr,
        )
        return demo_server.main(["--config", str(config), "--kube-api", world.api_url, "--speed", str(args.speed)])


def register_sandbox(sub: Any) -> None:
    sandbox = sub.add_parser(
        "sandbox",
        help="serve all tools over stdio against a live incident sandbox (wire a real agent to it)",
    )
    sandbox.add_argument("--state-dir", default=None, help="config, audit trail and approvals (default: state dir)")
    sandbox.add_argument("--speed", type=float, default=40.0, help="metric time speed-up after a rollback")
    sandbox.set_defaults(func=cmd_sandbox)
