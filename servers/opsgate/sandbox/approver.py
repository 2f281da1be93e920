"""A throwaway approver for sandbox runs (`opsgate demo`, `opsgate sandbox`, benchmarks).

It makes an ed25519 key in `<state_dir>/human/` and an approvers file naming it
(`<state_dir>/approvers.yaml`, which the sandbox config points to). Only for the sandbox: a key file
the server's user can read is not an approver's key in real use (an agent running as that user could
sign with it too); real approvers sign with their own key, a FIDO2 key or a confirming ssh-agent.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

APPROVERS_FILE = "approvers.yaml"


def write_sandbox_approver(state_dir: Path, identity: str = "alice", role: str = "sre") -> Path:
    """Write the key pair and the approvers file; return the private key's path."""
    human = state_dir / "human"
    human.mkdir(parents=True, exist_ok=True)
    key = human / "id_ed25519"
    private = ed25519.Ed25519PrivateKey.generate()
    encoded = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    key.unlink(missing_ok=True)
    key.touch(mode=0o600)
    key.write_bytes(encoded)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    line = f"{public.decode()} {identity}@opsgate-sandbox"
    (human / "id_ed25519.pub").write_text(line + "\n")
    (state_dir / APPROVERS_FILE).write_text(
        "# Written by the opsgate sandbox: a throwaway approver for this run only.\n"
        "version: 1\n"
        "approvers:\n"
        f"  - identity: {identity}\n"
        f"    roles: [{role}]\n"
        "    ssh_keys:\n"
        f"      - {line}\n"
    )
    return key
