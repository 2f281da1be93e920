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
    assert settings.limits.breaker_failures == 3
    assert settings.environment_of("shop") == "prod"


def test_every_backend_example_in_the_readme_builds(tmp_path: Path) -> None:
    """Each backend block parses into its capability's own settings (no cluster or cloud is contacted)."""
    from opsgate.alerts.server import AlertsSettings
    from opsgate.logs.settings import LogsSettings
    from opsgate.metrics.settings import MetricsSettings
    from opsgate.rollback.server import RollbackSettings
    from opsgate.workloads.server import WorkloadsSettings

    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)[1:]
    assert len(blocks) == 10  # the backends, the [approvals] example and the [audit] example (State section)
    seen = []
    for n, block in enumerate(blocks):
        config = tmp_path / f"backend-{n}.toml"
        config.write_text(block)
        settings = load_settings(config)
        if settings.logs:
            seen.append(("logs", LogsSettings.model_validate(settings.logs).backend))
        if settings.metrics:
            seen.append(("metrics", MetricsSettings.model_validate(settings.metrics).backend))
        if settings.rollback:
            seen.append(("rollback", RollbackSettings.model_validate(settings.rollback).backend))
        if settings.workloads:
            seen.append(("workloads", str(WorkloadsSettings.model_validate(settings.workloads).kubeconfig)))
        if settings.alerts:
            alerts = AlertsSettings.model_validate(settings.alerts)
            seen.append(("alerts", alerts.alertmanager_url or alerts.backend))
    assert seen == [
        ("logs", "files"),
        ("logs", "kubernetes"),
        ("logs", "loki"),
        ("logs", "azure"),
        ("metrics", "prometheus"),
        ("metrics", "azure"),
        ("rollback", "auto"),
        ("workloads", "~/.kube/config"),
        ("alerts", "http://alertmanager.monitoring:9093"),
        ("alerts", "azure"),
    ]
