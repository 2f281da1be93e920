"""SSH signatures (the SSHSIG format of `ssh-keygen -Y sign`, which Git's `allowed_signers` uses).

Verification is done here with `cryptography`, never by shelling out: the armored blob is parsed,
its namespace and hash algorithm checked, and the signature verified over the SSHSIG signed-data
structure with the public key the blob carries; the caller then decides whether that key belongs to
anyone (see `opsgate.approvers`). Supported keys: ssh-ed25519, ecdsa-sha2-nistp256/384/521,
rsa (rsa-sha2-256/512 signatures only) and the FIDO2 security-key types sk-ssh-ed25519@openssh.com
and sk-ecdsa-sha2-nistp256@openssh.com (whose signatures must carry the user-presence flag: a touch).

Signing: `sign_with_ssh_keygen` runs `ssh-keygen -Y sign` (a key file, a key in ssh-agent, a FIDO2
key); `sign_with_key` signs in process with an unencrypted private key (tests, the demo's throwaway
key, machines without ssh-keygen).

Format: https://github.com/openssh/openssh-portable/blob/master/PROTOCOL.sshsig
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

MAGIC = b"SSHSIG"
VERSION = 1
BEGIN = "-----BEGIN SSH SIGNATURE-----"
END = "-----END SSH SIGNATURE-----"
HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
SK_USER_PRESENT = 0x01
_CURVES: dict[str, tuple[ec.EllipticCurve, hashes.HashAlgorithm]] = {
    "nistp256": (ec.SECP256R1(), hashes.SHA256()),
    "nistp384": (ec.SECP384R1(), hashes.SHA384()),
    "nistp521": (ec.SECP521R1(), hashes.SHA512()),
}


class SshSigError(Exception):
    """A signature that does not parse or does not verify; the message says which check failed."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise SshSigError("truncated SSH signature data")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.uint32())

    def mpint(self) -> int:
        return int.from_bytes(self.string(), "big", signed=True)

    def done(self) -> bool:
        return self.pos == len(self.data)


def _string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def _mpint(value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 8) // 8, "big") if value else b""
    return _string(raw)


@dataclass(frozen=True)
class SshSignature:
    """A parsed SSHSIG blob."""

    public_key: bytes  # the SSH wire blob of the signer's public key
    namespace: str
    hash_algorithm: str
    signature: bytes  # the SSH signature blob

    @property
    def key_type(self) -> str:
        return _Reader(self.public_key).string().decode(errors="replace")

    @property
    def fingerprint(self) -> str:
        """`SHA256:...` as `ssh-keygen -l` prints it."""
        return fingerprint(self.public_key)


def fingerprint(public_key_blob: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(public_key_blob).digest()).decode().rstrip("=")


def public_key_blob(line: str) -> bytes:
    """The wire blob of an OpenSSH public key line (`ssh-ed25519 AAAA... comment`)."""
    parts = line.split()
    if len(parts) < 2:
        raise SshSigError(f"not an OpenSSH public key: {line[:40]!r}")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise SshSigError(f"public key {parts[0]} is not valid base64") from None
    declared = _Reader(blob).string().decode(errors="replace")
    if declared != parts[0]:
        raise SshSigError(f"public key says {parts[0]} but its blob is a {declared} key")
    return blob


def armor(blob: bytes) -> str:
    body = base64.b64encode(blob).decode()
    lines = [body[i : i + 70] for i in range(0, len(body), 70)]
    return "\n".join([BEGIN, *lines, END]) + "\n"


def parse(armored: str) -> SshSignature:
    text = armored.strip()
    if not text.startswith(BEGIN) or not text.endswith(END):
        raise SshSigError("not an armored SSH signature (-----BEGIN SSH SIGNATURE-----)")
    body = "".join(text[len(BEGIN) : -len(END)].split())
    try:
        blob = base64.b64decode(body, validate=True)
    except ValueError:
        raise SshSigError("the SSH signature is not valid base64") from None
    r = _Reader(blob)
    if r.take(6) != MAGIC:
        raise SshSigError("the SSH signature has no SSHSIG preamble")
    version = r.uint32()
    if version != VERSION:
        raise SshSigError(f"SSH signature version {version} is not supported")
    public_key = r.string()
    namespace = r.string().decode(errors="replace")
    r.string()  # reserved
    hash_algorithm = r.string().decode(errors="replace")
    signature = r.string()
    if not r.done():
        raise SshSigError("trailing data after the SSH signature")
    return SshSignature(public_key, namespace, hash_algorithm, signature)


def signed_data(namespace: str, hash_algorithm: str, message: bytes) -> bytes:
    """The structure an SSHSIG signature covers."""
    digest = HASHES[hash_algorithm](message).digest()
    return MAGIC + _string(namespace.encode()) + _string(b"") + _string(hash_algorithm.encode()) + _string(digest)


def verify(armored: str, message: bytes, namespace: str) -> SshSignature:
    """Parse and verify; return the signature (its `public_key` is the signer). Raises SshSigError."""
    sig = parse(armored)
    if sig.namespace != namespace:
        raise SshSigError(f"signature namespace is {sig.namespace!r}, expected {namespace!r}")
    if sig.hash_algorithm not in HASHES:
        raise SshSigError(f"signature hash algorithm {sig.hash_algorithm!r} is not sha256 or sha512")
    data = signed_data(namespace, sig.hash_algorithm, message)
    try:
        _verify_raw(sig.public_key, sig.signature, data)
    except InvalidSignature:
        raise SshSigError("the signature does not verify for this statement and key") from None
    return sig


def _verify_raw(key_blob: bytes, sig_blob: bytes, data: bytes) -> None:
    key = _Reader(key_blob)
    key_type = key.string().decode(errors="replace")
    sig = _Reader(sig_blob)
    sig_type = sig.string().decode(errors="replace")
    raw = sig.string()
    if key_type == "ssh-ed25519":
        _expect(sig_type == "ssh-ed25519", f"signature type {sig_type} for an ed25519 key")
        ed25519.Ed25519PublicKey.from_public_bytes(key.string()).verify(raw, data)
    elif key_type.startswith("ecdsa-sha2-"):
        curve, algorithm = _curve(key.string().decode(errors="replace"))
        _expect(sig_type == key_type, f"signature type {sig_type} for a {key_type} key")
        point = ec.EllipticCurvePublicKey.from_encoded_point(curve, key.string())
        point.verify(_der(raw), data, ec.ECDSA(algorithm))
    elif key_type == "ssh-rsa":
        _expect(sig_type in ("rsa-sha2-256", "rsa-sha2-512"), f"RSA signature type {sig_type} (SHA-1) is refused")
        e, n = key.mpint(), key.mpint()
        _expect(n.bit_length() >= 2048, f"RSA key of {n.bit_length()} bits is too short")
        digest: hashes.HashAlgorithm = hashes.SHA256() if sig_type == "rsa-sha2-256" else hashes.SHA512()
        rsa.RSAPublicNumbers(e, n).public_key().verify(raw, data, padding.PKCS1v15(), digest)
    elif key_type in ("sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com"):
        _expect(sig_type == key_type, f"signature type {sig_type} for a {key_type} key")
        flags = sig.take(1)[0]
        counter = sig.uint32()
        if not flags & SK_USER_PRESENT:
            raise SshSigError("the security key signed without a touch (user-presence flag not set)")
        if key_type == "sk-ssh-ed25519@openssh.com":
            public = key.string()
            application = key.string()
            signed = _sk_data(application, flags, counter, data)
            ed25519.Ed25519PublicKey.from_public_bytes(public).verify(raw, signed)
        else:
            curve, algorithm = _curve(key.string().decode(errors="replace"))
            point = ec.EllipticCurvePublicKey.from_encoded_point(curve, key.string())
            application = key.string()
            signed = _sk_data(application, flags, counter, data)
            point.verify(_der(raw), signed, ec.ECDSA(algorithm))
    else:
        raise SshSigError(f"key type {key_type} is not supported")


def _sk_data(application: bytes, flags: int, counter: int, data: bytes) -> bytes:
    return (
        hashlib.sha256(application).digest()
        + bytes([flags])
        + struct.pack(">I", counter)
        + hashlib.sha256(data).digest()
    )


def _curve(name: str) -> tuple[ec.EllipticCurve, hashes.HashAlgorithm]:
    if name not in _CURVES:
        raise SshSigError(f"curve {name} is not supported")
    return _CURVES[name]


def _der(raw: bytes) -> bytes:
    r = _Reader(raw)
    return encode_dss_signature(r.mpint(), r.mpint())


def _expect(condition: bool, problem: str) -> None:
    if not condition:
        raise SshSigError(problem)


# -- signing ----------------------------------------------------------------------------------


def sign_with_key(
    private_key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey, message: bytes, namespace: str
) -> str:
    """An armored SSHSIG of `message` with an in-memory key (sha512, as ssh-keygen does)."""
    data = signed_data(namespace, "sha512", message)
    public = private_key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    key_blob = public_key_blob(public.decode())
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        sig_blob = _string(b"ssh-ed25519") + _string(private_key.sign(data))
    else:
        name = {"secp256r1": "nistp256", "secp384r1": "nistp384", "secp521r1": "nistp521"}[private_key.curve.name]
        algorithm = _CURVES[name][1]
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(algorithm)))
        sig_blob = _string(f"ecdsa-sha2-{name}".encode()) + _string(_mpint(r) + _mpint(s))
    blob = MAGIC + struct.pack(">I", VERSION) + _string(key_blob) + _string(namespace.encode())
    blob += _string(b"") + _string(b"sha512") + _string(sig_blob)
    return armor(blob)


def load_private_key(path: Path) -> ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey:
    """An unencrypted OpenSSH ed25519 or ECDSA private key file (encrypted ones: use ssh-keygen)."""
    key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise SshSigError(f"{path}: only ed25519 and ECDSA keys can be used in process; use ssh-keygen")
    return key


def sign_with_ssh_keygen(key: Path, message: bytes, namespace: str, *, agent: bool = False) -> str:
    """Sign with `ssh-keygen -Y sign` (prompts for a passphrase or a touch as ssh-keygen does).

    `key` is a private key file, or with `agent=True` the public key of a key held in ssh-agent.
    """
    binary = shutil.which("ssh-keygen")
    if binary is None:
        raise SshSigError("ssh-keygen is not installed; pass a signature made elsewhere with --signature")
    with tempfile.TemporaryDirectory(prefix="opsgate-sign-") as tmp:
        statement = Path(tmp) / "statement"
        statement.write_bytes(message)
        argv = [binary, "-Y", "sign", "-n", namespace, "-f", str(key)]
        if agent:
            argv.append("-U")
        done = subprocess.run([*argv, str(statement)], stdin=None, capture_output=False, check=False, timeout=300)
        if done.returncode != 0:
            raise SshSigError(f"ssh-keygen -Y sign failed (exit {done.returncode})")
        return (Path(tmp) / "statement.sig").read_text()
