"""What series a call asks for, independent of the backend: metric, label matchers, aggregation.

The typed fields are turned into PromQL here (escaped, so a label value can never smuggle in
query text); other backends evaluate the same selection themselves (see `aggregate`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$"
LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]{0,99}$"
MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]{0,99})\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')

Aggregation = Literal["none", "sum", "avg", "max", "min", "count", "rate", "quantile"]
MatchOp = Literal["=", "!=", "=~", "!~"]


@dataclass(frozen=True)
class Matcher:
    name: str
    op: MatchOp
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        # PromQL regexes are anchored
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found

    def promql(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


def parse_matcher(text: str) -> Matcher:
    """`name="value"`, `name!="v"`, `name=~"re"` or `name!~"re"`; ValueError naming the text otherwise."""
    m = MATCHER.match(text)
    if m is None:
        raise ValueError(f'{text!r} is not a label matcher like service="checkout" or code=~"5.."')
    name, op, raw = m.group(1), m.group(2), m.group(3)
    value = re.sub(r"\\(.)", lambda g: "\n" if g.group(1) == "n" else g.group(1), raw)
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{text!r}: invalid regular expression: {exc}") from None
    return Matcher(name, op, value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Selection:
    """One backend query: a metric with matchers and an optional aggregation, or raw backend text."""

    metric: str | None
    matchers: tuple[Matcher, ...] = ()
    aggregation: Aggregation = "none"
    by: tuple[str, ...] = ()
    quantile: float | None = None
    rate_window_s: float = 300.0
    raw_query: str | None = None

    def with_metric(self, metric: str) -> Selection:
        return Selection(metric, self.matchers, self.aggregation, self.by, self.quantile, self.rate_window_s)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def promql(self) -> str:
        """The PromQL for this selection (the raw query itself when one was given)."""
        if self.raw_query is not None:
            return self.raw_query
        if self.metric is None:
            raise ValueError("a selection needs a metric or a raw query")
        inner = self.metric + ("{" + ",".join(m.promql() for m in self.matchers) + "}" if self.matchers else "")
        by = f" by ({','.join(self.by)})" if self.by else ""
        if self.aggregation == "none":
            return inner
        if self.aggregation == "rate":
            rated = f"rate({inner}[{_prom_duration(self.rate_window_s)}])"
            return f"sum{by} ({rated})" if self.by else rated
        if self.aggregation == "quantile":
            return f"quantile{by} ({self.quantile:g}, {inner})"
        return f"{self.aggregation}{by} ({inner})"


def _prom_duration(seconds: float) -> str:
    return f"{round(seconds)}s"


def series_name(metric: str | None, labels: Mapping[str, str]) -> str:
    """A series in selector notation: `latency_p99_seconds{service="checkout"}`."""
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{metric or ''}{{{inner}}}"


def matchers_from(namespace: str | None, service: str | None, match: Sequence[str]) -> tuple[Matcher, ...]:
    out: list[Matcher] = []
    if namespace is not None:
        out.append(Matcher("namespace", "=", namespace))
    if service is not None:
        out.append(Matcher("service", "=", service))
    out.extend(parse_matcher(text) for text in match)
    return tuple(out)
