"""A real PostgreSQL (Debian's packages) on loopback in a temporary directory, for state tests.

PostgreSQL refuses to run as root: as root, the cluster is created and run as the `postgres` user via
`runuser`. Tests skip with the reason when the binaries are absent, unless OPSGATE_REQUIRE_SYSTEM_DEPS
is set (CI sets it), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.loopback import free_port

REQUIRE_ENV = "OPSGATE_REQUIRE_SYSTEM_DEPS"
PG_BIN_DIRS = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15")]


def pg_bin() -> Path | None:
    for d in PG_BIN_DIRS:
        if (d / "initdb").exists() and (d / "pg_ctl").exists():
            return d
    return None


@dataclass
class PostgresServer:
    bin: Path
    root: Path
    port: int
    as_user: list[str]

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        import psycopg

        name = name or "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return self.url(name)

    def _ctl(self, *args: str) -> None:
        cmd = [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), *args]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    def start(self) -> None:
        self._ctl("-w", "-l", str(self.root / "log"), "start")


def start_postgres(*, fsync: bool = False) -> PostgresServer:
    """initdb + pg_ctl start on a free loopback port; the caller stops it."""
    binary = pg_bin()
    if binary is None:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's postgresql")
    root = Path(tempfile.mkdtemp(prefix="opsgate-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    subprocess.run(
        [*as_user, str(binary / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    settings = [
        f"port = {port}",
        "listen_addresses = '127.0.0.1'",
        f"unix_socket_directories = '{root}'",
        f"fsync = {'on' if fsync else 'off'}",
        "max_connections = 200",
        "shared_buffers = 32MB",
    ]
    conf = data / "postgresql.conf"
    subprocess.run(
        [*as_user, "sh", "-c", f"cat >> {conf}"], input="\n".join(settings) + "\n", text=True, check=True, timeout=30
    )
    server = PostgresServer(binary, root, port, as_user)
    server.start()
    return server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    if pg_bin() is None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"PostgreSQL binaries are missing and {REQUIRE_ENV} is set (run scripts/system-deps.sh)")
        pytest.skip("PostgreSQL server binaries are not installed (scripts/system-deps.sh installs them)")
    server = start_postgres()
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """A fresh, empty database on the session's server."""
    return postgres.create_database()
