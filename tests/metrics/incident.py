"""The test incident every metrics backend serves: the sandbox's shop with a bad checkout deploy.

The same generator feeds the sandbox backend, the real Prometheus (backfilled) and the Azure
loopback, so a typed query must give the same answer on all three.
"""

from __future__ import annotations

from datetime import UTC, datetime

from opsgate.sandbox.series import SandboxSeries, SandboxTimeline

SEED = 11
# A fixed reference time, never the wall clock: the series have daily seasonality, so an END that
# followed the clock made the expected figures depend on the time of day the suite ran. Prometheus runs
# with a retention longer than the age of these blocks, so the backfilled data is always kept.
END = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()
DAYS = 3
START = END - DAYS * 86_400.0
DEPLOY = END - 90 * 60.0
SERVICES = ("checkout", "payments", "inventory", "frontend")


def incident_series() -> SandboxSeries:
    """A private timeline (tests must not change the process-wide one)."""
    return SandboxSeries(seed=SEED, timeline=SandboxTimeline(deploy_at=DEPLOY), services=SERVICES)
