"""`opsgate eval`: the command line (see `opsgate.evaluation.runner`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def cmd_eval(args: argparse.Namespace) -> int:
    import logging

    import anyio

    for name in ("httpx", "httpcore", "kubernetes", "urllib3"):  # the in-process baseline's clients
        logging.getLogger(name).setLevel(logging.WARNING)

    from opsgate.evaluation.report import as_json, markdown, table
    from opsgate.evaluation.runner import AgentCommand, Investigator, baseline, run_eval
    from opsgate.sandbox.scenario import ScenarioError, load_scenario, scenario_names

    names = args.scenario or scenario_names()
    try:
        for name in names:
            load_scenario(name)
    except ScenarioError as exc:
        print(f"opsgate eval: {exc}", file=sys.stderr)
        return 2

    def make() -> Investigator:
        return AgentCommand(args.agent, args.timeout) if args.agent else baseline()

    label = f"agent `{args.agent}`" if args.agent else "baseline investigator"

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    workdir = Path(args.workdir) if args.workdir else None
    scores = anyio.run(lambda: run_eval(names, make, workdir=workdir, progress=progress))
    print(table(scores))
    command = "opsgate eval" + (f' --agent "{args.agent}"' if args.agent else "")
    if args.json:
        Path(args.json).write_text(as_json(scores, label))
    if args.markdown:
        Path(args.markdown).write_text(markdown(scores, label, command))
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("eval", help="run investigations over incident scenarios and score them")
    parser.add_argument("--scenario", action="append", help="a scenario name or file (repeat; default: all)")
    parser.add_argument("--agent", default=None, help="agent command; default: the built-in baseline investigator")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds an agent command may take per scenario")
    parser.add_argument("--json", default=None, help="write the scores as JSON here")
    parser.add_argument("--markdown", default=None, help="write a Markdown report here")
    parser.add_argument("--workdir", default=None, help="keep each scenario's config, audit trail and answer here")
    parser.set_defaults(func=cmd_eval)
