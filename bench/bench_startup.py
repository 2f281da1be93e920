"""Start-up: how long until a stdio server answers `initialize`, opsgate beside a bare MCP SDK server.

    python bench/bench_startup.py [--runs 7] [--capabilities all] [--config opsgate.toml]

Each run starts a fresh process, writes one `initialize` request to its stdin and times the answer on
its stdout (process start, imports, building the server, the handshake). The two servers alternate,
so both see the same machine load; the medians and their ratio are printed:
- `bare SDK`: the official `mcp` SDK's `MCPServer` with one tool, nothing else;
- `opsgate serve all`: opsgate with every capability, its policy engine, audit trail and approvals,
  over the same transport and with no config (the embedded sandbox).
Clients time out their probes (Claude Code's version probe gives up after about 2.9 s), so this is
the figure a user feels on every session start.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BARE_SERVER = """
from mcp.server.mcpserver import MCPServer

server = MCPServer(name="bare")


@server.tool()
def echo(text: str = "ping") -> str:
    return text


server.run("stdio")
"""

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "bench-startup", "version": "0"},
    },
}


def time_to_initialize(command: list[str], env: dict[str, str], timeout_s: float = 60.0) -> float:
    """Seconds from process start to the `initialize` answer on stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write((json.dumps(INITIALIZE) + "\n").encode())
        proc.stdin.flush()
        while True:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{command} exited without answering initialize")
            message = json.loads(line)
            if message.get("id") == 1:
                elapsed = time.perf_counter() - started
                if "result" not in message:
                    raise RuntimeError(f"{command} answered initialize with {message}")
                return elapsed
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"{command} did not answer initialize within {timeout_s}s")
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--capabilities", default="all", help="what `opsgate serve` serves")
    parser.add_argument("--config", default=None, help="serve with this config file (default: none, the sandbox)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="opsgate-bench-startup-") as tmp:
        bare = Path(tmp) / "bare_server.py"
        bare.write_text(BARE_SERVER)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO / "servers"), os.environ.get("PYTHONPATH", "")]),
            "OPSGATE_STATE_DIR": str(Path(tmp) / "state"),
            "OPSGATE_CONFIG": "",
        }
        env.pop("OPSGATE_CONFIG")
        if args.config:
            env["OPSGATE_CONFIG"] = str(Path(args.config).resolve())
        commands = {
            "bare SDK (one tool)": [sys.executable, str(bare)],
            f"opsgate serve {args.capabilities}": [sys.executable, "-m", "opsgate", "serve", args.capabilities],
        }
        for command in commands.values():  # warm the OS file cache and bytecode caches once
            time_to_initialize(command, env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                samples[name].append(time_to_initialize(command, env))

    print(f"time to answer `initialize` over stdio, {args.runs} runs each, alternating ({os.cpu_count()} cores):")
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, values in samples.items():
        print(f"  {name:28} median {medians[name]:6.3f}s   min {min(values):6.3f}s   max {max(values):6.3f}s")
    bare_name, opsgate_name = list(commands)
    print(f"  ratio opsgate / bare SDK: {medians[opsgate_name] / medians[bare_name]:.2f}x (goal: at most 1.30x)")


if __name__ == "__main__":
    main()
