"""Windows found and false positives on NAB, for opsgate's detector and a rolling z-score baseline.

Files: NAB's ``realAWSCloudwatch``, ``artificialWithAnomaly`` and ``artificialNoAnomaly``. A labelled
window is *found* when at least one flagged point lies inside it; every flagged point outside all
windows is a false positive. Both detectors use one configuration for every file.

Baseline: plain rolling z-score, mean and population standard deviation of the previous day of
points (288 at NAB's five-minute step; no score until a full day is there), flag when |z| > 4.

The last line runs the detector as it was before issue 13 (commit ``BASELINE_COMMIT``, read with
``git show`` from this checkout) on the same files, in the same run.

Run: ``python bench/bench_nab.py``
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for bench.baseline
from bench.baseline import package_at

from opsgate.metrics.anomaly import DetectorConfig, flag_points

REPO = Path(__file__).resolve().parents[1]
NAB = REPO / ".." / "shared" / "datasets" / "nab"
BASELINE_COMMIT = "89375463c6fc33030721368e53db83772f88b7bd"  # main before issue 13's detector changes
GROUPS = ("realAWSCloudwatch", "artificialWithAnomaly", "artificialNoAnomaly")
DAY = 86_400.0

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class NabFile:
    key: str
    times: FloatArray
    values: FloatArray
    windows: list[tuple[float, float]]


@dataclass(frozen=True)
class Tally:
    windows: int
    found: int
    false_points: int
    false_events: int = 0
    windows_in_warmup: int = 0


def _unix(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def load_nab(root: Path = NAB) -> list[NabFile]:
    labels = json.loads((root / "labels" / "combined_windows.json").read_text())
    files = []
    for group in GROUPS:
        for path in sorted((root / "data" / group).glob("*.csv")):
            with path.open() as fh:
                rows = list(csv.reader(fh))[1:]
            key = f"{group}/{path.name}"
            files.append(
                NabFile(
                    key=key,
                    times=np.array([_unix(r[0]) for r in rows]),
                    values=np.array([float(r[1]) for r in rows]),
                    windows=[(_unix(a), _unix(b)) for a, b in labels[key]],
                )
            )
    return files


def rolling_z_flags(values: FloatArray, window: int, limit: float = 4.0) -> BoolArray:
    """|z| > limit against the mean and standard deviation of the previous ``window`` points."""
    c = np.concatenate(([0.0], np.cumsum(values)))
    c2 = np.concatenate(([0.0], np.cumsum(values * values)))
    hi = np.arange(values.size)
    lo = np.maximum(hi - window, 0)
    n = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (c[hi] - c[lo]) / n
        sd = np.sqrt(np.maximum((c2[hi] - c2[lo]) / n - mean * mean, 0.0))
        z = (values - mean) / sd
    flags: BoolArray = (n >= window) & np.isfinite(z) & (np.abs(z) > limit)
    return flags


def tally(times: FloatArray, flags: BoolArray, windows: list[tuple[float, float]]) -> Tally:
    inside = np.zeros(times.size, dtype=bool)
    found = 0
    for a, b in windows:
        in_window = (times >= a) & (times <= b)
        inside |= in_window
        found += bool(np.any(flags & in_window))
    return Tally(len(windows), found, int(np.count_nonzero(flags & ~inside)))


def baseline_tally(f: NabFile) -> Tally:
    step = float(np.median(np.diff(f.times)))
    return tally(f.times, rolling_z_flags(f.values, round(DAY / step)), f.windows)


def detector_tally(f: NabFile, config: DetectorConfig | None = None, flag: Any = None) -> Tally:
    cfg = config or DetectorConfig()
    result = flag_points(f.times, f.values, cfg) if flag is None else flag(f.times, f.values)
    points = tally(result.times, result.flags, f.windows)
    false_events = sum(1 for a in result.anomalies if not any(a.end >= lo and a.start <= hi for lo, hi in f.windows))
    in_warmup = sum(1 for lo, _ in f.windows if lo < result.judged_from)
    return Tally(points.windows, points.found, points.false_points, false_events, in_warmup)


def _detector_before_issue_13() -> Any:
    """``flag_points`` of the anomaly package at ``BASELINE_COMMIT`` (read with ``git show``), or None."""
    baseline = package_at(
        BASELINE_COMMIT,
        "metrics/anomaly",
        ("__init__", "_config", "_events", "_grid", "_model", "_robust"),
        "baseline_anomaly",
    )
    return None if baseline is None else baseline.flag_points


def totals(tallies: list[Tally]) -> Tally:
    return Tally(
        sum(t.windows for t in tallies),
        sum(t.found for t in tallies),
        sum(t.false_points for t in tallies),
        sum(t.false_events for t in tallies),
        sum(t.windows_in_warmup for t in tallies),
    )


def main() -> None:
    files = load_nab()
    ours = [detector_tally(f) for f in files]
    base = [baseline_tally(f) for f in files]
    print(
        f"{'file':58s} {'win':>3s} | {'opsgate found':>13s} {'FP pts':>6s} {'FP events':>9s} |"
        f" {'z-score found':>13s} {'FP pts':>6s}"
    )
    for f, o, b in zip(files, ours, base, strict=True):
        print(
            f"{f.key:58s} {o.windows:3d} | {o.found:13d} {o.false_points:6d} {o.false_events:9d} |"
            f" {b.found:13d} {b.false_points:6d}"
        )
    o, b = totals(ours), totals(base)
    print("-" * 118)
    print(
        f"{'TOTAL':58s} {o.windows:3d} | {o.found:13d} {o.false_points:6d} {o.false_events:9d} |"
        f" {b.found:13d} {b.false_points:6d}"
    )
    print()
    print(
        f"opsgate detector : {o.found}/{o.windows} windows found, {o.false_points} false-positive points "
        f"({o.false_events} false-positive anomalies after merging runs)"
    )
    print(f"rolling z-score  : {b.found}/{b.windows} windows found, {b.false_points} false-positive points")
    ratio = o.false_points / b.false_points if b.false_points else float("nan")
    print(
        f"false-positive points, opsgate / baseline: {ratio:.3f}  (goal <= 0.100);"
        f" windows found: {o.found} vs {b.found} (goal >=)"
    )
    old = _detector_before_issue_13()
    if old is not None:
        t = totals([detector_tally(f, flag=old) for f in files])
        print(
            f"detector before issue 13 ({BASELINE_COMMIT[:10]}): {t.found}/{t.windows} windows found, "
            f"{t.false_points} false-positive points"
        )
    print(
        "windows starting inside the detector's warm-up (two days; a quarter of a shorter series): "
        f"{o.windows_in_warmup} (counted as findable all the same)"
    )


if __name__ == "__main__":
    main()
