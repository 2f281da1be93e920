"""A real Prometheus Alertmanager (Debian's `prometheus-alertmanager`) on loopback, for tests."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.support.loopback import free_port, stop_process, wait_until_ready

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
CONFIG = """route:
  receiver: "null"
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: "null"
"""


@contextmanager
def running_alertmanager(folder: Path) -> Iterator[str]:
    assert BINARY is not None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "alertmanager.yml").write_text(CONFIG)
    port = free_port()
    log = folder / "alertmanager.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [
                BINARY,
                f"--config.file={folder / 'alertmanager.yml'}",
                f"--storage.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, f"{url}/-/ready", 30, "alertmanager", lambda: log.read_text(errors="replace")[-2000:])
        yield url
    finally:
        stop_process(process)


def post_alerts(url: str, alerts: list[dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    body = [
        {
            "labels": a["labels"],
            "annotations": a.get("annotations", {}),
            "startsAt": (now - timedelta(minutes=a.get("age_min", 5))).isoformat().replace("+00:00", "Z"),
            "endsAt": (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        }
        for a in alerts
    ]
    httpx.post(f"{url}/api/v2/alerts", json=body, timeout=5).raise_for_status()


def wait_for_alerts(url: str, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = httpx.get(f"{url}/api/v2/alerts", timeout=5).json()
        if len(found) >= count or time.monotonic() > deadline:
            return list(found)
        time.sleep(0.1)
