"""The demo's MCP server process: `opsgate serve all` over stdio, plus the sandbox's metrics clock.

    python -m opsgate.sandbox.demo_server --config demo.toml --kube-api http://127.0.0.1:PORT

It assembles the same app `opsgate serve all` does (same settings, policy, audit trail, capabilities
and the approvals hook) with two sandbox additions: a `TimelineFollower` that keeps the metrics'
incident timeline in step with the cluster behind `--kube-api` (so the metrics recover because the
Deployment was rolled back), and a `FastForwardClock` for the metrics capability that runs
`--speed` times faster after that rollback, so minutes of recovery show in seconds.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from opsgate.approvals import Approvals
from opsgate.config import load_settings
from opsgate.metrics.server import build_capability, make_backend
from opsgate.metrics.settings import MetricsSettings
from opsgate.sandbox.series import shared_timeline
from opsgate.sandbox.world import FastForwardClock, TimelineFollower
from opsgate.server import build_app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opsgate.sandbox.demo_server")
    parser.add_argument("--config", type=Path, required=True, help="the demo's TOML config")
    parser.add_argument("--kube-api", required=True, help="URL of the sandbox's loopback Kubernetes API")
    parser.add_argument("--speed", type=float, default=40.0, help="metric time speed-up after the rollback")
    args = parser.parse_args(argv)
    # stderr of a stdio server reaches the demo's terminal: keep the clients' request logs out of it
    for name in ("httpx", "httpcore", "kubernetes", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)

    settings = load_settings(args.config)
    clock = FastForwardClock(args.speed)
    follower = TimelineFollower(args.kube_api, shared_timeline(), clock=clock).start()
    metrics_config = MetricsSettings.model_validate(settings.metrics)
    metrics = build_capability(metrics_config, make_backend(metrics_config), clock=clock)
    approvals = Approvals.from_settings(settings)
    app = build_app(settings, ["runbooks", "logs", "rollback"], capabilities=[metrics], approvals=approvals)
    try:
        app.server.run("stdio")
    finally:
        follower.stop()
        approvals.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
