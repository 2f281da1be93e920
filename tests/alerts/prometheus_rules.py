"""A real Prometheus scraping the sandbox's series and evaluating alerting rules, sending to Alertmanager.

The sandbox world's current values are exposed on loopback in the Prometheus text format (an exporter the
test owns, over `SeriesSource.values` at wall-clock now); the real Prometheus scrapes it every second,
evaluates the given rule groups every second and sends what fires to the given Alertmanager.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from opsgate.sandbox.loopback import LoopbackApp
from opsgate.sandbox.promapi import SeriesSource
from tests.support.loopback import free_port, stop_process, wait_until_ready

PROMETHEUS = shutil.which("prometheus")
READY_TIMEOUT_S = 60.0


def exporter_app(source: SeriesSource) -> Starlette:
    async def metrics(_request: Request) -> Response:
        now = np.array([time.time()], dtype=np.float64)
        lines: list[str] = []
        for metric in source.metric_names():
            keys = source.series(metric)
            lines.append(f"# TYPE {metric} {'counter' if metric.endswith('_total') else 'gauge'}")
            for labels, row in zip(keys, source.values(metric, keys, now), strict=True):
                if np.isfinite(row[0]):
                    text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
                    lines.append(f"{metric}{{{text}}} {float(row[0])!r}")
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    return Starlette(routes=[Route("/metrics", metrics, methods=["GET"])])


@contextmanager
def scraping_prometheus(source: SeriesSource, rules: str, alertmanager_url: str, folder: Path) -> Iterator[str]:
    """Base URL of a real Prometheus scraping `source` with the rule file text `rules`."""
    assert PROMETHEUS is not None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rules.yml").write_text(rules)
    alertmanager = alertmanager_url.removeprefix("http://")
    with LoopbackApp(exporter_app(source), "sandbox-exporter") as exporter:
        target = exporter.url.removeprefix("http://")
        (folder / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files: [{folder / 'rules.yml'}]\n"
            f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{alertmanager}']\n"
            f"scrape_configs:\n  - job_name: sandbox\n    static_configs:\n      - targets: ['{target}']\n"
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = (folder / "prometheus.log").open("w")
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_ready(
                process,
                f"{url}/-/ready",
                READY_TIMEOUT_S,
                "prometheus",
                lambda: (folder / "prometheus.log").read_text()[-2000:],
            )
            yield url
        finally:
            stop_process(process)
            log.close()


def poll_until(check: Callable[[], Any], timeout: float, why: Callable[[], str]) -> Any:
    """Call `check` until it returns something truthy; fail with `why()` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(why())
        time.sleep(0.1)
