"""Grouping accuracy of a log parser against ground truth (Zhu et al., ICSE-SEIP 2019).

A line counts as correctly grouped when the set of lines in its predicted group equals the set
of lines in its ground-truth group.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence


def grouping_accuracy(predicted: Sequence[Hashable], truth: Sequence[Hashable]) -> float:
    """Share of lines whose predicted group holds exactly the lines of their ground-truth group."""
    if len(predicted) != len(truth):
        raise ValueError(f"predicted has {len(predicted)} labels but truth has {len(truth)}; they must match")
    if not truth:
        return 1.0
    truth_sizes: dict[Hashable, int] = defaultdict(int)
    for label in truth:
        truth_sizes[label] += 1
    members: dict[Hashable, list[int]] = defaultdict(list)
    for index, label in enumerate(predicted):
        members[label].append(index)
    correct = 0
    for lines in members.values():
        truth_labels = {truth[i] for i in lines}
        if len(truth_labels) == 1 and truth_sizes[next(iter(truth_labels))] == len(lines):
            correct += len(lines)
    return correct / len(truth)
