"""The policy decision table (decision_cases.yaml), expanded into full policy inputs."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CASES_FILE = Path(__file__).with_name("decision_cases.yaml")
POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"


@dataclass(frozen=True)
class DecisionCase:
    name: str
    input: dict[str, Any]
    expect: dict[str, Any]


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_cases() -> list[DecisionCase]:
    table = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
    return [
        DecisionCase(
            name=case["name"],
            input=_merge(table["bases"][case["base"]], case.get("override") or {}),
            expect=case["expect"],
        )
        for case in table["cases"]
    ]
