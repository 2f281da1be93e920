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
import importlib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

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
    r"""^(?:[*xX#._-]+|<[^<>]*>|\$\{[^}]*\}|\$[A-Z_][A-Z0-9_]*|\{\{.*\}\}|%[sdr]|\?+|\[[A-Z_ ]*\])$"""
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
    return (
        any(c.isupper() for c in body) and any(c.islower() for c in body) and any(c.isdigit() for c in body)
    )


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


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    triggers: tuple[str, ...]
    priority: int
    check: Callable[[str], bool] = _any_value
    groups: tuple[str, ...] = ("v",)
    kind_of: Callable[[re.Match[str]], str] | None = None

    def spans(self, text: str) -> Iterable[Span]:
        for m in self.pattern.finditer(text):
            for group in self.groups:
                start, end = m.span(group)
                if start < 0:
                    continue
                value = text[start:end]
                if start == end or value.startswith(_MASK_PREFIX) or not self.check(value):
                    break
                kind = self.kind_of(m) if self.kind_of is not None else self.kind
                yield Span(start, end, kind, self.priority)
                break


# Priorities decide the kind shown when spans overlap: a known credential shape names the secret
# better than the key that labels it.
_SHAPE, _CONTEXT, _LABEL, _WEAK = 30, 20, 10, 5

# A value after `key=` / `"key": ` / `key: `: escaped-JSON quoted, JSON quoted, single quoted, or bare.
_VALUE = (
    r"""(?:\\"(?P<v1>[^"\\\n]*)\\"|"(?P<v2>(?:[^"\\\n]|\\.)*)"|'(?P<v3>[^'\n]*)'|(?P<v4>[^\s"'`,;&<>()\[\]{}]+))"""
)
_VALUE_GROUPS = ("v1", "v2", "v3", "v4")
# Between the key and the value: optional closing quote (also escaped), then `=`, `:`, `=>` or `:=`.
_SEP = r"""\\?["']?[ \t]*(?:=>|:=|[:=])[ \t]*"""

_STRONG_KEYWORDS = {
    "client_secret": r"client[_-]?secret",
    "secret": r"secret[_-]?access[_-]?key|secret[_-]?key|secret",
    "access_key": r"access[_-]?key",
    "private_key": r"private[_-]?key",
    "api_key": r"api[_-]?key|apikey",
    "password": r"passphrase|password|passwd|pwd",
    "token": r"token",
}
_STRONG_RE = "|".join(f"(?P<k_{kind}>{alts})" for kind, alts in _STRONG_KEYWORDS.items())


def _keyword_kind(m: re.Match[str]) -> str:
    group = m.lastgroup
    for name, value in m.groupdict().items():
        if name.startswith("k_") and value is not None:
            return name[2:]
    return group or "secret"


def _build_rules() -> list[_Rule]:
    i = re.IGNORECASE
    rules = [
        _Rule(
            "private_key",
            re.compile(
                r"-----BEGIN (?P<type>[A-Z0-9 ]*)PRIVATE KEY(?: BLOCK)?-----"
                r"(?P<v>.*?)(?=-----END (?P=type)PRIVATE KEY(?: BLOCK)?-----|\Z)",
                re.DOTALL,
            ),
            ("private key",),
            _SHAPE,
            check=lambda v: any(c.isalnum() for c in v),
        ),
        _Rule(
            "jwt",
            re.compile(r"(?<![A-Za-z0-9_-])(?P<v>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)"),
            ("eyj",),
            _SHAPE,
        ),
        _Rule(
            "aws_access_key_id",
            re.compile(r"(?<![A-Za-z0-9])(?P<v>(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})(?![A-Za-z0-9])"),
            ("akia", "asia", "abia", "acca"),
            _SHAPE,
        ),
        _Rule(
            "aws_secret_key",
            re.compile(
                r"(?:aws_?secret_?(?:access_?)?key|secret_?access_?key)" + _SEP
                + r"""\\?["']?(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])""",
                i,
            ),
            ("secret",),
            _SHAPE,
        ),
        _Rule(
            "github_token",
            re.compile(
                r"(?<![A-Za-z0-9_])(?P<v>gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"
                r"(?![A-Za-z0-9_])"
            ),
            ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
            _SHAPE,
        ),
        _Rule(
            "gitlab_token",
            re.compile(r"(?<![A-Za-z0-9_-])(?P<v>gl(?:pat|dt|rt|ptt|soat|cbt)-[A-Za-z0-9_-]{20,})"),
            ("glpat-", "gldt-", "glrt-", "glptt-", "glsoat-", "glcbt-"),
            _SHAPE,
        ),
        _Rule(
            "slack_token",
            re.compile(r"(?<![A-Za-z0-9_-])(?P<v>(?:xox[baprse]|xapp)-[A-Za-z0-9-]{10,})"),
            ("xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-", "xoxe-", "xapp-"),
            _SHAPE,
        ),
        _Rule(
            "slack_webhook",
            re.compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<v>[A-Za-z0-9/_-]{16,})", i),
            ("hooks.slack.com",),
            _SHAPE,
        ),
        _Rule(
            "stripe_key",
            re.compile(r"(?<![A-Za-z0-9_])(?P<v>(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{24,})"),
            ("sk_live_", "rk_live_", "sk_test_", "rk_test_", "whsec_"),
            _SHAPE,
        ),
        _Rule(
            "anthropic_key",
            re.compile(r"(?<![A-Za-z0-9_-])(?P<v>sk-ant-[A-Za-z0-9]{2,8}\d{2}-[A-Za-z0-9_-]{20,})"),
            ("sk-ant-",),
            _SHAPE + 1,
        ),
        _Rule(
            "openai_key",
            re.compile(r"(?<![A-Za-z0-9_-])(?P<v>sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,})"),
            ("sk-",),
            _SHAPE,
            check=_mixed_key,
        ),
        _Rule(
            "gcp_api_key",
            re.compile(r"(?<![A-Za-z0-9_-])(?P<v>AIza[0-9A-Za-z_-]{35})(?![A-Za-z0-9_-])"),
            ("aiza",),
            _SHAPE,
        ),
        _Rule(
            "azure_client_secret",
            re.compile(r"(?<![A-Za-z0-9_~.-])(?P<v>[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34})(?![A-Za-z0-9_~.-])"),
            ("q~",),
            _SHAPE,
        ),
        _Rule(
            "npm_token",
            re.compile(r"(?<![A-Za-z0-9_])(?P<v>npm_[A-Za-z0-9]{36})(?![A-Za-z0-9])"),
            ("npm_",),
            _SHAPE,
        ),
        _Rule(
            "pypi_token",
            re.compile(r"(?<![A-Za-z0-9_-])(?P<v>pypi-AgE[A-Za-z0-9_-]{50,})"),
            ("pypi-age",),
            _SHAPE,
        ),
        _Rule(
            "sendgrid_key",
            re.compile(r"(?<![A-Za-z0-9_-])(?P<v>SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])"),
            ("sg.",),
            _SHAPE,
        ),
        _Rule(
            "vault_token",
            re.compile(r"(?<![A-Za-z0-9_-])(?P<v>hv[sbr]\.[A-Za-z0-9_-]{24,})"),
            ("hvs.", "hvb.", "hvr."),
            _SHAPE,
        ),
        _Rule(
            "azure_key",
            re.compile(
                r"(?:AccountKey|SharedAccessKey|PrimaryKey|SecondaryKey)[ \t]*=[ \t]*(?P<v>[A-Za-z0-9+/]{20,}={0,2})", i
            ),
            ("accountkey", "sharedaccesskey", "primarykey", "secondarykey"),
            _CONTEXT,
        ),
        _Rule(
            "azure_sas",
            re.compile(r"(?:^|(?<=[?&;\s\"']))sig=(?P<v>[A-Za-z0-9%+/=_-]{16,})", i),
            ("sig=",),
            _CONTEXT,
        ),
        _Rule(
            "url_signature",
            re.compile(
                r"(?:X-Amz-Signature|X-Goog-Signature|X-Amz-Security-Token|X-Amz-Credential)="
                r"(?P<v>[A-Za-z0-9%+/=_.-]{16,})",
                i,
            ),
            ("x-amz-signature=", "x-goog-signature=", "x-amz-security-token=", "x-amz-credential="),
            _CONTEXT,
        ),
        _Rule(
            "bearer",
            re.compile(r"(?<![A-Za-z0-9_])bearer[ \t]+(?P<v>[A-Za-z0-9._~+/-]+=*)", i),
            ("bearer",),
            _CONTEXT,
            check=_opaque_token,
        ),
        _Rule(
            "basic_auth",
            re.compile(r"(?<![A-Za-z0-9_])basic[ \t]+(?P<v>[A-Za-z0-9+/]{6,}={0,2})(?![A-Za-z0-9+/=])", i),
            ("basic",),
            _CONTEXT,
            check=_basic_credentials,
        ),
        _Rule(
            "auth_header",
            re.compile(
                r"(?<![A-Za-z0-9_])(?:proxy-)?authorization\\?[\"']?[ \t]*[:=][ \t]*\\?[\"']?"
                r"(?!bearer\b|basic\b)(?:[A-Za-z][A-Za-z0-9_-]*[ \t]+)?(?P<v>[^\s\"'\\,;]{8,})",
                i,
            ),
            ("authorization",),
            _CONTEXT,
            check=_opaque_token,
        ),
        _Rule(
            "password",
            # scheme://user:password@host
            re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{1,30}://[^\s:/?#@\"'<>]*:(?P<v>[^\s/?#@\"'<>]+)@"),
            ("://",),
            _CONTEXT,
        ),
        _Rule(
            "password",
            # Also prefixed and camelCase keys: DB_PASSWORD, dbPassword, x-api-key, spring.datasource.password.
            re.compile(r"(?:" + _STRONG_RE + r")(?![A-Za-z0-9_])" + _SEP + _VALUE, i),
            ("pass", "pwd", "secret", "token", "key"),
            _LABEL,
            groups=_VALUE_GROUPS,
            kind_of=_keyword_kind,
        ),
        _Rule(
            "secret",
            re.compile(
                r"(?:key|auth|creds?|credentials?|signature|sig|hmac|salt|session)(?![A-Za-z0-9_])" + _SEP + _VALUE,
                i,
            ),
            ("key", "auth", "cred", "sig", "hmac", "salt", "session"),
            _WEAK,
            check=_high_entropy,
            groups=_VALUE_GROUPS,
        ),
    ]
    return rules


_RULES = _build_rules()


# Strong labels other than passwords want a token-like value (`token: 512`, `secret: true` are not secrets).
def _strong_check(kind: str, value: str) -> bool:
    return _any_value(value) if kind == "password" else _token_like(value)


# -- extra patterns from the policy ------------------------------------------------------------------

_sre = importlib.import_module("re._parser")
_UNBOUNDED = _sre.MAXREPEAT
_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", _sre.MAX_REPEAT))

_ALL = frozenset(range(128))
_DIGITS = frozenset(range(ord("0"), ord("9") + 1))
_WORD = frozenset(ord(c) for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_SPACE = frozenset(ord(c) for c in " \t\n\r\f\v")


@dataclass(frozen=True, slots=True)
class _CharSet:
    """Characters an item can consume: ASCII code points plus 'some non-ASCII'."""

    ascii: frozenset[int] = field(default_factory=frozenset)
    non_ascii: bool = False

    def __or__(self, other: _CharSet) -> _CharSet:
        return _CharSet(self.ascii | other.ascii, self.non_ascii or other.non_ascii)

    def overlaps(self, other: _CharSet) -> bool:
        return bool(self.ascii & other.ascii) or (self.non_ascii and other.non_ascii)

    def complement(self) -> _CharSet:
        return _CharSet(_ALL - self.ascii, True)


_ANY_CHAR = _CharSet(_ALL, True)
_CATEGORIES = {
    "CATEGORY_DIGIT": _CharSet(_DIGITS, True),
    "CATEGORY_WORD": _CharSet(_WORD, True),
    "CATEGORY_SPACE": _CharSet(_SPACE, True),
}


def _category(name: str) -> _CharSet:
    if name.startswith("CATEGORY_NOT_"):
        return _CATEGORIES.get("CATEGORY_" + name[13:], _ANY_CHAR).complement()
    return _CATEGORIES.get(name, _ANY_CHAR)


def _in_set(items: list[tuple[Any, Any]]) -> _CharSet:
    out = _CharSet()
    negate = False
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            out = out | _CharSet(frozenset({av}) if av < 128 else frozenset(), av >= 128)
        elif name == "RANGE":
            lo, hi = av
            out = out | _CharSet(frozenset(range(lo, min(hi, 127) + 1)), hi >= 128)
        elif name == "CATEGORY":
            out = out | _category(str(av))
        else:
            out = _ANY_CHAR
    return out.complement() if negate else out


def _charset(items: Iterable[tuple[Any, Any]]) -> _CharSet:
    """Every character a parsed (sub)pattern can consume."""
    out = _CharSet()
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            out = out | _CharSet(frozenset({av}) if av < 128 else frozenset(), av >= 128)
        elif name == "IN":
            out = out | _in_set(av)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            out = out | _charset(av[2])
        elif name == "SUBPATTERN":
            out = out | _charset(av[3])
        elif name == "ATOMIC_GROUP":
            out = out | _charset(av)
        elif name == "BRANCH":
            for branch in av[1]:
                out = out | _charset(branch)
        elif name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue
        else:
            out = out | _ANY_CHAR
    return out


def _first_chars(items: list[tuple[Any, Any]]) -> _CharSet:
    for op, av in items:
        name = str(op)
        if name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue
        if name == "SUBPATTERN":
            return _first_chars(list(av[3]))
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and av[0] == 0:
            return _ANY_CHAR  # optional first item: anything after it may come first
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            return _first_chars(list(av[2]))
        return _charset([(op, av)])
    return _CharSet()


def _min_width(items: Iterable[tuple[Any, Any]]) -> int:
    sub = _sre.SubPattern(_sre.State(), list(items))
    return int(sub.getwidth()[0])


def _variable_repeats(items: Iterable[tuple[Any, Any]]) -> Iterable[tuple[Any, Any]]:
    for op, av in items:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT") and av[0] != av[1]:
            yield op, av
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            yield from _variable_repeats(av[2])
        elif name == "SUBPATTERN":
            yield from _variable_repeats(av[3])
        elif name == "BRANCH":
            for branch in av[1]:
                yield from _variable_repeats(branch)


def _backtracking_hazard(items: Iterable[tuple[Any, Any]]) -> str | None:
    """Name the construct that lets a backtracking engine take exponential time, if any."""
    for op, av in items:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT"):
            low, high, body = av
            body_items = list(body)
            if high == _UNBOUNDED or high > 16:
                # Nested quantifier: safe only when a mandatory delimiter the inner repeat cannot
                # consume separates iterations, as in `(?:[a-z]+\.)+`.
                for _, inner in _variable_repeats(body_items):
                    inner_set = _charset(inner[2])
                    delimited = any(
                        _min_width([item]) > 0 and not _charset([item]).overlaps(inner_set)
                        for item in _flatten(body_items)
                    )
                    if not delimited:
                        return "a quantified group contains another quantifier over the same characters"
                for branch_op, branch_av in _flatten(body_items):
                    if str(branch_op) == "BRANCH":
                        firsts = [_first_chars(list(b)) for b in branch_av[1]]
                        for a in range(len(firsts)):
                            for b in range(a + 1, len(firsts)):
                                if firsts[a].overlaps(firsts[b]):
                                    return "a quantified alternation has branches that can start alike"
                if _min_width(body_items) == 0 and list(_variable_repeats(body_items)):
                    return "a quantified group can match the empty string"
            found = _backtracking_hazard(body_items)
            if found:
                return found
        elif name == "SUBPATTERN":
            found = _backtracking_hazard(av[3])
            if found:
                return found
        elif name == "BRANCH":
            for branch in av[1]:
                found = _backtracking_hazard(branch)
                if found:
                    return found
        elif name in ("ASSERT", "ASSERT_NOT"):
            found = _backtracking_hazard(av[1])
            if found:
                return found
    return None


def _flatten(items: Iterable[tuple[Any, Any]]) -> Iterable[tuple[Any, Any]]:
    """Top-level items of a sequence, looking through plain groups."""
    for op, av in items:
        if str(op) == "SUBPATTERN":
            yield from _flatten(av[3])
        else:
            yield op, av


def compile_extra_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a policy's redaction pattern, or raise ValueError naming it and the problem."""
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"redaction pattern {pattern!r} must be a non-empty string")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid redaction pattern {pattern!r}: {exc}") from None
    if compiled.fullmatch(""):
        raise ValueError(f"redaction pattern {pattern!r} matches the empty string")
    hazard = _backtracking_hazard(_sre.parse(pattern, compiled.flags))
    if hazard:
        raise ValueError(f"redaction pattern {pattern!r} risks catastrophic backtracking: {hazard}")
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
        self._by_trigger = {t: tuple(ix) for t, ix in by_trigger.items()}
        # Longest first so that a trigger contained in another one is still seen by finditer.
        ordered = sorted(self._by_trigger, key=len, reverse=True)
        self._trigger_re = re.compile("|".join(re.escape(t) for t in ordered))

    def find_spans(self, text: str) -> list[Span]:
        """The secrets in `text`, merged and in order."""
        if len(text) < 6:
            return []
        low = text.lower()
        candidates: list[Span] = []
        if self._trigger_re.search(low) is not None:
            selected: set[int] = set()
            for trigger, indexes in self._by_trigger.items():
                if trigger in low:
                    selected.update(indexes)
            for index in sorted(selected):
                rule = self._rules[index]
                if rule.priority == _LABEL:
                    candidates.extend(s for s in rule.spans(text) if _strong_check(s.kind, text[s.start : s.end]))
                else:
                    candidates.extend(rule.spans(text))
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
                inside = [(a, b) for a, b in covered if a <= end and b >= start]
                if inside:
                    # A built-in rule (or an earlier pass) already masked this secret with its context;
                    # mask only what the policy pattern reaches beyond it, so a second pass changes nothing.
                    start = max(b for _, b in inside)
                    if start >= end or not any(c.isalnum() for c in text[start:end]):
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
