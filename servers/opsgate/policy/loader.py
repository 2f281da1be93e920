"""Build the configured policy engine by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsgate.policy.decision import PolicyError
from opsgate.policy.embedded import EmbeddedEngine
from opsgate.policy.engine import PolicyEngine
from opsgate.policy.opa import OpaServerEngine

ENGINE_KINDS = ("embedded", "opa")


def make_engine(kind: str, **settings: Any) -> PolicyEngine:
    """`embedded` takes policy_dir (and data); `opa` takes url, policy_path, timeout_s, retries, token,
    revision. An unknown kind or setting raises PolicyError naming it."""
    try:
        if kind == "embedded":
            if "policy_dir" not in settings:
                raise PolicyError("the embedded policy engine needs policy_dir")
            settings["policy_dir"] = Path(settings["policy_dir"])
            return EmbeddedEngine(**settings)
        if kind == "opa":
            return OpaServerEngine(**settings)
    except TypeError as exc:
        raise PolicyError(f"bad setting for the {kind} policy engine: {exc}") from None
    raise PolicyError(f"unknown policy engine {kind!r}; choose one of {', '.join(ENGINE_KINDS)}")
