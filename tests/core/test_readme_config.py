"""The configuration example in the README loads as it is written."""

from __future__ import annotations

import re
from pathlib import Path

from opsgate.config import load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_toml_example_is_a_valid_config(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README shows a TOML configuration"
    config = tmp_path / "opsgate.toml"
    config.write_text(blocks[0])
    settings = load_settings(config)
    assert settings.policy.engine == "embedded"
    assert settings.http.api_keys[0].subject == "agent@foundry"
    assert settings.limits.per_target_write_interval_s == 600
    assert settings.environment_of("shop") == "prod"
