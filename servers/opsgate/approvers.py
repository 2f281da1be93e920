"""Who may approve: the approvers file, reviewed in Git beside the policies (`policies/approvers.yaml`).

```yaml
version: 1
approvers:
  - identity: alice@example.com          # who the approval is recorded as
    roles: [sre]                         # what the policy checks (data.opsgate_config.approver_roles)
    aliases: ["local:alice"]             # caller subjects that are this same person (self-approval)
    ssh_keys:                            # OpenSSH public keys, as in Git's allowed_signers
      - sk-ssh-ed25519@openssh.com AAAA... alice-yubikey
```

A CLI approval is an SSH signature (SSHSIG, namespace `opsgate-approval`) over the approval's
statement; it counts only when the signing key is listed here, and the identity and roles are the
ones this file gives that key, never what the person typed. Identities are compared after
normalisation (NFKC, surrounding space stripped, case folded); an identity in this file that holds a
control or zero-width character is refused when the file loads, and such characters are ignored in a
caller's subject when judging self-approval, so `alice\u200b` or `alice ` is still `alice`.

The file is configuration with the same standing as the policies: whoever can edit it can name
approvers, so keep it where the agent cannot write (a reviewed checkout the server's user only reads,
or a policy bundle).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from opsgate import sshsig

NAMESPACE = "opsgate-approval"
# Unicode categories never allowed in an identity: controls, format (zero-width, bidi) and separators
# other than the plain space, plus unassigned and private-use code points.
_FORBIDDEN = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


class ApproversError(Exception):
    """The approvers file cannot be used, or a signature names nobody in it."""


def has_forbidden_characters(value: str) -> bool:
    return any(unicodedata.category(ch) in _FORBIDDEN for ch in value)


def normalize_identity(value: str) -> str:
    """The form identities are compared in: NFKC, invisible characters removed, stripped, case folded."""
    text = unicodedata.normalize("NFKC", value)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in _FORBIDDEN)
    return " ".join(text.split()).casefold()


def same_person(subject: str, names: tuple[str, ...]) -> bool:
    """True when `subject` is one of `names` (an identity and its aliases), compared normalised."""
    wanted = normalize_identity(subject)
    return any(normalize_identity(name) == wanted for name in names)


def check_identity(value: Any, where: str) -> str:
    """An identity as written in configuration: a non-empty string with no invisible characters."""
    if not isinstance(value, str) or not value.strip():
        raise ApproversError(f"{where}: identity must be a non-empty string")
    if has_forbidden_characters(value):
        raise ApproversError(f"{where}: identity {value!r} contains a control or zero-width character")
    if value != value.strip():
        raise ApproversError(f"{where}: identity {value!r} has surrounding spaces")
    if unicodedata.normalize("NFKC", value) != value:
        raise ApproversError(f"{where}: identity {value!r} is not in NFKC form")
    return value


@dataclass(frozen=True)
class Approver:
    identity: str
    roles: tuple[str, ...]
    aliases: tuple[str, ...]
    ssh_keys: tuple[bytes, ...]

    def is_subject(self, subject: str) -> bool:
        """True when `subject` (a caller) is this person, by identity or alias, after normalisation."""
        return same_person(subject, (self.identity, *self.aliases))


@dataclass(frozen=True)
class VerifiedSigner:
    approver: Approver
    fingerprint: str
    key_type: str


class Approvers:
    """The parsed approvers file."""

    def __init__(self, approvers: list[Approver], source: str = "<memory>") -> None:
        self.approvers = approvers
        self.source = source
        self._by_key: dict[bytes, Approver] = {}
        seen: dict[str, str] = {}
        for approver in approvers:
            key = normalize_identity(approver.identity)
            if key in seen:
                raise ApproversError(f"{source}: approver {approver.identity!r} is listed twice")
            seen[key] = approver.identity
            for blob in approver.ssh_keys:
                if blob in self._by_key:
                    raise ApproversError(
                        f"{source}: key {sshsig.fingerprint(blob)} is listed for both "
                        f"{self._by_key[blob].identity!r} and {approver.identity!r}"
                    )
                self._by_key[blob] = approver

    @classmethod
    def load(cls, path: Path) -> Approvers:
        """Parse `path`; a missing file means nobody can approve with a signature."""
        if not path.exists():
            return cls([], str(path))
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ApproversError(f"{path}: cannot read the approvers file: {exc}") from None
        return cls.parse(document, str(path))

    @classmethod
    def parse(cls, document: Any, source: str = "<memory>") -> Approvers:
        if document is None:
            return cls([], source)
        if not isinstance(document, dict) or not isinstance(document.get("approvers", []), list):
            raise ApproversError(f"{source}: expected a mapping with an `approvers` list")
        unknown = set(document) - {"version", "approvers"}
        if unknown:
            raise ApproversError(f"{source}: unknown key(s) {sorted(unknown)}")
        approvers = []
        for index, entry in enumerate(document.get("approvers") or []):
            where = f"{source}: approvers[{index}]"
            if not isinstance(entry, dict):
                raise ApproversError(f"{where}: expected a mapping")
            extra = set(entry) - {"identity", "roles", "aliases", "ssh_keys"}
            if extra:
                raise ApproversError(f"{where}: unknown key(s) {sorted(extra)}")
            identity = check_identity(entry.get("identity"), where)
            roles = entry.get("roles") or []
            if not isinstance(roles, list) or not roles or not all(isinstance(r, str) and r for r in roles):
                raise ApproversError(f"{where} ({identity}): roles must be a non-empty list of names")
            aliases = [check_identity(a, f"{where} alias") for a in entry.get("aliases") or []]
            keys = entry.get("ssh_keys") or []
            if not isinstance(keys, list):
                raise ApproversError(f"{where} ({identity}): ssh_keys must be a list of OpenSSH public keys")
            blobs = []
            for line in keys:
                try:
                    blobs.append(sshsig.public_key_blob(str(line)))
                except sshsig.SshSigError as exc:
                    raise ApproversError(f"{where} ({identity}): {exc}") from None
            approvers.append(Approver(identity, tuple(sorted(set(roles))), tuple(aliases), tuple(blobs)))
        return cls(approvers, source)

    def verify(self, armored: str, statement: bytes) -> VerifiedSigner:
        """The approver whose listed key made this signature over `statement`; raises ApproversError."""
        try:
            signature = sshsig.verify(armored, statement, NAMESPACE)
        except sshsig.SshSigError as exc:
            raise ApproversError(f"the approval signature is not valid: {exc}") from None
        approver = self._by_key.get(signature.public_key)
        if approver is None:
            raise ApproversError(
                f"the approval was signed with key {signature.fingerprint}, which is not an approver's key in "
                f"{self.source}"
            )
        return VerifiedSigner(approver, signature.fingerprint, signature.key_type)

    def matching(self, subject: str) -> Approver | None:
        """The approver who is `subject` (identity or alias), if any."""
        return next((a for a in self.approvers if a.is_subject(subject)), None)

    def allowed_signers(self) -> str:
        """The file as Git's / ssh-keygen's `allowed_signers` (for `ssh-keygen -Y verify`)."""
        import base64

        lines = []
        for approver in self.approvers:
            for blob in approver.ssh_keys:
                key_type = sshsig.SshSignature(blob, "", "", b"").key_type
                lines.append(
                    f'{approver.identity} namespaces="{NAMESPACE}" {key_type} {base64.b64encode(blob).decode()}'
                )
        return "\n".join(lines) + ("\n" if lines else "")
