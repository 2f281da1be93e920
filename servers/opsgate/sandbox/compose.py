"""Wiring the sandbox to the capabilities by configuration only (the CLI's composition step).

The capabilities never import the sandbox. When `opsgate serve` runs with no configuration at all, the
CLI starts the default scenario's world here and hands the capabilities settings that point their
ordinary backends at it: the Kubernetes API emulation for logs, rollback and workloads, the Prometheus-compatible
API for metrics. One world, one clock: every tool tells the same incident.
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from opsgate.sandbox.scenario import DEFAULT_SCENARIO


def default_world_sections(stack: ExitStack, scenario: str = DEFAULT_SCENARIO) -> dict[str, Any]:
    """Start the scenario's world (closed with `stack`) and return the config sections that read it."""
    from opsgate.sandbox.world import SandboxWorld

    world = stack.enter_context(SandboxWorld(scenario))
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="opsgate-world-")))
    kubeconfig = world.write_kubeconfig(folder / "kubeconfig")
    namespace = world.scenario.namespaces[0]
    return {
        "logs": {"backend": "kubernetes", "kubernetes": {"kubeconfig": str(kubeconfig), "namespace": namespace}},
        "metrics": {"backend": "prometheus", "prometheus": {"url": world.prometheus_url}},
        "rollback": {"kubeconfig": str(kubeconfig)},
        "workloads": {"kubeconfig": str(kubeconfig)},
        "alerts": {"alertmanager_url": world.prometheus_url},
    }
