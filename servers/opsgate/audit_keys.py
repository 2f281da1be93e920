"""Ed25519 keys that sign audit checkpoints, and the append-only sinks checkpoints are exported to.

The signing key is kept apart from the audit database: by default it is generated into its own
directory beside the state directory (`<state_dir>-audit-key/ed25519.pem`, 0600 in a 0700 directory),
or read from `audit.signing_key`, which must lie outside the state directory. Each checkpoint names the
key it was signed with (`key_id`, the first 16 hex digits of the SHA-256 of the raw public key);
`audit.public_keys` lists the public keys `opsgate audit verify` accepts, so after a rotation the old
key's public half stays listed and old checkpoints keep verifying.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import syslog
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from opsgate.state.files import private_dir


class AuditKeyError(Exception):
    """A signing or public key cannot be read."""


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The key at `path`; generated (0600, directory 0700, public half beside it as `.pub.pem`) if missing."""
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError, OSError) as exc:
            raise AuditKeyError(f"audit signing key {path} cannot be read: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise AuditKeyError(f"audit signing key {path} is not an Ed25519 key")
        return key
    private_dir(path.parent)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # written whole to a private temporary name, then linked into place: processes starting together
    # agree on one key (the first link wins; the others read it)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        return load_or_create_signing_key(path)
    finally:
        tmp.unlink(missing_ok=True)
    pub = public_path(path)
    pub_tmp = pub.with_name(f".{pub.name}.{secrets.token_hex(4)}")
    pub_tmp.write_bytes(public_pem(key.public_key()))
    pub_tmp.replace(pub)
    return key


def public_path(signing_key: Path) -> Path:
    return signing_key.with_name(signing_key.stem + ".pub.pem")


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_keys(paths: Iterable[Path]) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (ValueError, OSError) as exc:
            raise AuditKeyError(f"audit public key {path} cannot be read: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise AuditKeyError(f"audit public key {path} is not an Ed25519 key")
        keys[key_id(key)] = key
    return keys


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_entry(key: Ed25519PrivateKey, entry: dict[str, Any]) -> dict[str, Any]:
    """`entry` with `key_id` and `sig` (over the canonical JSON of everything else) added."""
    body = {**entry, "key_id": key_id(key.public_key())}
    return {**body, "sig": base64.b64encode(key.sign(_canonical(body))).decode()}


def check_entry(entry: dict[str, Any], keys: dict[str, Ed25519PublicKey]) -> str | None:
    """None when `entry` is signed by one of `keys`, else what is wrong."""
    kid, sig = entry.get("key_id"), entry.get("sig")
    if not isinstance(kid, str) or not isinstance(sig, str):
        return "unsigned"
    key = keys.get(kid)
    if key is None:
        return f"signed by unknown key {kid} (list its public key in audit.public_keys)"
    body = {k: v for k, v in entry.items() if k != "sig"}
    try:
        key.verify(base64.b64decode(sig), _canonical(body))
    except (InvalidSignature, ValueError):
        return f"bad signature (key {kid})"
    return None


@dataclass
class JsonlSink:
    """An append-only JSON-lines file (O_APPEND, one write per line), ideally on another volume.

    Make it append-only for the server's user where the platform allows (`chattr +a`, a log shipper,
    a volume the agent cannot write); syslog can receive a copy of every entry.
    """

    path: Path
    syslog: bool = False
    _fd: int | None = field(default=None, repr=False)

    def write(self, entry: dict[str, Any], *, durable: bool) -> None:
        line = json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n"
        if self._fd is None:
            private_dir(self.path.parent)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(self._fd, line.encode())
        if durable:
            os.fsync(self._fd)
        if self.syslog:
            syslog.syslog(syslog.LOG_NOTICE, "opsgate-audit " + line.strip())

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out: list[dict[str, Any]] = []
        for line in self.path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                out.append({"type": "unreadable", "line": line[:200]})
                continue
            out.append(entry if isinstance(entry, dict) else {"type": "unreadable"})
        return out

    def last(self) -> dict[str, Any] | None:
        """The last complete entry, read from the end of the file."""
        if not self.path.exists():
            return None
        with self.path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 65536))
            chunk = fh.read()
        for line in reversed(chunk.splitlines()):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                return entry
        return None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
