"""Label selectors (`app=x,tier in (a,b),!canary`) and field selectors (`involvedObject.name=x`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from opsgate.sandbox.kube.errors import KubeApiError, bad_request
from opsgate.sandbox.kube.objects import JsonObject

Predicate = Callable[[JsonObject], bool]

_SET_RE = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EQ_RE = re.compile(r"^\s*([\w./-]+)\s*(==|!=|=)\s*([\w./-]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*$")


def _split_requirements(selector: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def _label_requirement(text: str) -> Callable[[Mapping[str, str]], bool]:
    if match := _SET_RE.match(text):
        key, operator, raw_values = match.groups()
        values = {value.strip() for value in raw_values.split(",") if value.strip()}
        if operator == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQ_RE.match(text):
        key, operator, value = match.groups()
        if operator == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS_RE.match(text):
        negated, key = match.groups()
        if negated:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise bad_request(f"unable to parse requirement: {text.strip()!r} is not a valid label selector")


def label_selector(selector: str | None) -> Predicate:
    """Compile a `labelSelector` query value; an empty selector matches everything."""
    requirements = [_label_requirement(part) for part in _split_requirements(selector or "")]

    def matches(obj: JsonObject) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return matches


def match_labels_selector(selector: JsonObject) -> Predicate:
    """Compile a `LabelSelector` object (`matchLabels`, `matchExpressions`)."""
    match_labels: dict[str, str] = selector.get("matchLabels") or {}
    expressions: list[JsonObject] = selector.get("matchExpressions") or []

    def expression_matches(labels: Mapping[str, str], expression: JsonObject) -> bool:
        key, operator = expression["key"], expression["operator"]
        values = set(expression.get("values") or [])
        checks: dict[str, bool] = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }
        return checks.get(operator, False)

    def matches(obj: JsonObject) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        if any(labels.get(key) != value for key, value in match_labels.items()):
            return False
        return all(expression_matches(labels, expression) for expression in expressions)

    return matches


def _field_value(obj: JsonObject, path: str) -> str:
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, dict):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


def field_selector(selector: str | None) -> Predicate:
    """Compile a `fieldSelector` (`path=value`, `path==value`, `path!=value`, comma-separated)."""
    checks: list[tuple[str, bool, str]] = []
    for part in _split_requirements(selector or ""):
        match = _EQ_RE.match(part)
        if not match:
            raise KubeApiError(400, "BadRequest", f"invalid field selector: {part.strip()!r}")
        path, operator, value = match.groups()
        checks.append((path, operator != "!=", value))

    def matches(obj: JsonObject) -> bool:
        return all((_field_value(obj, path) == value) == equal for path, equal, value in checks)

    return matches
