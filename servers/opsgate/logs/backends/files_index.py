"""The block time index of a log file not in time order, kept on disk between runs.

An index belongs to one version of one file: its device and inode, size, modification time and first
bytes. It is used as it is only for that exact version, and extended (its blocks kept but for the
last, which may have ended mid-line) only for the same file grown by appending: same device and inode,
larger, the same first bytes. Any other file at that path (rewritten, truncated, rotated into place)
gets a new index. A stored index that cannot be read, or whose blocks do not tile the file from its
start, is ignored and rebuilt.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from opsgate.logs.backends.filescan import IndexedBlock
from opsgate.state.files import private_dir

HEAD_BYTES = 4096
"""A file whose first bytes are unchanged and that is larger than before only grew: its index is extended."""
FORMAT = 1
_NONE = -(1 << 63)
_FIELDS = 5


@dataclass(frozen=True)
class FileVersion:
    device: int
    inode: int
    size: int
    mtime_ns: int
    head: bytes

    @classmethod
    def of(cls, blob: BinaryIO, size: int) -> FileVersion:
        stat = os.fstat(blob.fileno())
        blob.seek(0)
        return cls(stat.st_dev, stat.st_ino, size, stat.st_mtime_ns, blob.read(HEAD_BYTES))

    def grew_from(self, older: FileVersion) -> bool:
        """The same file, only appended to since `older` was seen."""
        return (
            (self.device, self.inode) == (older.device, older.inode)
            and self.size > older.size
            and self.head.startswith(older.head)
        )

    def covers(self, wanted: FileVersion) -> bool:
        """An index of this version answers a query that saw `wanted`: the same version, or the same file
        grown since the query looked at it (its index covers the lines the query saw, and more)."""
        return self == wanted or self.grew_from(wanted)


@dataclass(frozen=True)
class TimeIndex:
    version: FileVersion
    block: int
    blocks: list[IndexedBlock]


class IndexStore:
    """Time indexes in one private directory, one file each, named by a digest of the log file's path."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _file(self, log_path: Path) -> Path:
        return self.directory / (hashlib.sha256(str(log_path).encode()).hexdigest()[:40] + ".idx")

    def load(self, log_path: Path, block: int) -> TimeIndex | None:
        try:
            data = self._file(log_path).read_bytes()
        except OSError:
            return None
        try:
            header_end = data.index(b"\n")
            header = json.loads(data[:header_end])
            if header.get("format") != FORMAT or header.get("path") != str(log_path) or header.get("block") != block:
                return None
            version = FileVersion(
                int(header["device"]),
                int(header["inode"]),
                int(header["size"]),
                int(header["mtime_ns"]),
                base64.b64decode(header["head"]),
            )
            values = array("q")
            values.frombytes(data[header_end + 1 :])
        except (ValueError, KeyError, TypeError):
            return None
        if len(values) % _FIELDS or not values:
            return None
        blocks = [
            IndexedBlock(*(None if v == _NONE else v for v in values[i : i + _FIELDS]))  # type: ignore[arg-type]
            for i in range(0, len(values), _FIELDS)
        ]
        if not _tiles(blocks, version.size):
            return None
        return TimeIndex(version, block, blocks)

    def save(self, log_path: Path, index: TimeIndex) -> None:
        """Write the index whole under a temporary name, then rename it into place (readers never see half)."""
        header = {
            "format": FORMAT,
            "path": str(log_path),
            "block": index.block,
            "device": index.version.device,
            "inode": index.version.inode,
            "size": index.version.size,
            "mtime_ns": index.version.mtime_ns,
            "head": base64.b64encode(index.version.head).decode(),
        }
        values = array("q")
        for b in index.blocks:
            values.extend(_NONE if v is None else v for v in (b.start, b.end, b.min_ns, b.max_ns, b.last_ns))
        target = self._file(log_path)
        try:
            private_dir(self.directory)
            fd, name = tempfile.mkstemp(dir=self.directory, prefix=target.name, suffix=".tmp")  # 0600, unique
            temporary = Path(name)
        except OSError:
            return  # an index not kept is rebuilt next run: not an error
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(json.dumps(header).encode() + b"\n")
                out.write(values.tobytes())
            temporary.replace(target)
        except OSError:
            temporary.unlink(missing_ok=True)

    def prune(self) -> int:
        """Remove stored indexes of log files that no longer exist (a log named by its date, gone for
        good); the number removed."""
        removed = 0
        try:
            stored = list(self.directory.glob("*.idx"))
        except OSError:
            return 0
        for path in stored:
            try:
                with path.open("rb") as handle:
                    log_path = json.loads(handle.readline()).get("path")
                if isinstance(log_path, str) and not Path(log_path).exists():
                    path.unlink()
                    removed += 1
            except (OSError, ValueError, AttributeError):
                continue
        return removed


def _tiles(blocks: list[IndexedBlock], size: int) -> bool:
    """Blocks follow each other from offset 0 without gaps, within the file."""
    position = 0
    for b in blocks:
        if b.start != position or b.end <= b.start:
            return False
        if (b.min_ns is None) != (b.max_ns is None) or (b.min_ns is not None and b.min_ns > b.max_ns):  # type: ignore[operator]
            return False
        position = b.end
    return position <= size
