#!/usr/bin/env bash
# Put `opsgate` on PATH: a symlink in BINDIR (default ~/.local/bin) to this clone's .venv/bin/opsgate.
# Usage: scripts/install-bin.sh [OPSGATE_BINARY] [BINDIR]   (`make install` runs it)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
target="$(realpath -s "${1:-$here/.venv/bin/opsgate}")"
bindir="${2:-$HOME/.local/bin}"
if [ ! -x "$target" ]; then
    echo "install-bin: $target is not an executable (run \`make setup\` first)" >&2
    exit 1
fi
mkdir -p "$bindir"
bindir="$(cd "$bindir" && pwd)"
ln -sfn "$target" "$bindir/opsgate"
echo "installed: $bindir/opsgate -> $target"
case ":$PATH:" in
    *":$bindir:"*) ;;
    *) echo "note: $bindir is not on your PATH; add it (e.g. export PATH=\"$bindir:\$PATH\") or use $target" ;;
esac
