"""A real Prometheus for the tests: backfilled with the test incident, started on loopback, once per session.

Needs the `prometheus` and `promtool` binaries (Debian/Ubuntu package `prometheus`; `make system-deps`).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from opsgate.sandbox.series import METRICS, RESOLUTION_S, sample_times
from tests.metrics.incident import END, START, incident_series
from tests.support.loopback import free_port, stop_process, wait_until_ready

READY_TIMEOUT_S = 60.0
MINIMAL_CONFIG = "global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\nscrape_configs: []\n"


def write_openmetrics(path: Path) -> int:
    """The incident's series as OpenMetrics text (one family after another); returns the sample count."""
    series = incident_series()
    # one scrape past END: promtool 2.42's backfill drops the very last sample of its input
    times = sample_times(START, END + RESOLUTION_S)
    stamps = [f"{t:.0f}" for t in times.tolist()]
    count = 0
    with path.open("w") as out:
        for spec in METRICS:
            family = spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name
            out.write(f"# TYPE {family} {spec.kind}\n# HELP {family} {spec.help}\n")
            keys = series.keys_of(spec.name)
            values = series.values(keys, times)
            for key, row in zip(keys, values, strict=True):
                labels = ",".join(f'{k}="{v}"' for k, v in key.labels)
                prefix = f"{spec.name}{{{labels}}} "
                out.writelines(f"{prefix}{v!r} {s}\n" for v, s in zip(row.tolist(), stamps, strict=True))
                count += int(np.isfinite(row).sum())
        out.write("# EOF\n")
    return count


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"`{name}` is not installed: the metrics tests run a real Prometheus. "
            "Run `make system-deps` (Debian/Ubuntu package `prometheus`) and try again.",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running Prometheus holding the test incident."""
    root = tmp_path_factory.mktemp("prometheus")
    source = root / "incident.om.txt"
    write_openmetrics(source)
    with serve_backfilled(source, root) as url:
        yield url


@contextmanager
def serve_backfilled(source: Path, root: Path) -> Iterator[str]:
    """Backfill an OpenMetrics file into a fresh TSDB under `root` and serve it with a real Prometheus."""
    prometheus_bin, promtool_bin = _binary("prometheus"), _binary("promtool")
    data = root / "data"
    data.mkdir()
    backfill = subprocess.run(
        [promtool_bin, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if backfill.returncode != 0:
        pytest.fail(f"promtool backfill failed: {backfill.stderr[-2000:]}", pytrace=False)
    source.unlink()
    config = root / "minimal.yml"
    config.write_text(MINIMAL_CONFIG)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (root / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            prometheus_bin,
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--config.file={config}",
            "--storage.tsdb.retention.time=3650d",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_ready(
            proc, f"{url}/-/ready", READY_TIMEOUT_S, "prometheus", lambda: (root / "prometheus.log").read_text()[-2000:]
        )
        yield url
    finally:
        stop_process(proc)
        log.close()
