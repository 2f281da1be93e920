"""Kubernetes label selectors (`app=checkout,tier in (web,api),!canary`), parsed strictly.

Keys and values must be valid Kubernetes label keys and values, so a selector can carry nothing but
names into any backend's query language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Operator = Literal["=", "!=", "in", "notin", "exists", "!exists"]

_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY = rf"(?:[a-z0-9](?:[-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_NAME}"
_VALUE = rf"(?:{_NAME})?"
_SET = rf"\(\s*{_VALUE}(?:\s*,\s*{_VALUE})*\s*\)"
_REQUIREMENT = re.compile(
    rf"\s*(?:(?P<not>!)\s*(?P<nkey>{_KEY})"
    rf"|(?P<key>{_KEY})\s*(?:(?P<op>==|=|!=)\s*(?P<value>{_VALUE})|(?P<setop>in|notin)\s*(?P<set>{_SET}))?)\s*"
)


class SelectorError(ValueError):
    pass


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator == "exists":
            return value is not None
        if self.operator == "!exists":
            return value is None
        if self.operator in ("=", "in"):
            return value is not None and value in self.values
        return value is None or value not in self.values

    def __str__(self) -> str:
        if self.operator == "exists":
            return self.key
        if self.operator == "!exists":
            return f"!{self.key}"
        if self.operator in ("=", "!="):
            return f"{self.key}{self.operator}{self.values[0]}"
        return f"{self.key} {self.operator} ({','.join(self.values)})"


def parse_selector(text: str) -> tuple[Requirement, ...]:
    """Parse a label selector; SelectorError names the part that is not valid."""
    requirements: list[Requirement] = []
    position = 0
    while position < len(text):
        match = _REQUIREMENT.match(text, position)
        if not match or match.end() == position:
            raise SelectorError(
                f"invalid label selector {text!r} at {text[position : position + 20]!r}: use "
                "key=value, key!=value, key in (a,b), key notin (a,b), key or !key, comma-separated"
            )
        requirements.append(_requirement(match))
        position = match.end()
        if position < len(text):
            if text[position] != ",":
                raise SelectorError(f"invalid label selector {text!r}: expected ',' at {text[position:]!r}")
            position += 1
    if not requirements:
        raise SelectorError("empty label selector")
    return tuple(requirements)


def _requirement(match: re.Match[str]) -> Requirement:
    if match.group("not"):
        return Requirement(match.group("nkey"), "!exists")
    key = match.group("key")
    if match.group("op"):
        return Requirement(key, "!=" if match.group("op") == "!=" else "=", (match.group("value"),))
    if match.group("setop"):
        values = tuple(v.strip() for v in match.group("set")[1:-1].split(","))
        return Requirement(key, "in" if match.group("setop") == "in" else "notin", values)
    return Requirement(key, "exists")


def service_requirement(label: str, services: tuple[str, ...]) -> Requirement:
    return Requirement(label, "in", services)
