"""Grouping accuracy and speed of opsgate's log template miner next to Drain3, on Loghub.

Both miners get the same input: the ``Content`` column of ``<System>_2k.log_structured.csv`` (the
message without its header), line by line, each system in a fresh miner, with default settings
(opsgate: ``MinerConfig()``; Drain3: ``TemplateMinerConfig()``, which has no masking). Grouping
accuracy (GA) follows Zhu et al., ICSE-SEIP 2019: a line counts as correct when the set of lines in
its predicted group equals the set of lines in its ground-truth (``EventId``) group. Lines per second
is the best of ``--repeats`` runs of ``add`` over the 2,000 lines of a system (``add_log_message``
for Drain3), in this process, opsgate and Drain3 runs alternating.

The baseline columns run the miner as it was before issue 13 (commit ``BASELINE_COMMIT``, read with
``git show`` from this checkout into a temporary module), on the same input in the same run.

The scale table replays the 16,000 lines of all systems, shuffled, with every digit replaced by a
random one (so ids, IPs, counters and times vary and lines are not repeats) and reports the
cumulative lines per second and the number of templates at several sizes.

Run: ``python bench/bench_log_patterns.py [--repeats 3] [--quick]``
(the scale table goes to 1,000,000 lines, about half a minute for both miners; ``--quick`` stops at 100,000.)
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from drain3 import TemplateMiner as Drain3Miner
from drain3.template_miner_config import TemplateMinerConfig

from opsgate.logs.patterns import TemplateMiner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for bench. and tests.support
from bench.baseline import package_at
from tests.support.accuracy import grouping_accuracy

REPO = Path(__file__).resolve().parents[1]
LOGHUB = REPO / ".." / "shared" / "datasets" / "loghub"
BASELINE_COMMIT = "89375463c6fc33030721368e53db83772f88b7bd"  # main before issue 13's pattern fixes
SYSTEMS = ("Apache", "BGL", "HDFS", "Hadoop", "Linux", "OpenStack", "Spark", "Zookeeper")


@dataclass(frozen=True)
class Labelled:
    system: str
    messages: list[str]
    truth: list[str]


@dataclass(frozen=True)
class Run:
    accuracy: float
    lines_per_second: float
    templates: int


def load(system: str) -> Labelled:
    path = LOGHUB / system / f"{system}_2k.log_structured.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return Labelled(system, [row["Content"] for row in rows], [row["EventId"] for row in rows])


def new_drain3() -> Drain3Miner:
    return Drain3Miner(config=TemplateMinerConfig())


def run_opsgate(messages: Sequence[str]) -> tuple[list[int], int, float]:
    miner = TemplateMiner()
    add = miner.add
    start = time.perf_counter()
    ids = [add(message) for message in messages]
    elapsed = time.perf_counter() - start
    return [miner.resolve(i) for i in ids], len(miner.templates()), elapsed


def load_baseline() -> ModuleType | None:
    """The pattern package at ``BASELINE_COMMIT`` as module ``baseline_patterns``, or None without git."""
    return package_at(
        BASELINE_COMMIT, "logs/patterns", ("__init__", "accuracy", "masking", "miner", "tokens"), "baseline_patterns"
    )


BASELINE = load_baseline()


def run_baseline(messages: Sequence[str]) -> tuple[list[int], int, float]:
    assert BASELINE is not None
    miner = BASELINE.TemplateMiner()
    add = miner.add
    start = time.perf_counter()
    ids = [add(message) for message in messages]
    elapsed = time.perf_counter() - start
    return [miner.resolve(i) for i in ids], len(miner.templates()), elapsed


def run_drain3(messages: Sequence[str]) -> tuple[list[int], int, float]:
    miner = new_drain3()
    add = miner.add_log_message
    start = time.perf_counter()
    ids = [add(message)["cluster_id"] for message in messages]
    elapsed = time.perf_counter() - start
    return ids, len(miner.drain.clusters), elapsed


Runner = Callable[[Sequence[str]], tuple[list[int], int, float]]


def measure_all(data: Labelled, repeats: int) -> tuple[Run, Run, Run | None]:
    """Runs of opsgate, Drain3 and the baseline alternate, so that load from other processes hits all alike."""
    runners: list[Runner] = [run_opsgate, run_drain3] + ([run_baseline] if BASELINE is not None else [])
    best = dict.fromkeys(runners, float("inf"))
    results: dict[Runner, tuple[list[int], int]] = {}
    for _ in range(repeats):
        for runner in runners:
            ids, templates, elapsed = runner(data.messages)
            best[runner] = min(best[runner], elapsed)
            results[runner] = (ids, templates)
    runs = [
        Run(grouping_accuracy(results[r][0], data.truth), len(data.messages) / best[r], results[r][1]) for r in runners
    ]
    return runs[0], runs[1], runs[2] if len(runs) > 2 else None


def accuracy_table(repeats: int) -> None:
    print("Input: the Content column of <System>_2k.log_structured.csv (message without header), for all miners.")
    print(f"Lines/s: best of {repeats} alternating runs per system. GA: Zhu et al. 2019 grouping accuracy.")
    print(f"baseline: opsgate's miner at {BASELINE_COMMIT[:10]} (before issue 13), same run.\n")
    if BASELINE is None:
        print("(baseline unavailable: no git history in this checkout; its columns read 0)\n")
    header = (
        f"{'system':<10} | {'opsgate GA':>10} | {'baseline GA':>11} | {'Drain3 GA':>9} | {'opsgate lines/s':>15}"
        f" | {'baseline lines/s':>16} | {'Drain3 lines/s':>14}"
    )
    header += f" | {'opsgate tpl':>11} | {'Drain3 tpl':>10} | {'truth tpl':>9}"
    print(header)
    print("-" * len(header))
    none = Run(0.0, 0.0, 0)
    ours: list[Run] = []
    theirs: list[Run] = []
    before: list[Run] = []
    lines = 0
    for system in SYSTEMS:
        data = load(system)
        lines += len(data.messages)
        mine, drain, old = measure_all(data, repeats)
        old = old or none
        ours.append(mine)
        theirs.append(drain)
        before.append(old)
        print(
            f"{system:<10} | {mine.accuracy:>10.3f} | {old.accuracy:>11.3f} | {drain.accuracy:>9.3f}"
            f" | {mine.lines_per_second:>15,.0f} | {old.lines_per_second:>16,.0f} | {drain.lines_per_second:>14,.0f}"
            f" | {mine.templates:>11} | {drain.templates:>10} | {len(set(data.truth)):>9}"
        )
    print("-" * len(header))

    def total(runs: list[Run]) -> float:
        if any(r.lines_per_second == 0 for r in runs):
            return 0.0
        return lines / sum(len(load(s).messages) / r.lines_per_second for s, r in zip(SYSTEMS, runs, strict=True))

    print(
        f"{'mean':<10} | {statistics.mean(r.accuracy for r in ours):>10.3f}"
        f" | {statistics.mean(r.accuracy for r in before):>11.3f}"
        f" | {statistics.mean(r.accuracy for r in theirs):>9.3f}"
        f" | {statistics.mean(r.lines_per_second for r in ours):>15,.0f}"
        f" | {statistics.mean(r.lines_per_second for r in before):>16,.0f}"
        f" | {statistics.mean(r.lines_per_second for r in theirs):>14,.0f} |"
    )
    print(
        f"{'all lines':<10} | {'':>10} | {'':>11} | {'':>9} | {total(ours):>15,.0f} | {total(before):>16,.0f}"
        f" | {total(theirs):>14,.0f} |"
    )
    print(
        f"\nmin GA: opsgate {min(r.accuracy for r in ours):.3f}, baseline {min(r.accuracy for r in before):.3f}; "
        f"goal: mean >= 0.98 and none below 0.90. "
        f"opsgate/Drain3 lines/s over all lines: {total(ours) / total(theirs):.2f}x\n"
    )


_DIGITS = re.compile(r"\d+")


def varied_corpus(size: int, seed: int = 11) -> list[str]:
    """``size`` lines: the 16k Loghub messages, shuffled and repeated, every digit redrawn at random."""
    rng = random.Random(seed)
    base = [message for system in SYSTEMS for message in load(system).messages]
    out: list[str] = []

    def redraw(match: re.Match[str]) -> str:
        width = len(match.group())
        return str(rng.randrange(10**width)).zfill(width)

    while len(out) < size:
        rng.shuffle(base)
        out.extend(_DIGITS.sub(redraw, message) for message in base[: size - len(out)])
    return out


def scale_table(sizes: Sequence[int]) -> None:
    corpus = varied_corpus(max(sizes))
    print(f"Scale: Loghub Content lines of all 8 systems, shuffled, digits redrawn; {max(sizes):,} lines fed once.")
    header = (
        f"{'lines':>9} | {'opsgate lines/s':>15} | {'Drain3 lines/s':>14} | {'opsgate tpl':>11} | {'Drain3 tpl':>10}"
    )
    print(header)
    print("-" * len(header))
    ours = TemplateMiner()
    theirs = new_drain3()
    our_add, their_add = ours.add, theirs.add_log_message
    done = 0
    our_time = their_time = 0.0
    for size in sizes:
        chunk = corpus[done:size]
        start = time.perf_counter()
        for message in chunk:
            our_add(message)
        our_time += time.perf_counter() - start
        start = time.perf_counter()
        for message in chunk:
            their_add(message)
        their_time += time.perf_counter() - start
        done = size
        print(
            f"{size:>9,} | {done / our_time:>15,.0f} | {done / their_time:>14,.0f}"
            f" | {len(ours.templates()):>11} | {len(theirs.drain.clusters):>10}"
        )
    print("(lines/s are cumulative from the first line; tpl = templates at that point)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs per system for lines/s (best is kept)")
    parser.add_argument("--quick", action="store_true", help="scale table up to 100,000 lines only (else 1,000,000)")
    args = parser.parse_args()
    accuracy_table(max(1, args.repeats))
    scale_table((30_000, 100_000) if args.quick else (100_000, 300_000, 1_000_000))


if __name__ == "__main__":
    main()
