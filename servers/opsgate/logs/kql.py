"""The typed filter as KQL for Azure Monitor Logs. Values are written as escaped Kusto string
literals; table and column names come from configuration and are checked to be plain identifiers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from opsgate.logs.query import LogQuery
from opsgate.logs.quoting import double_quoted
from opsgate.logs.selector import Requirement
from opsgate.logs.severity import ALIASES, levels_from
from opsgate.logs.timeparse import format_ns

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,127}(\.[A-Za-z_][A-Za-z0-9_]{0,127}){0,3}$"
_IDENTIFIER = re.compile(IDENTIFIER)


@dataclass(frozen=True)
class Columns:
    table: str
    time: str
    message: str
    service: str
    namespace: str
    level: str
    source: str
    labels: str | None

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if value is not None and not _IDENTIFIER.match(value):
                raise ValueError(f"azure.{name} = {value!r} is not a plain KQL identifier")


def string(value: str) -> str:
    """A Kusto double-quoted string literal of `value`."""
    return double_quoted(value, lambda code: f"\\u{code:04x}")


def _list(values: tuple[str, ...] | list[str]) -> str:
    return "(" + ", ".join(string(v) for v in values) + ")"


def _label_condition(req: Requirement, labels: str) -> str:
    value = f"tostring({labels}[{string(req.key)}])"
    if req.operator == "=":
        return f"{value} == {string(req.values[0])}"
    if req.operator == "!=":
        return f"{value} != {string(req.values[0])}"
    if req.operator == "in":
        return f"{value} in {_list(req.values)}"
    if req.operator == "notin":
        return f"{value} !in {_list(req.values)}"
    if req.operator == "exists":
        return f"isnotempty({value})"
    return f"isempty({value})"


def where_clauses(query: LogQuery, c: Columns) -> list[str]:
    """The filter as KQL `where` conditions (without the time window, which the API's timespan and
    the first clause carry)."""
    clauses = [f"{c.time} between (datetime({format_ns(query.start_ns)}) .. datetime({format_ns(query.end_ns)}))"]
    if query.services:
        clauses.append(f"{c.service} in {_list(query.services)}")
    if query.namespace is not None:
        clauses.append(f"{c.namespace} == {string(query.namespace)}")
    if query.selector:
        if c.labels is None:
            raise ValueError("label selectors need [logs.azure] labels_column (e.g. KubernetesMetadata.podLabels)")
        clauses.extend(_label_condition(req, c.labels) for req in query.selector)
    if query.min_severity is not None:
        wanted = set(levels_from(query.min_severity))
        spellings = sorted(name for name, level in ALIASES.items() if level in wanted)
        clauses.append(f"tostring({c.level}) in~ {_list(spellings)}")
    # redacted: the service filters text and regex itself, on the redacted line (see logql.translate)
    if query.text is not None and query.redact is None:
        clauses.append(f"tostring({c.message}) contains {string(query.text)}")
    if query.regex is not None and query.redact is None:
        clauses.append(f"tostring({c.message}) matches regex {string(query.regex)}")
    return clauses


def translate(query: LogQuery, c: Columns, limit: int) -> str:
    direction = "desc" if query.order == "newest" else "asc"
    lines = [c.table, *(f"| where {clause}" for clause in where_clauses(query, c))]
    lines.append(f"| order by {c.time} {direction}")
    lines.append(f"| take {int(limit)}")
    lines.append(f"| project {c.time}, {c.service}, {c.level}, {c.message}, {c.source}")
    return "\n".join(lines)
