#!/usr/bin/env bash
# Test-only Python packages that cannot be declared in pyproject.toml extras.
set -euo pipefail
PY="${1:-.venv/bin/python}"
# OPA's own Go engine, in process, to check that the embedded engine agrees with real OPA. It declares
# Python >= 3.14 but works on 3.11; pip only honours --ignore-requires-python on the command line.
"$PY" -m pip install --quiet --ignore-requires-python "opa-golib-python-bindings==0.4.4"
# Node >= 22 and the pinned npm packages for the MCP conformance suite and the TypeScript SDK client.
VIRTUAL_ENV="$(cd "$(dirname "$PY")/.." && pwd)" bash "$(dirname "$0")/conformance-deps.sh"
