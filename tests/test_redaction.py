"""Secret redaction: every kind in the labelled corpus is masked, look-alikes are not, and the API holds."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opsgate import redaction
from opsgate.redaction import DEFAULT_REDACTOR, Redactor

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "data" / "redaction_corpus.jsonl"
POLICY_PATTERNS: list[str] = json.loads((REPO / "policies" / "data.json").read_text())["opsgate_config"][
    "redact_patterns"
]


def _load() -> list[dict[str, Any]]:
    with CORPUS.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


ROWS = _load()
PEM_BEGIN, PEM_END = "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----"
POSITIVE = [r for r in ROWS if r["secrets"]]
NEGATIVE = [r for r in ROWS if not r["secrets"]]
BY_KIND: dict[str, list[dict[str, Any]]] = defaultdict(list)
for _row in POSITIVE:
    for _secret in _row["secrets"]:
        BY_KIND[_secret["kind"]].append(_row)


def test_corpus_covers_every_required_kind() -> None:
    required = {
        "bearer", "jwt", "aws_access_key_id", "aws_secret_key", "azure_key", "azure_sas", "client_secret",
        "azure_client_secret", "gcp_api_key", "private_key", "github_token", "gitlab_token", "slack_token",
        "slack_webhook", "stripe_key", "openai_key", "anthropic_key", "password", "secret", "api_key", "token",
        "basic_auth",
    }  # fmt: skip
    assert required <= set(BY_KIND)
    assert len(NEGATIVE) >= len(POSITIVE) >= 400


@pytest.mark.parametrize("kind", sorted(BY_KIND))
def test_each_kind_is_masked(kind: str) -> None:
    for row in BY_KIND[kind]:
        out, count = DEFAULT_REDACTOR.redact_text(row["text"])
        assert count >= 1, row["text"]
        for secret in row["secrets"]:
            assert secret["value"] not in out, (kind, row["text"], out)
        spans = DEFAULT_REDACTOR.find_spans(row["text"])
        for secret in row["secrets"]:
            assert any(s.start <= secret["start"] and s.end >= secret["end"] for s in spans), (secret, spans)


def test_lines_without_secrets_are_untouched() -> None:
    changed = [(r["text"], DEFAULT_REDACTOR.redact_text(r["text"])[0]) for r in NEGATIVE]
    changed = [(before, after) for before, after in changed if before != after]
    assert changed == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc123DEF456ghi789", "Authorization: Bearer [REDACTED:bearer]"),
        ("postgres://user:s3cr3t!pw@db.internal:5432/app", "postgres://user:[REDACTED:password]@db.internal:5432/app"),
        ("redis://:hunter2hunter2@redis-0:6379/0", "redis://:[REDACTED:password]@redis-0:6379/0"),
        ("login failed password=hunter2 user=bob", "login failed password=[REDACTED:password] user=bob"),
        ('{"user": "bob", "password": "hunter2"}', '{"user": "bob", "password": "[REDACTED:password]"}'),
        ("  DB_PASSWORD: 'p@ss w0rd'", "  DB_PASSWORD: '[REDACTED:password]'"),
        ("User Id=app;Password=Pa55word!;Encrypt=True", "User Id=app;Password=[REDACTED:password];Encrypt=True"),
        ("api_key=Zx81kq0LmN3oP5rS7tU9vW", "api_key=[REDACTED:api_key]"),
        ("client_secret: Zx81kq0LmN3oP5rS7tU9vW", "client_secret: [REDACTED:client_secret]"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic [REDACTED:basic_auth]"),
        ("key AKIAIOSFODNN7EXAMPLE used", "key [REDACTED:aws_access_key_id] used"),
        ("https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "https://hooks.slack.com/services/[REDACTED:slack_webhook]"),
        (f"{PEM_BEGIN}\nMIIEpAIBAAKCAQEA\nxyz\n{PEM_END}", f"{PEM_BEGIN}[REDACTED:private_key]{PEM_END}"),
        # A key cut off by a truncated log line: everything after the header is masked.
        ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg", "-----BEGIN PRIVATE KEY-----[REDACTED:private_key]"),
    ],
)  # fmt: skip
def test_masks_keep_context(text: str, expected: str) -> None:
    assert DEFAULT_REDACTOR.redact_text(text) == (expected, 1)


@pytest.mark.parametrize(
    "text",
    [
        "commit 3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39 deployed",
        "request_id=5f3c2a1e-8b7d-4c6a-9e5f-123456789abc trace_id=4bf92f3577b34da6a3ce929d0e0e4736",
        "password reset email sent to bob@example.com",
        "prompt_tokens=123 completion_tokens=456 max_tokens=4096",
        "Failed password for invalid user admin from 10.0.0.1 port 22 ssh2",
        "token: 512",
        "Bearer authentication failed",
        "GET https://api.example.com/v1/orders?page=2&sort=desc",
        "image@sha256:9b2a4f6c8e0d1b3a5c7e9f1d3b5a7c9e1f3d5b7a9c1e3f5d7b9a1c3e5f7d9b1a",
        "secretName: db-credentials",
        "KeyError: 'password'",
        "password: null",
        "password=${DB_PASSWORD}",
        "token=<redacted>",
        "privateKey: process.env.PRIVATE_KEY,",
    ],
)
def test_look_alikes_are_not_masked(text: str) -> None:
    assert DEFAULT_REDACTOR.redact_text(text) == (text, 0)


def test_redact_obj_walks_nested_structures_and_leaves_keys() -> None:
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    data = {
        "password": "not a secret on its own",
        "items": [
            {"message": f"cloned with {token}", "count": 3, "ok": True, "ratio": 0.5, "none": None},
            ("Authorization: Bearer abc123DEF456ghi789", "plain"),
        ],
        "nested": {"deeper": [["postgres://u:pw12345@db/app"]]},
        f"key {token}": "keys are left alone",
    }
    out: Any
    out, count = DEFAULT_REDACTOR.redact_obj(data)
    assert count == 3
    assert out["password"] == "not a secret on its own"
    assert out["items"][0] == {
        "message": "cloned with [REDACTED:github_token]",
        "count": 3,
        "ok": True,
        "ratio": 0.5,
        "none": None,
    }
    assert out["items"][1] == ("Authorization: Bearer [REDACTED:bearer]", "plain")
    assert isinstance(out["items"][1], tuple)
    assert out["nested"]["deeper"][0][0] == "postgres://u:[REDACTED:password]@db/app"
    assert out[f"key {token}"] == "keys are left alone"
    assert data["nested"] == {"deeper": [["postgres://u:pw12345@db/app"]]}  # the input is not modified


def test_extra_patterns_from_obligations_are_applied() -> None:
    redactor = Redactor([r"CUST-\d{6}", r"(?i)internal-only:\s*\S+"])
    out, count = redactor.redact_text("order for CUST-123456 (Internal-Only: v9) token=abcdef123456")
    assert out == "order for [REDACTED:policy] ([REDACTED:policy] token=[REDACTED:token]"
    assert count == 3
    # The built-in rules still run alongside the extra ones.
    assert DEFAULT_REDACTOR.redact_text("CUST-123456") == ("CUST-123456", 0)


def test_policy_patterns_do_not_hide_context_the_builtin_rules_kept() -> None:
    redactor = Redactor(POLICY_PATTERNS)
    assert redactor.redact_text("Authorization: Bearer abc123DEF456ghi789") == (
        "Authorization: Bearer [REDACTED:bearer]",
        1,
    )
    assert redactor.redact_text("password=hunter2 user=bob")[0] == "password=[REDACTED:password] user=bob"


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("(unclosed", "invalid redaction pattern"),
        ("[z-a]", "invalid redaction pattern"),
        (r"(a)\1", "no backreferences or lookaround"),
        (r"secret(?=[0-9])", "no backreferences or lookaround"),
        (r"(?<!x)key", "no backreferences or lookaround"),
        ("a*", "matches the empty string"),
        ("", "non-empty string"),
    ],
)
def test_bad_extra_pattern_raises_value_error_naming_it(pattern: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as info:
        Redactor(["AKIA[0-9A-Z]{16}", pattern])
    assert repr(pattern) in str(info.value)


@pytest.mark.parametrize("pattern", [*POLICY_PATTERNS, r"(?:[a-z]+\.)+example\.com", r'"(?:[^"\\]|\\.)*"'])
def test_safe_extra_patterns_are_accepted(pattern: str) -> None:
    Redactor([pattern])


@pytest.mark.parametrize(("pattern", "secret"), [("(a+)+$", "a" * 40_000), (r"(\w+\s?)*x", "w " * 20_000 + "x")])
def test_patterns_that_backtrack_exponentially_in_re_run_in_linear_time(pattern: str, secret: str) -> None:
    """A backtracking engine takes exponential time on these inputs (near-misses, then a match); RE2 takes
    linear time, so the policy may use them and they still mask what they match."""
    redactor = Redactor([pattern])
    near_miss = secret[:-1] + "!"
    assert redactor.redact_text(near_miss) == (near_miss, 0)
    assert redactor.redact_text(f"id {secret}")[0].endswith("[REDACTED:policy]")


@pytest.mark.parametrize("redactor", [DEFAULT_REDACTOR, Redactor(POLICY_PATTERNS)], ids=["default", "policy"])
def test_redacting_twice_changes_nothing_further(redactor: Redactor) -> None:
    for row in ROWS:
        once, _ = redactor.redact_text(row["text"])
        twice, count = redactor.redact_text(once)
        assert (twice, count) == (once, 0), row["text"]


def test_trigger_prefilter_never_skips_a_rule_that_matches() -> None:
    """The literal prefilter is an optimisation only: running every rule gives the same spans."""
    for row in ROWS:
        text = row["text"]
        low = text.lower()
        every = [span for rule in redaction._RULES for span in rule.spans(text, low)]
        assert DEFAULT_REDACTOR.find_spans(text) == (redaction._merge(every) if every else []), text


@pytest.mark.parametrize(
    "text",
    [
        "password=" + "a" * 200_000,
        '"password": "' + "\\" * 200_001,
        "eyJ" * 70_000,
        "a://" + "b:" * 100_000,
        "-----BEGIN PRIVATE KEY-----" * 5_000,
        "Authorization: " * 20_000,
        "key=" * 50_000,
        "sk-" + "A1b" * 60_000,
    ],
    ids=["long-value", "backslashes", "jwt-prefixes", "url-colons", "pem-headers", "auth-headers", "keys", "sk"],
)
def test_adversarial_inputs_finish(text: str) -> None:
    out, _ = DEFAULT_REDACTOR.redact_text(text)
    assert isinstance(out, str)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_arbitrary_text_never_raises_and_is_stable(text: str) -> None:
    out, count = DEFAULT_REDACTOR.redact_text(text)
    assert count >= 0 and (count > 0) == (out != text)
    assert DEFAULT_REDACTOR.redact_text(out) == (out, 0)


_NOISE = st.text(alphabet=st.sampled_from(list("abcXYZ019 =:;,'\"/@-_.{}[]\t")), max_size=60)


@settings(max_examples=300, deadline=None)
@given(row=st.sampled_from(POSITIVE), before=_NOISE, after=_NOISE)
def test_marked_secrets_never_survive_in_any_surrounding(row: dict[str, Any], before: str, after: str) -> None:
    out, _ = DEFAULT_REDACTOR.redact_text(f"{before}\n{row['text']}\n{after}")
    for secret in row["secrets"]:
        assert secret["value"] not in out
