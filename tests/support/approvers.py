"""Approvers for tests: throwaway SSH keys, an approvers file, and the human step of signing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from opsgate import cli


@dataclass
class ApproverKey:
    identity: str
    roles: list[str]
    key: Path
    public: str
    aliases: list[str] = field(default_factory=list)


def make_key(folder: Path, name: str) -> tuple[Path, str]:
    """An unencrypted ed25519 key pair in OpenSSH format (private file 0600, like ssh-keygen makes)."""
    folder.mkdir(parents=True, exist_ok=True)
    private = ed25519.Ed25519PrivateKey.generate()
    path = folder / f"id_{name}"
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    line = f"{public.decode()} {name}@test"
    (folder / f"id_{name}.pub").write_text(line + "\n")
    return path, line


def approver(folder: Path, identity: str, roles: list[str], aliases: list[str] | None = None) -> ApproverKey:
    key, public = make_key(folder, identity.split("@")[0].replace(":", "_"))
    return ApproverKey(identity, roles, key, public, aliases or [])


def write_approvers(path: Path, approvers: list[ApproverKey]) -> Path:
    document = {
        "version": 1,
        "approvers": [
            {"identity": a.identity, "roles": a.roles, "aliases": a.aliases, "ssh_keys": [a.public]} for a in approvers
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def cli_approve(state_dir: Path, approvers_file: Path, approval_id: str, key: Path, *extra: str) -> int:
    """`opsgate approvals approve ID --key KEY` as the human runs it (signing in process: no prompt)."""
    argv = ["approvals", "approve", approval_id, "--key", str(key), "--in-process"]
    argv += ["--state-dir", str(state_dir), "--approvers", str(approvers_file), *extra]
    return cli.main(argv)
