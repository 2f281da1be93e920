"""One small set of log lines, seeded into each backend the same way, and the answer one typed query
must give on every backend."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opsgate.logs.timeparse import to_ns
from tests.logs.azure_loopback import Table
from tests.logs.loki_loopback import Stream


@dataclass(frozen=True)
class Event:
    offset_s: float
    service: str
    level: str
    msg: str


EVENTS = (
    Event(0, "checkout", "info", "order placed"),
    Event(10, "checkout", "error", "connection timeout to payments after 5000ms"),
    Event(20, "checkout", "warn", "slow call to payments: 80% of the timeout budget"),
    Event(30, "checkout", "error", "payment call failed: i/o TIMEOUT"),
    Event(40, "checkout", "error", "cart service unavailable"),
    Event(50, "checkout", "info", "payment authorized after a timeout retry"),
    Event(15, "payments", "error", "upstream timeout from the database"),
    Event(400, "checkout", "error", "connection timeout to payments (outside the window)"),
)


# The typed query every backend answers, and the messages it must return (oldest first).
def typed_query(base: datetime) -> dict[str, Any]:
    return {
        "service": "checkout",
        "min_severity": "error",
        "text": "timeout",
        "start": (base - timedelta(seconds=1)).isoformat().replace("+00:00", "Z"),
        "end": (base + timedelta(seconds=300)).isoformat().replace("+00:00", "Z"),
        "order": "oldest",
    }


EXPECTED = ["connection timeout to payments after 5000ms", "payment call failed: i/o TIMEOUT"]


def recent_base() -> datetime:
    """A base time a few minutes ago (the Kubernetes backend reads logs relative to the clock)."""
    return (datetime.now(UTC) - timedelta(minutes=10)).replace(microsecond=0)


def when(base: datetime, event: Event) -> datetime:
    return base + timedelta(seconds=event.offset_s)


def json_line(base: datetime, event: Event) -> str:
    stamp = when(base, event).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"ts": stamp, "level": event.level, "msg": event.msg})


def events_of(service: str) -> list[Event]:
    return sorted((e for e in EVENTS if e.service == service), key=lambda e: e.offset_s)


def write_files(base: datetime, folder: Path) -> dict[str, Any]:
    """checkout as JSON lines, payments as logfmt; returns the `[logs]` section for them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "checkout.jsonl").write_text("".join(json_line(base, e) + "\n" for e in events_of("checkout")))
    (folder / "payments.log").write_text(
        "".join(
            f'ts={when(base, e).isoformat().replace("+00:00", "Z")} level={e.level} msg="{e.msg}"\n'
            for e in events_of("payments")
        )
    )
    return {"backend": "files", "files": {"sources": [{"path": str(folder / "*")}]}}


def loki_streams(base: datetime) -> list[Stream]:
    return [
        Stream(
            labels={"service_name": service, "namespace": "shop", "app": service, "pod": f"{service}-0"},
            entries=[
                (to_ns(when(base, e)), json_line(base, e), {"detected_level": e.level}) for e in events_of(service)
            ],
        )
        for service in ("checkout", "payments")
    ]


# The Log Analytics ContainerLogV2 columns the Azure backend reads, as the loopback serves them.
CONTAINER_LOG_V2_COLUMNS = [
    ("TimeGenerated", "datetime"),
    ("PodNamespace", "string"),
    ("PodName", "string"),
    ("ContainerName", "string"),
    ("LogLevel", "string"),
    ("LogMessage", "dynamic"),
]


def azure_tables(base: datetime) -> dict[str, Table]:
    rows = [
        {
            "TimeGenerated": when(base, e).isoformat().replace("+00:00", "Z"),
            "PodNamespace": "shop",
            "PodName": f"{e.service}-0",
            "ContainerName": e.service,
            "LogLevel": e.level,
            "LogMessage": json_line(base, e),
        }
        for e in EVENTS
    ]
    return {"ContainerLogV2": Table(columns=CONTAINER_LOG_V2_COLUMNS, rows=rows)}
