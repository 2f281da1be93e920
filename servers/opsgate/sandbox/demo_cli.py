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
    """Serve every tool over stdio against a live scenario world, for wiring a real agent to it."""
    import sys

    import anyio

    from opsgate.approvals import Approvals
    from opsgate.config import default_state_dir, load_settings
    from opsgate.sandbox.approver import write_sandbox_approver
    from opsgate.sandbox.scenario import ScenarioError
    from opsgate.sandbox.world import SandboxWorld
    from opsgate.server import build_app
    from opsgate.stdio import serve_stdio

    try:
        world = SandboxWorld(args.scenario, speed=args.speed)
    except ScenarioError as exc:
        print(f"opsgate sandbox: {exc}", file=sys.stderr)
        return 2
    state = Path(args.state_dir) if args.state_dir else default_state_dir() / "sandbox"
    state.mkdir(parents=True, exist_ok=True)
    with world:
        kubeconfig = world.write_kubeconfig(state / "kubeconfig")
        config = state / "opsgate.toml"
        config.write_text(world.config_toml(state, kubeconfig))
        key = write_sandbox_approver(state)
        scenario = world.scenario
        # stderr: a stdio client shows it in its server log; stdout carries the protocol.
        settings = load_settings(config)
        # the pending result names the whole command (key, state dir, approvers file): it works as written
        hook = Approvals.from_settings(settings)
        hook.approver_key = str(key)
        print(
            f"opsgate sandbox: scenario {scenario.id} ({scenario.title}); alert {scenario.alert.name} is firing in "
            f"namespace {scenario.alert.namespace}; approve pending writes with: {hook.approve_command('ID')} "
            "(a throwaway sandbox approver key: an agent running as this user could read it too)",
            file=sys.stderr,
        )
        app = build_app(settings, ["all"], approvals=hook)
        anyio.run(serve_stdio, app.server)
    return 0


def register_sandbox(sub: Any) -> None:
    sandbox = sub.add_parser(
        "sandbox",
        help="serve all tools over stdio against a live incident scenario (wire a real agent to it)",
    )
    sandbox.add_argument(
        "--scenario",
        default="checkout-bad-deploy",
        help="a scenario name under scenarios/ or a path to a scenario YAML file (default: checkout-bad-deploy)",
    )
    sandbox.add_argument("--state-dir", default=None, help="config, audit trail and approvals (default: state dir)")
    sandbox.add_argument("--speed", type=float, default=40.0, help="metric time speed-up after a change")
    sandbox.set_defaults(func=cmd_sandbox)
