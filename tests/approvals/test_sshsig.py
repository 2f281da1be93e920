"""SSHSIG verification against real OpenSSH: ssh-keygen signs, opsgate verifies (and the reverse), a key in
ssh-agent signs through the CLI, and FIDO2 (-sk) signatures need the user-presence flag."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from opsgate import sshsig
from opsgate.approvals_cli import check_lines
from opsgate.approvers import NAMESPACE, Approvers
from opsgate.config import ApprovalSettings, Settings
from tests.support.approvers import approver, write_approvers

needs_ssh_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="OpenSSH client not installed")
MESSAGE = b"opsgate approval statement v1\nid: apr_0123\n"


@needs_ssh_keygen
@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa", "rsa"])
def test_ssh_keygen_signatures_verify_and_ours_verify_in_ssh_keygen(tmp_path: Path, key_type: str) -> None:
    key = tmp_path / f"id_{key_type}"
    subprocess.run(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", str(key)], check=True)
    public = key.with_suffix(".pub").read_text()
    armored = sshsig.sign_with_ssh_keygen(key, MESSAGE, NAMESPACE)
    verified = sshsig.verify(armored, MESSAGE, NAMESPACE)
    assert verified.public_key == sshsig.public_key_blob(public)
    with pytest.raises(sshsig.SshSigError, match="does not verify"):
        sshsig.verify(armored, MESSAGE + b"x", NAMESPACE)
    with pytest.raises(sshsig.SshSigError, match="namespace"):
        sshsig.verify(armored, MESSAGE, "git")
    if key_type == "rsa":
        return
    ours = tmp_path / "ours.sig"
    ours.write_text(sshsig.sign_with_key(sshsig.load_private_key(key), MESSAGE, NAMESPACE))
    (tmp_path / "allowed").write_text(f"alice {public}")
    done = subprocess.run(
        [
            "ssh-keygen",
            "-Y",
            "verify",
            "-f",
            str(tmp_path / "allowed"),
            "-I",
            "alice",
            "-n",
            NAMESPACE,
            "-s",
            str(ours),
        ],
        input=MESSAGE,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A private ssh-agent started for this test (stopped by its own pid)."""
    if shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None:
        pytest.skip("ssh-agent not installed")
    socket = tmp_path / "agent.sock"
    out = subprocess.run(["ssh-agent", "-s", "-a", str(socket)], capture_output=True, text=True, check=True).stdout
    pid = int(out.split("SSH_AGENT_PID=")[1].split(";")[0])
    env = {**os.environ, "SSH_AUTH_SOCK": str(socket)}
    try:
        yield env
    finally:
        os.kill(pid, signal.SIGTERM)


@needs_ssh_keygen
def test_a_key_held_in_ssh_agent_signs(tmp_path: Path, agent: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    alice = approver(tmp_path / "humans", "alice@example.com", ["sre"])
    subprocess.run(["ssh-add", "-q", str(alice.key)], env=agent, check=True, capture_output=True)
    pub_only = tmp_path / "pub" / "alice.pub"
    pub_only.parent.mkdir()
    pub_only.write_text(alice.public + "\n")
    for name, value in agent.items():
        monkeypatch.setenv(name, value)
    armored = sshsig.sign_with_ssh_keygen(pub_only, MESSAGE, NAMESPACE, agent=True)
    approvers = Approvers.load(write_approvers(tmp_path / "approvers.yaml", [alice]))
    assert approvers.verify(armored, MESSAGE).approver.identity == "alice@example.com"


def _sk_ed25519(flags: int) -> tuple[str, str]:
    """An sk-ssh-ed25519@openssh.com public key line and an SSHSIG made as a FIDO2 key makes it."""

    def string(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    private = ed25519.Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes_raw()
    key_type = b"sk-ssh-ed25519@openssh.com"
    application = b"ssh:"
    blob = string(key_type) + string(raw) + string(application)
    data = sshsig.signed_data(NAMESPACE, "sha512", MESSAGE)
    counter = 7

    signed = hashlib.sha256(application).digest() + bytes([flags]) + struct.pack(">I", counter)
    signed += hashlib.sha256(data).digest()
    signature = string(key_type) + string(private.sign(signed)) + bytes([flags]) + struct.pack(">I", counter)
    sshsig_blob = b"SSHSIG" + struct.pack(">I", 1) + string(blob) + string(NAMESPACE.encode()) + string(b"")
    sshsig_blob += string(b"sha512") + string(signature)
    line = f"sk-ssh-ed25519@openssh.com {base64.b64encode(blob).decode()} alice-yubikey"
    return line, sshsig.armor(sshsig_blob)


def test_security_key_signatures_need_a_touch() -> None:
    line, touched = _sk_ed25519(flags=0x01)
    assert sshsig.verify(touched, MESSAGE, NAMESPACE).public_key == sshsig.public_key_blob(line)
    _, untouched = _sk_ed25519(flags=0x00)
    with pytest.raises(sshsig.SshSigError, match="without a touch"):
        sshsig.verify(untouched, MESSAGE, NAMESPACE)


def test_check_warns_when_the_server_user_can_read_an_approver_key(tmp_path: Path) -> None:
    alice = approver(tmp_path / "state" / "keys", "alice@example.com", ["sre"])
    approvers = write_approvers(tmp_path / "approvers.yaml", [alice])
    settings = Settings(state_dir=tmp_path / "state", approvals=ApprovalSettings(approvers_file=approvers))
    lines, ok = check_lines(settings)
    assert ok and lines[0].startswith("approvers: 1 in ")
    assert any("WARNING" in line and str(alice.key) in line and "alice@example.com" in line for line in lines)
    alice.key.unlink()
    lines, ok = check_lines(settings)
    assert ok and not any("WARNING" in line for line in lines)
