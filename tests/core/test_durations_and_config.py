"""One duration syntax for every tool and setting, and a clean error for a typo in any config section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from opsgate.cli import main
from opsgate.durations import parse_duration
from opsgate.logs.contracts import PatternsInput
from opsgate.logs.contracts import QueryInput as LogsQuery
from opsgate.logs.settings import LogsSettings
from opsgate.metrics.contracts import AnomaliesInput
from opsgate.metrics.contracts import QueryInput as MetricsQuery


def _logs_query(since: str) -> BaseModel:
    return LogsQuery.model_validate({"since": since})


def _logs_patterns(since: str) -> BaseModel:
    return PatternsInput.model_validate({"since": since})


def _logs_setting(since: str) -> BaseModel:
    return LogsSettings.model_validate({"default_since": since})


def _metrics_query(since: str) -> BaseModel:
    return MetricsQuery.model_validate({"metric": "up", "since": since})


def _metrics_baseline(since: str) -> BaseModel:
    return AnomaliesInput.model_validate({"baseline": since})


USERS = [_logs_query, _logs_patterns, _logs_setting, _metrics_query, _metrics_baseline]


@pytest.mark.parametrize("use", USERS)
@pytest.mark.parametrize("text", ["1h30m", "90s", "2d", "1w", "5m"])
def test_every_duration_field_takes_the_same_syntax(use: Any, text: str) -> None:
    use(text)  # `since="1h30m"` used to be refused by logs_query and accepted by metrics_query


@pytest.mark.parametrize("use", USERS)
@pytest.mark.parametrize(
    ("text", "named"),
    [
        # a field's declared pattern or length may say it first; the words differ, the rule is the same
        ("15 minutes", "not a duration like|should match pattern"),
        ("0m", "must be positive"),
        ("99999999d", "maximum"),
        ("9" * 5000 + "s", "not a duration like|at most 16 characters"),
    ],
)
def test_every_duration_field_refuses_the_same_way(use: Any, text: str, named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        use(text)


def test_parse_duration_sums_its_parts() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("500ms") == 0.5 and parse_duration("1d1s") == 86_401


@pytest.mark.parametrize("section", ["runbooks", "logs", "metrics", "rollback"])
def test_a_typo_in_any_section_is_a_clean_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, section: str
) -> None:
    monkeypatch.setenv("OPSGATE_STATE_DIR", str(tmp_path / "state"))
    config = tmp_path / "opsgate.toml"
    config.write_text(f'[{section}]\ndirr = "typo"\n')
    assert main(["--config", str(config), "serve", section]) == 2
    err = capsys.readouterr().err
    assert f"invalid [{section}] configuration: {section}.dirr: unknown key" in err
    assert "Traceback" not in err
