"""How well and how fast secrets are masked, against baselines in the same run.

    python bench/bench_redaction.py [--replicate 10] [--repeats 3] [--show-errors 5]

Accuracy, on tests/data/redaction_corpus.jsonl (regenerate with bench/make_redaction_corpus.py):
- per labelled kind: secrets found (the whole labelled span masked) and missed (false negatives), and
  how many were masked under the expected kind;
- false positives: masks that touch no labelled secret, and lines without secrets that got a mask;
- recall (secrets found / secrets) and precision (masks touching a secret / masks).

Throughput (lines/s, MB/s of `redact_text` over every line) on the corpus replicated and on the plain
loghub logs (16,000 lines without secrets), for:
- `opsgate` : DEFAULT_REDACTOR (trigger prefilter, built-in rules),
- `opsgate+policy` : Redactor with the extra patterns of policies/data.json, as the gate runs it,
- `naive loop` : the same rules, every regex run on every line with no prefilter (same output),
- `policy regexes only` : the five data.json patterns alone, the way the placeholder redactor worked.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opsgate import redaction
from opsgate.redaction import DEFAULT_REDACTOR, Redactor, Span

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "data" / "redaction_corpus.jsonl"
LOGHUB = REPO / ".." / "shared" / "datasets" / "loghub"
POLICY_DATA = REPO / "policies" / "data.json"

SpanFinder = Callable[[str], list[Span]]


def load_corpus(path: Path = CORPUS) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def policy_patterns() -> list[str]:
    data = json.loads(POLICY_DATA.read_text(encoding="utf-8"))
    return list(data["opsgate_config"]["redact_patterns"])


def naive_finder() -> SpanFinder:
    """Every built-in rule's regex over the whole line, no trigger prefilter."""
    rules = list(redaction._RULES)

    def find(text: str) -> list[Span]:
        low = text.lower()
        spans = [span for rule in rules for span in rule.spans(text, low)]
        return redaction._merge(spans) if spans else spans

    return find


def regex_only_finder(patterns: Sequence[str]) -> SpanFinder:
    compiled = [re.compile(p) for p in patterns]

    def find(text: str) -> list[Span]:
        spans = [Span(m.start(), m.end(), "policy") for p in compiled for m in p.finditer(text) if m.end() > m.start()]
        return redaction._merge(spans) if spans else spans

    return find


@dataclass
class Accuracy:
    per_kind: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    masks: int = 0
    masks_on_secrets: int = 0
    false_positive_masks: int = 0
    clean_lines: int = 0
    clean_lines_masked: int = 0
    missed_examples: list[str] = field(default_factory=list)
    fp_examples: list[str] = field(default_factory=list)

    @property
    def secrets(self) -> int:
        return sum(c["total"] for c in self.per_kind.values())

    @property
    def found(self) -> int:
        return sum(c["found"] for c in self.per_kind.values())

    @property
    def recall(self) -> float:
        return self.found / self.secrets if self.secrets else 1.0

    @property
    def precision(self) -> float:
        return self.masks_on_secrets / self.masks if self.masks else 1.0


def evaluate(find: SpanFinder, rows: list[dict[str, Any]]) -> Accuracy:
    acc = Accuracy()
    for row in rows:
        text = str(row["text"])
        secrets = row["secrets"]
        assert isinstance(secrets, list)
        spans = find(text)
        acc.masks += len(spans)
        if not secrets:
            acc.clean_lines += 1
            acc.clean_lines_masked += bool(spans)
        for span in spans:
            if any(span.start < s["end"] and span.end > s["start"] for s in secrets):
                acc.masks_on_secrets += 1
            else:
                acc.false_positive_masks += 1
                acc.fp_examples.append(f"[{span.kind}] {text[max(0, span.start - 40) : span.end + 10]!r}")
        for secret in secrets:
            counts = acc.per_kind[secret["kind"]]
            counts["total"] += 1
            covering = [s for s in spans if s.start <= secret["start"] and s.end >= secret["end"]]
            if covering:
                counts["found"] += 1
                counts["same_kind"] += covering[0].kind == secret["kind"]
            else:
                counts["missed"] += 1
                acc.missed_examples.append(f"[{secret['kind']}] {secret['value'][:60]!r} in {text[:160]!r}")
    return acc


def leaked_values(redactor: Redactor, rows: list[dict[str, Any]]) -> int:
    """Labelled secret values still present in `redact_text` output (must be 0 for found secrets)."""
    leaks = 0
    for row in rows:
        out, _ = redactor.redact_text(str(row["text"]))
        secrets = row["secrets"]
        assert isinstance(secrets, list)
        leaks += sum(1 for s in secrets if str(s["value"]) in out)
    return leaks


def throughput(fn: Callable[[str], object], lines: list[str], repeats: int) -> tuple[float, float]:
    size = sum(len(line.encode("utf-8")) for line in lines)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for line in lines:
            fn(line)
        best = min(best, time.perf_counter() - start)
    return len(lines) / best, size / best / 1e6


def loghub_lines() -> list[str]:
    lines: list[str] = []
    for path in sorted(LOGHUB.glob("*/*_2k.log")):
        lines.extend(path.read_text(encoding="utf-8", errors="replace").splitlines())
    return lines


def print_accuracy(name: str, acc: Accuracy, show: int) -> None:
    print(f"\n== {name}: recall {acc.recall:.3f} ({acc.found}/{acc.secrets}), precision {acc.precision:.3f} "
          f"({acc.masks_on_secrets}/{acc.masks} masks on secrets), false-positive masks {acc.false_positive_masks}, "
          f"clean lines masked {acc.clean_lines_masked}/{acc.clean_lines}")  # fmt: skip
    if show:
        for example in acc.missed_examples[:show]:
            print(f"   missed: {example}")
        for example in acc.fp_examples[:show]:
            print(f"   false positive: {example}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicate", type=int, default=10, help="corpus copies for the throughput run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best is reported")
    parser.add_argument("--show-errors", type=int, default=5, help="missed / false-positive examples to print")
    args = parser.parse_args()

    rows = load_corpus()
    patterns = policy_patterns()
    with_policy = Redactor(patterns)
    print(f"corpus: {len(rows)} lines, {sum(1 for r in rows if r['secrets'])} with secrets, "
          f"{sum(len(r['secrets']) for r in rows)} labelled secrets")  # fmt: skip

    main_acc = evaluate(DEFAULT_REDACTOR.find_spans, rows)
    print("\nper kind (DEFAULT_REDACTOR):")
    print(f"  {'kind':<22}{'secrets':>8}{'found':>7}{'missed':>7}{'same kind':>10}")
    for kind in sorted(main_acc.per_kind):
        c = main_acc.per_kind[kind]
        print(f"  {kind:<22}{c['total']:>8}{c['found']:>7}{c['missed']:>7}{c['same_kind']:>10}")
    print_accuracy("opsgate (DEFAULT_REDACTOR)", main_acc, args.show_errors)
    print(f"   secret values left in redact_text output: {leaked_values(DEFAULT_REDACTOR, rows)}")
    print_accuracy("opsgate+policy (extra patterns of policies/data.json)", evaluate(with_policy.find_spans, rows),
                   args.show_errors)  # fmt: skip
    print_accuracy("policy regexes only (baseline)", evaluate(regex_only_finder(patterns), rows), 0)

    naive = naive_finder()
    mismatches = sum(1 for r in rows if naive(str(r["text"])) != DEFAULT_REDACTOR.find_spans(str(r["text"])))
    print(f"\nnaive loop vs opsgate: {mismatches} lines with different spans (expected 0)")

    corpus_lines = [str(r["text"]) for r in rows] * args.replicate
    plain = loghub_lines()
    plain_masks = sum(len(DEFAULT_REDACTOR.find_spans(line)) for line in plain)
    print(f"loghub plain logs: {len(plain)} lines, {plain_masks} masks by DEFAULT_REDACTOR")

    contenders: list[tuple[str, Callable[[str], object]]] = [
        ("opsgate", DEFAULT_REDACTOR.redact_text),
        ("opsgate+policy", with_policy.redact_text),
        ("naive loop", naive),
        ("policy regexes only", regex_only_finder(patterns)),
    ]
    print(f"\nthroughput, best of {args.repeats} ({len(corpus_lines)} corpus lines, {len(plain)} loghub lines):")
    print(f"  {'redactor':<22}{'corpus lines/s':>16}{'MB/s':>8}{'loghub lines/s':>16}{'MB/s':>8}")
    base: tuple[float, float] | None = None
    results = []
    for name, fn in contenders:
        c_lps, c_mbs = throughput(fn, corpus_lines, args.repeats)
        p_lps, p_mbs = throughput(fn, plain, args.repeats)
        results.append((name, c_lps, p_lps))
        print(f"  {name:<22}{c_lps:>16,.0f}{c_mbs:>8.1f}{p_lps:>16,.0f}{p_mbs:>8.1f}")
        if name == "naive loop":
            base = (c_lps, p_lps)
    if base:
        for name, c_lps, p_lps in results:
            print(f"  {name:<22} x{c_lps / base[0]:.1f} corpus, x{p_lps / base[1]:.1f} loghub vs naive loop")


if __name__ == "__main__":
    main()
