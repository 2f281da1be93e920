"""Secret redaction applied by the gate to every tool output it shapes.

Secrets are replaced by `[REDACTED:kind]` while the context around them stays readable
(`Authorization: Bearer [REDACTED:bearer]`, `postgres://app:[REDACTED:password]@db/app`,
`password=[REDACTED:password]`). Values that investigators need and that only look random (git SHAs,
UUIDs, request and trace ids, digests) are left alone: a high-entropy value is masked only when a
secret-like key labels it or when it has the shape of a known credential.

Speed: every rule names a few lowercase trigger literals; a line is lowered once and a rule's regex runs
only when one of its triggers occurs, so a line without any trigger costs one `lower()` and one search
of a combined trigger regex.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

MASK_FORMAT = "[REDACTED:{kind}]"
POLICY_KIND = "policy"

_MASK_RE = re.compile(r"\[REDACTED:[a-z0-9_]+\]")
_MASK_PREFIX = "[REDACTED:"


def _mask(kind: str) -> str:
    return MASK_FORMAT.format(kind=kind)


# -- value checks (run on the captured secret only) ------------------------------------------------

_PLACEHOLDERS = frozenset(
    {
        "null", "none", "nil", "true", "false", "undefined", "empty", "redacted", "masked", "hidden",
        "filtered", "removed", "secret", "password", "token", "changeme", "required", "optional",
        "invalid", "incorrect", "expired", "missing", "unset", "set", "not", "is", "was", "for", "yes",
        "no", "ok", "n/a", "na", "default", "reset", "changed", "updated", "mismatch", "provided",
        "string", "str", "bytes", "any", "object", "boolean", "bool", "int", "integer",
    }
)  # fmt: skip
_PLACEHOLDER_SHAPE = re.compile(
    r"""^(?:[*xX#._-]+|<[^<>]*>|\$\{[^}]*\}|\$[A-Z_][A-Z0-9_]*|\{\{.*\}\}|%[sdr]|\?+|\[[A-Z_ ]*\]"""
    r"""|process\.env\.[A-Za-z_][A-Za-z0-9_]*|os\.environ\b.*)$"""
)


def _is_placeholder(value: str) -> bool:
    stripped = value.strip("\"'")
    return stripped.lower() in _PLACEHOLDERS or bool(_PLACEHOLDER_SHAPE.match(stripped))


def _shannon_bits(value: str) -> float:
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def _any_value(value: str) -> bool:
    return bool(value.strip()) and not _is_placeholder(value)


def _token_like(value: str) -> bool:
    """A labelled token/key/secret: long enough, not a number, not a placeholder."""
    return len(value) >= 6 and not value.isdigit() and not _is_placeholder(value)


def _high_entropy(value: str) -> bool:
    """An unknown value labelled by a weak key (`key`, `auth`, `signature`): mask only random-looking
    mixed-case strings, so hex digests, UUIDs and ids (one case) stay readable."""
    if len(value) < 16 or _is_placeholder(value):
        return False
    has_upper = any(c.isupper() for c in value)
    has_lower = any(c.islower() for c in value)
    has_digit = any(c.isdigit() for c in value)
    return has_upper and has_lower and has_digit and _shannon_bits(value) >= 3.5


def _opaque_token(value: str) -> bool:
    """A bearer token, not an English word (`Bearer authentication failed`)."""
    return len(value) >= 8 and (any(c.isdigit() for c in value) or len(value) >= 24)


def _mixed_key(value: str) -> bool:
    """`sk-...` API keys mix cases and digits; lower-case names like `sk-prod-worker-1` are not keys."""
    body = value.split("-")[-1] if value.count("-") <= 2 else value
    return any(c.isupper() for c in body) and any(c.islower() for c in body) and any(c.isdigit() for c in body)


def _basic_credentials(value: str) -> bool:
    """`Basic <base64(user:password)>`: decodes to printable text with a colon."""
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return ":" in decoded and decoded.isprintable()


# -- rules ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """One secret found in a text: `text[start:end]` is masked as `[REDACTED:kind]`."""

    start: int
    end: int
    kind: str
    priority: int = 0


class _Rule:
    """One kind of secret: a regex whose group(s) hold the secret, and the literals that must occur.

    A rule with `lowercase=True` is written in lower case and runs, case-sensitively, on the lowered
    text (ten times faster than re.IGNORECASE); spans are the same in the original text, from which the
    value is taken. When lowering changes the length (a few non-ASCII letters), it falls back to an
    IGNORECASE regex on the original text.
    """

    __slots__ = ("check", "fallback", "groups", "kind", "kind_check", "kind_of", "pattern", "priority", "triggers")

    def __init__(
        self,
        kind: str,
        source: str,
        triggers: tuple[str, ...],
        priority: int,
        *,
        lowercase: bool = False,
        flags: int = 0,
        check: Callable[[str], bool] = _any_value,
        kind_check: Callable[[str, str], bool] | None = None,
        groups: tuple[str, ...] = ("v",),
        kind_of: Callable[[str], str] | None = None,
    ) -> None:
        self.kind = kind
        self.pattern = re.compile(source, flags)
        self.fallback = re.compile(source, flags | re.IGNORECASE) if lowercase else None
        self.triggers = triggers
        self.priority = priority
        self.check = check
        self.kind_check = kind_check
        self.groups = groups
        self.kind_of = kind_of

    def spans(self, text: str, low: str) -> Iterable[Span]:
        if self.fallback is None:
            matches = self.pattern.finditer(text)
        elif len(low) == len(text):
            matches = self.pattern.finditer(low)
        else:
            matches = self.fallback.finditer(text)
        for m in matches:
            for group in self.groups:
                start, end = m.span(group)
                if start < 0:
                    continue
                value = text[start:end]
                if start == end or value.startswith(_MASK_PREFIX) or not self.check(value):
                    break
                kind = self.kind_of(m.group("kw")) if self.kind_of is not None else self.kind
                if self.kind_check is None or self.kind_check(kind, value):
                    yield Span(start, end, kind, self.priority)
                break


# Priorities decide the kind shown when spans overlap: a known credential shape names the secret
# better than the key that labels it.
_SHAPE, _CONTEXT, _LABEL, _WEAK = 30, 20, 10, 5

# A value after `key=` / `"key": ` / `key: `: escaped-JSON quoted, JSON quoted, single quoted, or bare.
_VALUE = (
    r"""(?:\\"(?P<v1>[^"\\\n]*)\\"|"(?P<v2>(?:[^"\\\n]|\\.)*)"|'(?P<v3>[^'\n]*)'"""
    r"""|(?P<v4>\$\{[^}\s]*\}|[^\s"'`,;&<>()\[\]{}]+))"""
)
_VALUE_GROUPS = ("v1", "v2", "v3", "v4")
# Between the key and the value: optional closing quote (also escaped), then `=`, `:`, `=>` or `:=`.
_SEP = r"""\\?["']?[ \t]*(?:=>|:=|[:=])[ \t]*"""

# Keys whose value is a secret whatever it looks like. A prefix is allowed (DB_PASSWORD, dbPassword,
# x-api-key, spring.datasource.password), a suffix is not (password_reset, token_count, secretName).
_STRONG_KEYS = (
    r"client[_-]?secret|secret[_-]?access[_-]?key|secret[_-]?key|secret|access[_-]?key|private[_-]?key"
    r"|api[_-]?key|apikey|passphrase|password|passwd|pwd|token"
)
_KEY_KINDS = {
    "clientsecret": "client_secret", "secretaccesskey": "secret", "secretkey": "secret", "secret": "secret",
    "accesskey": "access_key", "privatekey": "private_key", "apikey": "api_key", "passphrase": "password",
    "password": "password", "passwd": "password", "pwd": "password", "token": "token",
}  # fmt: skip


def _key_kind(keyword: str) -> str:
    return _KEY_KINDS.get(keyword.lower().replace("_", "").replace("-", ""), "secret")


def _strong_check(kind: str, value: str) -> bool:
    """Passwords may be short; other labelled values must look like a token (`token: 512` is a count)."""
    return _any_value(value) if kind == "password" else _token_like(value)


_NOT_WORD_BEFORE = r"(?<![A-Za-z0-9_])"


def _build_rules() -> list[_Rule]:
    return [
        _Rule(
            "private_key",
            r"-----BEGIN (?P<type>[A-Z0-9 ]*)PRIVATE KEY(?: BLOCK)?-----"
            r"(?P<v>.*?)(?=-----END (?P=type)PRIVATE KEY(?: BLOCK)?-----|\Z)",
            ("private key",),
            _SHAPE,
            flags=re.DOTALL,
            check=lambda v: any(c.isalnum() for c in v),
        ),
        _Rule(
            "jwt",
            r"(?<![A-Za-z0-9_-])(?P<v>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)",
            ("eyj",),
            _SHAPE,
        ),
        _Rule(
            "aws_access_key_id",
            r"(?<![A-Za-z0-9])(?P<v>(?:AKIA|ASIA)[A-Z2-7]{16})(?![A-Za-z0-9])",
            ("akia", "asia"),
            _SHAPE,
        ),
        _Rule(
            "aws_secret_key",
            r"(?:aws_?secret_?(?:access_?)?key|secret_?access_?key)"
            + _SEP
            + r"""\\?["']?(?P<v>[a-z0-9/+]{40})(?![a-z0-9/+=])""",
            ("secret",),
            _SHAPE,
            lowercase=True,
        ),
        _Rule(
            "github_token",
            _NOT_WORD_BEFORE + r"(?P<v>gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9_])",
            ("gh", "github_pat_"),
            _SHAPE,
        ),
        _Rule(
            "gitlab_token",
            r"(?<![A-Za-z0-9_-])(?P<v>gl(?:pat|dt|rt)-[A-Za-z0-9_-]{20,})",
            ("glpat-", "gldt-", "glrt-"),
            _SHAPE,
        ),
        _Rule(
            "slack_token",
            r"(?<![A-Za-z0-9_-])(?P<v>(?:xox[baprse]|xapp)-[A-Za-z0-9-]{10,})",
            ("xox", "xapp-"),
            _SHAPE,
        ),
        _Rule(
            "slack_webhook",
            r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<v>[a-z0-9/_-]{16,})",
            ("hooks.slack",),
            _SHAPE,
            lowercase=True,
        ),
        _Rule(
            "stripe_key",
            _NOT_WORD_BEFORE + r"(?P<v>(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{24,})",
            ("k_live_", "k_test_", "whsec_"),
            _SHAPE,
        ),
        _Rule(
            "anthropic_key",
            r"(?<![A-Za-z0-9_-])(?P<v>sk-ant-[A-Za-z0-9]{2,8}\d{2}-[A-Za-z0-9_-]{20,})",
            ("sk-",),
            _SHAPE + 1,
        ),
        _Rule(
            "openai_key",
            r"(?<![A-Za-z0-9_-])(?P<v>sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,})",
            ("sk-",),
            _SHAPE,
            check=_mixed_key,
        ),
        _Rule("gcp_api_key", r"(?<![A-Za-z0-9_-])(?P<v>AIza[0-9A-Za-z_-]{35})(?![A-Za-z0-9_-])", ("aiza",), _SHAPE),
        _Rule(
            "azure_client_secret",
            r"(?<![A-Za-z0-9_~.-])(?P<v>[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34})(?![A-Za-z0-9_~.-])",
            ("q~",),
            _SHAPE,
        ),
        _Rule("npm_token", _NOT_WORD_BEFORE + r"(?P<v>npm_[A-Za-z0-9]{36})(?![A-Za-z0-9])", ("npm_",), _SHAPE),
        _Rule("pypi_token", r"(?<![A-Za-z0-9_-])(?P<v>pypi-AgE[A-Za-z0-9_-]{50,})", ("pypi-",), _SHAPE),
        _Rule(
            "sendgrid_key",
            r"(?<![A-Za-z0-9_-])(?P<v>SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])",
            ("sg.",),
            _SHAPE,
        ),
        _Rule("vault_token", r"(?<![A-Za-z0-9_-])(?P<v>hvs\.[A-Za-z0-9_-]{24,})", ("hvs.",), _SHAPE),
        _Rule(
            "azure_key",
            r"(?:accountkey|sharedaccesskey|primarykey|secondarykey)[ \t]*=[ \t]*(?P<v>[a-z0-9+/]{20,}={0,2})",
            ("key",),
            _CONTEXT,
            lowercase=True,
        ),
        _Rule(
            "azure_sas",
            r"(?:^|(?<=[?&;\s\"']))sig=(?P<v>[a-z0-9%+/=_-]{16,})",
            ("sig",),
            _CONTEXT,
            lowercase=True,
        ),
        _Rule(
            "url_signature",
            r"(?:x-amz-signature|x-goog-signature|x-amz-security-token|x-amz-credential)=(?P<v>[a-z0-9%+/=_.-]{16,})",
            ("x-amz-", "x-goog-"),
            _CONTEXT,
            lowercase=True,
        ),
        _Rule(
            "bearer",
            _NOT_WORD_BEFORE + r"bearer[ \t]+(?P<v>[a-z0-9._~+/-]+=*)",
            ("bearer",),
            _CONTEXT,
            lowercase=True,
            check=_opaque_token,
        ),
        _Rule(
            "basic_auth",
            _NOT_WORD_BEFORE + r"basic[ \t]+(?P<v>[a-z0-9+/]{6,}={0,2})(?![a-z0-9+/=])",
            ("basic",),
            _CONTEXT,
            lowercase=True,
            check=_basic_credentials,
        ),
        _Rule(
            "auth_header",
            _NOT_WORD_BEFORE + r"(?:proxy-)?authorization\\?[\"']?[ \t]*[:=][ \t]*\\?[\"']?"
            r"(?!bearer\b|basic\b)(?:[a-z][a-z0-9_-]*[ \t]+)?(?P<v>[^\s\"'\\,;]{8,})",
            ("auth",),
            _CONTEXT,
            lowercase=True,
            check=_opaque_token,
        ),
        _Rule(
            "password",
            # scheme://user:password@host; an unencoded '#' or '?' in the password still ends at '@'.
            r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{1,30}://[^\s:/?#@\"'<>]*:(?P<v>[^\s/@\"'<>]+)@",
            ("://",),
            _CONTEXT,
            lowercase=True,
        ),
        _Rule(
            "password",
            r"(?P<kw>" + _STRONG_KEYS + r")(?![a-z0-9_])" + _SEP + _VALUE,
            ("pass", "pwd", "secret", "token", "key"),
            _LABEL,
            lowercase=True,
            kind_check=_strong_check,
            groups=_VALUE_GROUPS,
            kind_of=_key_kind,
        ),
        _Rule(
            "secret",
            r"(?:key|auth|creds?|credentials?|signature|sig|hmac|salt|session)(?![a-z0-9_])" + _SEP + _VALUE,
            ("key", "auth", "cred", "sig", "hmac", "salt", "session"),
            _WEAK,
            lowercase=True,
            check=_high_entropy,
            groups=_VALUE_GROUPS,
        ),
    ]


_RULES = _build_rules()


# -- extra patterns from the policy ------------------------------------------------------------------
#
# Policy-supplied patterns run on RE2 (google-re2), as the caller-supplied log filters do: it matches in
# time linear in the text for every pattern it accepts, so a pattern like `(a+)+$` costs what `a+` does
# and no analysis of the pattern has to be trusted. What RE2 cannot run in linear time (backreferences,
# lookaround) it refuses, and so do we, by name.

MAX_EXTRA_PATTERN_LENGTH = 1024
_RE2_MAX_MEM = 8 << 20


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = _RE2_MAX_MEM
    return options


def compile_extra_pattern(pattern: str) -> Any:
    """Compile a policy's redaction pattern with RE2, or raise ValueError naming it and the problem."""
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"redaction pattern {pattern!r} must be a non-empty string")
    if len(pattern) > MAX_EXTRA_PATTERN_LENGTH:
        raise ValueError(f"redaction pattern {pattern[:40]!r}... is over {MAX_EXTRA_PATTERN_LENGTH} characters")
    try:
        compiled = re2.compile(pattern, _re2_options())
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        detail = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
        raise ValueError(
            f"invalid redaction pattern {pattern!r} (RE2 syntax: no backreferences or lookaround): {detail}"
        ) from None
    if compiled.fullmatch("") is not None:
        raise ValueError(f"redaction pattern {pattern!r} matches the empty string")
    return compiled


# -- the redactor -------------------------------------------------------------------------------------


def _merge(spans: list[Span]) -> list[Span]:
    """Overlapping or touching spans become one; its kind is the most specific one among them."""
    spans.sort(key=lambda s: (s.start, -s.end))
    merged: list[Span] = []
    for span in spans:
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            best = last if last.priority >= span.priority else span
            merged[-1] = Span(last.start, max(last.end, span.end), best.kind, best.priority)
        else:
            merged.append(span)
    return merged


class Redactor:
    """Masks secrets in text and in JSON-like structures."""

    def __init__(self, extra_patterns: Sequence[str] = ()) -> None:
        self._rules = list(_RULES)
        self._extra = [compile_extra_pattern(p) for p in extra_patterns]
        by_trigger: dict[str, list[int]] = {}
        for index, rule in enumerate(self._rules):
            for trigger in rule.triggers:
                by_trigger.setdefault(trigger, []).append(index)
        # `in` on the lowered line for each distinct literal beats one regex alternation of them all.
        self._by_trigger = tuple((t, tuple(ix)) for t, ix in by_trigger.items())

    def find_spans(self, text: str) -> list[Span]:
        """The secrets in `text`, merged and in order."""
        if len(text) < 6:
            return []
        low = text.lower()
        candidates: list[Span] = []
        selected: set[int] = set()
        for trigger, indexes in self._by_trigger:
            if trigger in low:
                selected.update(indexes)
        for index in selected:
            candidates.extend(self._rules[index].spans(text, low))
        if self._extra:
            candidates.extend(self._extra_spans(text, low, candidates))
        return _merge(candidates) if candidates else candidates

    def _extra_spans(self, text: str, low: str, builtin: list[Span]) -> list[Span]:
        covered = [(s.start, s.end) for s in builtin]
        if "[redacted:" in low:
            covered.extend(m.span() for m in _MASK_RE.finditer(text))
        out: list[Span] = []
        for pattern in self._extra:
            for m in pattern.finditer(text):
                start, end = m.span()
                if start == end:
                    continue
                # Where a built-in rule (or an earlier pass) masked a secret with its context, the policy
                # pattern aimed at the same secret; masking its whole match would hide that context and
                # make a second pass change the text again.
                if any(a <= end and b >= start for a, b in covered):
                    continue
                out.append(Span(start, end, POLICY_KIND, 1))
        return out

    def redact_text(self, text: str) -> tuple[str, int]:
        spans = self.find_spans(text)
        if not spans:
            return text, 0
        parts: list[str] = []
        pos = 0
        for span in spans:
            parts.append(text[pos : span.start])
            parts.append(_mask(span.kind))
            pos = span.end
        parts.append(text[pos:])
        return "".join(parts), len(spans)

    def redact_obj(self, obj: Any) -> tuple[Any, int]:
        """Redact every string value in nested dicts, lists and tuples; keys are left as they are."""
        if isinstance(obj, str):
            return self.redact_text(obj)
        if isinstance(obj, dict):
            out: dict[Any, Any] = {}
            total = 0
            for key, value in obj.items():
                out[key], n = self.redact_obj(value)
                total += n
            return out, total
        if isinstance(obj, list | tuple):
            items: list[Any] = []
            total = 0
            for value in obj:
                redacted, n = self.redact_obj(value)
                items.append(redacted)
                total += n
            return (items if isinstance(obj, list) else tuple(items)), total
        return obj, 0


DEFAULT_REDACTOR = Redactor()


@lru_cache(maxsize=32)
def redactor_for(extra_patterns: tuple[str, ...]) -> Redactor:
    """The redactor a policy decision's `redact_patterns` ask for, built once per set of patterns."""
    return Redactor(extra_patterns=extra_patterns)
