"""The typed filter as LogQL for Loki: a stream selector from service/namespace/labels, line filters
for text and regex, a label filter for severity. Every value is written as an escaped Go string
literal, so no field can end the string or add a stage."""

from __future__ import annotations

import re

from opsgate.logs.query import LogQuery
from opsgate.logs.quoting import double_quoted
from opsgate.logs.safe_regex import escape as regex_escape
from opsgate.logs.selector import Requirement
from opsgate.logs.severity import ALIASES, Severity, levels_from

_LABEL_INVALID = re.compile(r"[^A-Za-z0-9_]")


def string(value: str) -> str:
    """A LogQL (Go) double-quoted string literal of `value`."""
    return double_quoted(value, lambda code: f"\\x{code:02x}")


def label_name(key: str) -> str:
    """A Kubernetes label key as Loki label name (`app.kubernetes.io/name` -> `app_kubernetes_io_name`),
    the way Promtail and Alloy relabel them."""
    name = _LABEL_INVALID.sub("_", key)
    return name if not name[:1].isdigit() else "_" + name


def _alternatives(values: tuple[str, ...]) -> str:
    return "|".join(regex_escape(v) for v in values)


def _matcher(req: Requirement) -> str:
    name = label_name(req.key)
    if req.operator == "=":
        return f"{name}={string(req.values[0])}"
    if req.operator == "!=":
        return f"{name}!={string(req.values[0])}"
    if req.operator == "in":
        return f"{name}=~{string(_alternatives(req.values))}"
    if req.operator == "notin":
        return f"{name}!~{string(_alternatives(req.values))}"
    if req.operator == "exists":
        return f"{name}=~{string('.+')}"
    return f"{name}={string('')}"


def _selects(req: Requirement) -> bool:
    return req.operator == "exists" or (req.operator in ("=", "in") and all(req.values))


def severity_pattern(minimum: Severity) -> str:
    """A case-insensitive RE2 alternation of every spelling of the levels at or above `minimum`."""
    wanted = set(levels_from(minimum))
    spellings = sorted(name for name, level in ALIASES.items() if level in wanted)
    return "(?i)(" + "|".join(spellings) + ")"


def translate(query: LogQuery, service_label: str, namespace_label: str, level_label: str) -> str:
    requirements: list[Requirement] = []
    if query.services:
        requirements.append(Requirement(service_label, "in", query.services))
    if query.namespace is not None:
        requirements.append(Requirement(namespace_label, "=", (query.namespace,)))
    requirements.extend(query.selector)
    if not any(_selects(req) for req in requirements):
        # Loki needs one matcher that cannot match the empty string
        requirements.append(Requirement(service_label, "exists"))
    parts = ["{" + ", ".join(_matcher(req) for req in requirements) + "}"]
    # redacted: the service filters text and regex itself, on the redacted line (matched on the raw line here,
    # even how many lines came back would tell a masked secret's characters apart)
    if query.text is not None and query.redact is None:
        parts.append(f"|~ {string(query.text_pattern or '')}")
    if query.regex is not None and query.redact is None:
        parts.append(f"|~ {string(query.regex)}")
    if query.min_severity is not None:
        parts.append(f"| {label_name(level_label)}=~{string(severity_pattern(query.min_severity))}")
    return " ".join(parts)
