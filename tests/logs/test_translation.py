"""The typed filter in LogQL and KQL: every string a caller controls ends up inside one escaped
literal, so no value can close the string, add a pipeline stage or change the query's shape."""

from __future__ import annotations

from typing import Any

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from opsgate.logs import kql, logql
from opsgate.logs.backends.azure import AzureSettings
from opsgate.logs.contracts import QueryInput
from opsgate.logs.query import LogQuery
from opsgate.logs.selector import parse_selector
from tests.logs.azure_loopback import tokenize
from tests.logs.loki_loopback import _unquote

PAYLOADS = [
    'x" | take 100000 //',
    'x") or true or ("',
    '"} |= "',
    "`",
    "x` |~ `.*",
    '\\" }',
    "\\",
    'a\\\\" | where 1==1',
    "}) by (level) |",
    "' or ''='",
    "ignore previous instructions | project secret",
    'é ü 漢字 " ;',
]
REGEX_PAYLOADS = ['"}|~".*', r"\" | take 1", "(a+)+$", "[|`}]", '.*" or "1"=="1', "^$"]
COLUMNS = AzureSettings(workspace_id="w").columns()


def logql_skeleton(text: str) -> tuple[str, list[str]]:
    """The query with every string literal replaced by S, and the literals' values."""
    out, literals, i = [], [], 0
    while i < len(text):
        if text[i] in '"`':
            value, i = _unquote(text, i)
            literals.append(value)
            out.append("S")
        else:
            out.append(text[i])
            i += 1
    return "".join(out), literals


def kql_skeleton(text: str) -> tuple[list[Any], list[str]]:
    tokens = tokenize(text)
    return [("S" if kind == "str" else value) for kind, value in tokens], [v for k, v in tokens if k == "str"]


def _query(**fields: Any) -> LogQuery:
    base: dict[str, Any] = {
        "start_ns": 1,
        "end_ns": 2,
        "services": ("checkout",),
        "namespace": "shop",
        "min_severity": "error",
    }
    return LogQuery(**{**base, **fields})


@pytest.mark.parametrize("payload", PAYLOADS)
def test_text_is_inert_in_logql_and_kql(payload: str) -> None:
    benign_logql = logql_skeleton(logql.translate(_query(text="x"), "service_name", "namespace", "detected_level"))
    query = logql.translate(_query(text=payload), "service_name", "namespace", "detected_level")
    shape, literals = logql_skeleton(query)
    assert shape == benign_logql[0]
    pattern = next(lit for lit in literals if lit.startswith("(?i)"))
    assert re2.search(pattern, f"<<{payload.upper()}>>") is not None  # the literal still finds the text
    assert re2.search(pattern, "something else") is None

    benign_kql = kql_skeleton(kql.translate(_query(text="x"), COLUMNS, 10))
    shape_kql, literals_kql = kql_skeleton(kql.translate(_query(text=payload), COLUMNS, 10))
    assert shape_kql == benign_kql[0]
    assert payload in literals_kql


@pytest.mark.parametrize("payload", REGEX_PAYLOADS)
def test_regex_is_inert_in_logql_and_kql(payload: str) -> None:
    shape, literals = logql_skeleton(logql.translate(_query(regex=payload), "service_name", "ns", "level"))
    assert shape == logql_skeleton(logql.translate(_query(regex="x"), "service_name", "ns", "level"))[0]
    assert payload in literals
    shape_kql, literals_kql = kql_skeleton(kql.translate(_query(regex=payload), COLUMNS, 10))
    assert shape_kql == kql_skeleton(kql.translate(_query(regex="x"), COLUMNS, 10))[0]
    assert payload in literals_kql


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"], min_codepoint=0x20), min_size=1, max_size=60))
def test_any_printable_text_round_trips_through_both_literal_syntaxes(payload: str) -> None:
    assert _unquote(logql.string(payload), 0) == (payload, len(logql.string(payload)))
    tokens = tokenize(f"T | where C == {kql.string(payload)}")
    assert tokens[-1] == ("str", payload) and len(tokens) == 6


@pytest.mark.parametrize("field", ["service", "namespace", "selector"])
@pytest.mark.parametrize("payload", ['x"}', "x` |= `", 'app=x" | take 1', "x\n| where 1", "a=b|c", 'a in ("x")'])
def test_name_fields_refuse_query_syntax(field: str, payload: str) -> None:
    with pytest.raises(ValidationError) as raised:
        QueryInput.model_validate({field: payload})
    assert field in str(raised.value)


def test_control_characters_are_refused_in_text_and_regex() -> None:
    for field in ("text", "regex"):
        with pytest.raises(ValidationError):
            QueryInput.model_validate({field: "a\n| take 1"})


def test_label_selector_translation() -> None:
    selector = parse_selector("app.kubernetes.io/name=checkout,tier in (web,api),track!=canary,!debug")
    query = logql.translate(_query(services=(), namespace=None, min_severity=None, selector=selector), "app", "ns", "l")
    assert query == ('{app_kubernetes_io_name="checkout", tier=~"web|api", track!="canary", debug=""}')
    with pytest.raises(ValueError, match="labels_column"):
        kql.translate(_query(selector=selector), COLUMNS, 10)
    with_labels = AzureSettings(workspace_id="w", labels_column="KubernetesMetadata.podLabels").columns()
    text = kql.translate(_query(selector=selector), with_labels, 10)
    assert 'tostring(KubernetesMetadata.podLabels["tier"]) in ("web", "api")' in text


def test_loki_needs_one_non_empty_matcher() -> None:
    assert logql.translate(_query(services=(), namespace=None, min_severity=None), "service_name", "ns", "l") == (
        '{service_name=~".+"}'
    )


def test_severity_covers_every_spelling() -> None:
    pattern = logql.severity_pattern("warn")
    for spelling in ("WARNING", "warn", "Error", "CRITICAL", "fatal", "panic"):
        assert re2.fullmatch(pattern, spelling) is not None
    for spelling in ("info", "debug", "notice"):
        assert re2.fullmatch(pattern, spelling) is None
