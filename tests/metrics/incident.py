"""The test incident every metrics backend serves: the sandbox's shop with a bad checkout deploy.

The same generator feeds the sandbox backend, the real Prometheus (backfilled) and the Azure
loopback, so a typed query must give the same answer on all three.
"""

from __future__ import annotations

import math
import time

from opsgate.sandbox.series import SandboxSeries, SandboxTimeline

SEED = 11
# Aligned to the minute and fixed for the session; Prometheus' retention is measured from the newest
# sample, and the data end within the hour, so the backfilled blocks are always retained.
END = math.floor(time.time() / 60) * 60.0 - 600.0
DAYS = 3
START = END - DAYS * 86_400.0
DEPLOY = END - 90 * 60.0
SERVICES = ("checkout", "payments", "inventory", "frontend")


def incident_series() -> SandboxSeries:
    """A private timeline (tests must not change the process-wide one)."""
    return SandboxSeries(seed=SEED, timeline=SandboxTimeline(deploy_at=DEPLOY), services=SERVICES)
