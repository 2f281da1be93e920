"""Speed of ``rank_series`` over 1,000 synthetic series of 1,440 points, next to a rolling z-score.

Each series is five days at a five-minute step with a daily cycle, noise, and (for one in five)
an injected spike, level shift or dip in the last day. The baseline is the plain rolling z-score
(one-day trailing mean and standard deviation, |z| > 4) run over the same series in the same process.

Run: ``python bench/bench_anomaly_speed.py [--series 1000] [--points 1440] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from opsgate.metrics.anomaly import rank_series

STEP = 300.0
DAY_POINTS = int(86_400 / STEP)

Series = dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]


def make_series(count: int, points: int, seed: int = 7) -> tuple[Series, set[str]]:
    rng = np.random.default_rng(seed)
    t: NDArray[np.float64] = 1_700_000_000.0 + STEP * np.arange(points, dtype=np.float64)
    phase = 2 * np.pi * np.arange(points) / DAY_POINTS
    out: Series = {}
    injected: set[str] = set()
    for i in range(count):
        level = rng.uniform(10, 1000)
        v: NDArray[np.float64] = level * (1 + 0.3 * np.sin(phase + rng.uniform(0, 2 * np.pi)))
        v += rng.normal(0, 0.03 * level, points)
        name = f"series-{i:04d}"
        if i % 5 == 0:
            at = int(rng.integers(points - DAY_POINTS // 2, points - 10))
            kind = i % 3
            if kind == 0:
                v[at] += 1.5 * level
            elif kind == 1:
                v[at:] += 0.8 * level
            else:
                v[at : at + 24] -= 0.7 * level
            injected.add(name)
        out[name] = (t, v)
    return out, injected


def rolling_z_flags(values: NDArray[np.float64], window: int = DAY_POINTS, limit: float = 4.0) -> int:
    """Plain rolling z-score over the previous ``window`` points; returns the count of flagged points."""
    c = np.concatenate(([0.0], np.cumsum(values)))
    c2 = np.concatenate(([0.0], np.cumsum(values * values)))
    hi = np.arange(values.size)
    lo = np.maximum(hi - window, 0)
    n = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (c[hi] - c[lo]) / n
        sd = np.sqrt(np.maximum((c2[hi] - c2[lo]) / n - mean * mean, 0.0))
        z = (values - mean) / sd
    return int(np.count_nonzero((n >= window) & (np.abs(z) > limit)))


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--points", type=int, default=1440)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    series, injected = make_series(args.series, args.points)
    last_day = (float(next(iter(series.values()))[0][-DAY_POINTS]), float("inf"))

    ranked = rank_series(series, None)  # warm-up run, also used for the recall check below
    flagged = {name for name, _ in ranked}
    in_window = {name for name, _ in rank_series(series, last_day)}

    ours_all = timed(lambda: rank_series(series, None), args.repeats)
    ours_window = timed(lambda: rank_series(series, last_day), args.repeats)
    base = timed(lambda: [rolling_z_flags(v) for _, v in series.values()], args.repeats)

    print(f"{args.series} series x {args.points} points, {args.repeats} runs each (median seconds)")
    print(f"  rank_series, whole series     : {statistics.median(ours_all):.3f} s")
    print(f"  rank_series, window=last day  : {statistics.median(ours_window):.3f} s")
    print(f"  rolling z-score baseline      : {statistics.median(base):.3f} s")
    print(f"  ratio rank_series / baseline  : {statistics.median(ours_all) / statistics.median(base):.1f}x")
    hits = len(injected & in_window)
    print(
        f"  injected anomalies found in last-day window: {hits}/{len(injected)}; "
        f"series flagged without injection: {len(in_window - injected)}; "
        f"series with any anomaly over the whole span: {len(flagged)}"
    )


if __name__ == "__main__":
    main()
