"""Policy data checked against its published JSON Schema at load, at start-up and in `opsgate check`.

The probe (issue 9, "A freeze that silently stops freezing"): a freeze window written with plain dates
or without a zone used to load, `opsgate check` said ok, and the freeze never applied.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from opsgate.cli import main
from opsgate.policy.data_schema import SCHEMA_FILE_NAME, schema_text, validate_policy_data
from opsgate.policy.decision import PolicyError
from opsgate.policy.embedded import EmbeddedEngine, load_policy_data
from tests.policy.cases import POLICY_DIR

REPO = POLICY_DIR.parent
SCHEMA = REPO / SCHEMA_FILE_NAME
SHIPPED: dict[str, Any] = json.loads((POLICY_DIR / "data.json").read_text(encoding="utf-8"))
WINDOW = {"start": "2026-12-24T00:00:00Z", "end": "2026-12-27T00:00:00Z", "environments": ["prod"], "reason": "r"}


def with_config(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(SHIPPED)
    doc["opsgate_config"].update(changes)
    return doc


def schema_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_published_schema_is_generated_from_the_model() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == schema_text(), (
        f"{SCHEMA_FILE_NAME} is stale: python -m opsgate.policy.data_schema > {SCHEMA_FILE_NAME}"
    )
    jsonschema.Draft202012Validator.check_schema(json.loads(schema_text()))


def test_shipped_data_matches_the_published_schema_and_the_model() -> None:
    schema_validator().validate(SHIPPED)
    validate_policy_data(SHIPPED, "policies/data.json")
    # the optional keys the rules read are part of the schema too
    channels = {"production": ["ssh-signature"], "other": ["ssh-signature", "oidc", "confirmation"]}
    extended = with_config(approval_channels=channels, max_items_by_tool={"logs_query": 50})
    schema_validator().validate(extended)
    validate_policy_data(extended, "policies/data.json")


BAD: list[tuple[str, dict[str, Any], str]] = [
    (
        "plain dates",
        with_config(freeze_windows=[{**WINDOW, "start": "2026-11-01", "end": "2026-12-01"}]),
        r"opsgate_config\.freeze_windows\[0\]\.start: '2026-11-01' is not an RFC 3339 date-time with a zone",
    ),
    (
        "time without a zone",
        with_config(freeze_windows=[WINDOW, {**WINDOW, "end": "2026-12-28T00:00:00"}]),
        r"opsgate_config\.freeze_windows\[1\]\.end: '2026-12-28T00:00:00' is not an RFC 3339",
    ),
    (
        "space instead of T",
        with_config(freeze_windows=[{**WINDOW, "start": "2026-12-24 00:00:00Z"}]),
        r"freeze_windows\[0\]\.start",
    ),
    (
        "end before start",
        with_config(freeze_windows=[{**WINDOW, "end": "2026-12-01T00:00:00Z"}]),
        r"freeze_windows\[0\]: .*end 2026-12-01T00:00:00Z is not after start",
    ),
    (
        "environments as a string",
        with_config(freeze_windows=[{**WINDOW, "environments": "prod"}]),
        r"freeze_windows\[0\]\.environments",
    ),
    (
        "misspelt key",
        with_config(freeze_window=[WINDOW]),
        r"opsgate_config\.freeze_window: Extra inputs are not permitted",
    ),
    (
        "budget as a string",
        with_config(budgets={"default": {"target_1h": "10", "global_1m": 10}}),
        r"opsgate_config\.budgets\.default\.target_1h",
    ),
    ("no default budget", with_config(budgets={}), r"budgets needs a `default` entry"),
    ("unknown autonomy", with_config(default_autonomy="yolo"), r"opsgate_config\.default_autonomy"),
    ("no opsgate_config", {"other": {}}, r"opsgate_config: Field required"),
    (
        "unknown approval channel",
        with_config(approval_channels={"production": ["email"], "other": ["confirmation"]}),
        r"opsgate_config\.approval_channels\.production\[0\]",
    ),
]


@pytest.mark.parametrize(("doc", "message"), [(d, m) for _, d, m in BAD], ids=[n for n, _, _ in BAD])
def test_bad_data_is_refused_naming_the_entry(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        validate_policy_data(doc, "policies/data.json")
    if "is not after start" in message:
        return  # an order between two fields: the model checks it, JSON Schema cannot say it
    # the published schema refuses it too (it is the same contract, for editors and CI)
    assert list(schema_validator().iter_errors(doc)), "the published schema accepts what the model refuses"


@pytest.fixture
def bad_policy_dir(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, target)
    doc = with_config(freeze_windows=[{**WINDOW, "start": "2026-11-01", "end": "2026-12-31"}])
    (target / "data.json").write_text(json.dumps(doc), encoding="utf-8")
    return target


def test_engine_refuses_to_load_bad_data(bad_policy_dir: Path) -> None:
    with pytest.raises(PolicyError, match=r"data\.json .*freeze_windows\[0\]\.start"):
        EmbeddedEngine(bad_policy_dir)
    with pytest.raises(PolicyError, match=r"merged with \[policy\.data\].*budgets\.default\.global_1m"):
        EmbeddedEngine(POLICY_DIR, {"opsgate_config": {"budgets": {"default": {"global_1m": -1}}}})


def test_policy_folder_without_opsgate_rules_needs_no_data(tmp_path: Path) -> None:
    (tmp_path / "p.rego").write_text('package opsgate\n\nimport rego.v1\n\ndecision := {"allow": true}\n')
    assert load_policy_data(tmp_path) == {}
    assert EmbeddedEngine(tmp_path).decide_sync({}).allow is True


def _config(tmp_path: Path, policy_dir: Path, engine: str = "embedded") -> Path:
    config = tmp_path / "opsgate.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n[policy]\nengine = "{engine}"\ndir = "{policy_dir}"\n',
        encoding="utf-8",
    )
    return config


def test_check_fails_naming_the_entry(tmp_path: Path, bad_policy_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(_config(tmp_path, bad_policy_dir)), "check", "runbooks"]) == 1
    out = capsys.readouterr().out
    assert "FAIL: policy data" in out and "opsgate_config.freeze_windows[0].start: '2026-11-01'" in out
    # also with OPA as the engine: the local policy folder's data is still checked
    assert main(["--config", str(_config(tmp_path, bad_policy_dir, "opa")), "check", "runbooks"]) == 1
    assert "freeze_windows[0].start" in capsys.readouterr().out


def test_check_passes_on_good_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(_config(tmp_path, POLICY_DIR)), "check", "runbooks"]) == 0
    assert "policy data: ok (1 freeze window(s)" in capsys.readouterr().out


def test_server_start_with_bad_data_is_a_clear_error(
    tmp_path: Path, bad_policy_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(_config(tmp_path, bad_policy_dir)), "serve", "runbooks"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("opsgate: policy data ") and "freeze_windows[0].start" in err
    assert "Traceback" not in err


def test_every_data_key_the_rules_read_is_in_the_schema() -> None:
    from opsgate.policy.data_schema import OpsgateConfig

    sources = "\n".join(
        p.read_text(encoding="utf-8")
        for p in (POLICY_DIR / "opsgate").glob("*.rego")
        if not p.name.endswith("_test.rego")
    )
    read = set(re.findall(r"\bconfig\.(\w+)", sources)) | set(re.findall(r'object\.get\(config, "(\w+)"', sources))
    read |= set(re.findall(r"data\.opsgate_config\.(\w+)", sources))
    assert len(read) >= 8
    assert sorted(read - set(OpsgateConfig.model_fields)) == [], "add these keys to opsgate.policy.data_schema"
