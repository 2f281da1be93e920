"""Real `opsgate serve --transport http` replicas sharing one PostgreSQL, for multi-replica tests.

Each replica is a separate process with its own state directory and audit export; they share the
database (`state_url`), the audit signing key (as a Kubernetes Secret would give every pod), the API
key and the loopback Kubernetes API.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from opsgate.config import Settings
from opsgate.http_auth import hash_key
from tests.support.loopback import free_port, stop_process, wait_until_ready

REPO = Path(__file__).resolve().parents[2]
OPSGATE = [sys.executable, "-m", "opsgate"]
KEY = "og_replica_test_key_0123456789abcdef"


@dataclass
class Replica:
    name: str
    port: int
    config: Path
    state_dir: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def log(self) -> str:
        path = self.state_dir.parent / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


def _toml(value: Any) -> str:
    return json.dumps(str(value) if isinstance(value, Path) else value)


def _inline(value: Any) -> str:
    """A TOML inline table (or value) for `value`."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_inline(v)}" for k, v in value.items()) + " }"
    return _toml(value)


def write_config(
    root: Path,
    name: str,
    port: int,
    pg_url: str,
    kube_url: str,
    *,
    autonomy: str,
    limits: dict[str, Any],
    wait_s: float,
    budgets: dict[str, Any] | None = None,
    approvers: Path | None = None,
) -> Path:
    lines = [
        f"state_dir = {_toml(root / name)}",
        f"state_url = {_toml(pg_url)}",
        f"autonomy = {_toml(autonomy)}",
        "[policy]",
        'engine = "embedded"',
        f"dir = {_toml(REPO / 'policies')}",
        *([f"data = {{ opsgate_config = {{ budgets = {_inline(budgets)} }} }}"] if budgets else []),
        "[audit]",
        f"signing_key = {_toml(root / 'secret' / 'ed25519.pem')}",
        "[limits]",
        *(f"{k} = {_toml(v)}" for k, v in limits.items()),
        "[http]",
        'host = "127.0.0.1"',
        f"port = {port}",
        "require_auth = true",
        "[[http.api_keys]]",
        f"sha256 = {_toml(hash_key(KEY))}",
        'subject = "agent@replicas"',
        'roles = ["responder"]',
        *(["[approvals]", f"approvers_file = {_toml(approvers)}"] if approvers else []),
        "[runbooks]",
        f"dir = {_toml(REPO / 'examples' / 'runbooks')}",
        "[rollback]",
        f"api_url = {_toml(kube_url)}",
        f"wait_s = {wait_s}",
        "poll_s = 0.05",
        "request_timeout_s = 5.0",
    ]
    path = root / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def settings_of(replica: Replica) -> Settings:
    from opsgate.config import load_settings

    return load_settings(replica.config)


@contextmanager
def replicas(
    root: Path,
    pg_url: str,
    kube_url: str,
    *,
    n: int = 3,
    autonomy: str = "autonomous",
    limits: dict[str, Any] | None = None,
    wait_s: float = 5.0,
    budgets: dict[str, Any] | None = None,
    approvers: Path | None = None,
) -> Iterator[list[Replica]]:
    limits = {"per_tool_per_minute": 100000, "global_per_minute": 100000, **(limits or {})}
    started: list[Replica] = []
    try:
        for i in range(n):
            name = f"replica-{'abc'[i]}"
            port = free_port()
            config = write_config(
                root,
                name,
                port,
                pg_url,
                kube_url,
                autonomy=autonomy,
                limits=limits,
                wait_s=wait_s,
                budgets=budgets,
                approvers=approvers,
            )
            proc = subprocess.Popen(
                [*OPSGATE, "--config", str(config), "serve", "rollback", "runbooks", "--transport", "http"],
                env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "servers"), str(REPO)])},
                stdout=subprocess.DEVNULL,
                stderr=(root / f"{name}.log").open("wb"),
            )
            started.append(Replica(name, port, config, root / name, proc))
        deadline = time.monotonic() + 60
        for replica in started:
            url = f"http://127.0.0.1:{replica.port}/healthz"
            wait_until_ready(replica.proc, url, max(deadline - time.monotonic(), 0), replica.name, replica.log)
        yield started
    finally:
        for replica in started:
            stop_process(replica.proc)


@asynccontextmanager
async def client(replica: Replica) -> AsyncIterator[Client]:
    async with (
        # idle connections are dropped before uvicorn closes them (its keep-alive is 5 s), so a request
        # never goes out on a connection the server is closing
        httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {KEY}"}, timeout=60, limits=httpx2.Limits(keepalive_expiry=1.0)
        ) as http,
        Client(streamable_http_client(replica.url, http_client=http)) as mcp,
    ):
        yield mcp
