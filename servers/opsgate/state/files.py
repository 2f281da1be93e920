"""Private files for state: the state directory is 0700 and every database in it 0600.

An agent sharing the machine as another user must not read approvals, audit records or limit
counts; sqlite creates its -wal/-shm/-journal files with the database file's mode, so creating the
database 0600 first is enough for those.
"""

from __future__ import annotations

import os
from pathlib import Path

_SIDECARS = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) and make it 0700 when this user owns it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(path, 0o700)
    return path


def private_file(path: Path) -> Path:
    """Create `path` 0600 if it is missing (its directory 0700) and tighten it and its sqlite sidecars."""
    private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    _tighten(path, 0o600)
    for suffix in _SIDECARS:
        sidecar = path.with_name(path.name + suffix)
        if sidecar.exists():
            _tighten(sidecar, 0o600)
    return path


def _tighten(path: Path, mode: int) -> None:
    try:
        st = path.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o777 != mode:
            path.chmod(mode)
    except OSError:
        pass
