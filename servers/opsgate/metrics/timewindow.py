"""Instants and the windows the metrics tools accept; durations are `opsgate.durations`'s (one set of rules)."""

from __future__ import annotations

from datetime import UTC, datetime

from opsgate.durations import DURATION_PATTERN as DURATION_PATTERN
from opsgate.durations import format_duration as format_duration
from opsgate.durations import parse_duration as parse_duration


def unix(dt: datetime) -> float:
    """Unix seconds; a datetime without a zone is taken as UTC."""
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def iso(ts: float) -> str:
    """RFC 3339 in UTC to the second (`2026-11-23T05:00:00Z`)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
