"""Detector settings: one default configuration meant to work across operational metrics."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DetectorConfig:
    """Defaults are in units of time, so they hold for any sampling step, each with a floor in
    points so that a coarsely sampled series (one point every 30-60 minutes) still gets windows
    holding enough samples to be judged (at such a step a 30-minute median would be one point).

    The defaults were chosen from first principles (one-day baseline, one-week memory of the
    series' range, normal-tail z thresholds) and checked, not fitted, on the NAB series.
    """

    season_seconds: float = 86_400.0  # the seasonal period looked for
    min_season_autocorr: float = 0.3  # lag-one-period autocorrelation that counts as seasonal
    season_history_periods: int = 7  # past periods whose median gives the seasonal profile
    baseline_seconds: float = 86_400.0  # trailing window for the level and scale
    hop_fraction: float = 1 / 8  # level and scale are refreshed every window * hop_fraction
    warmup_windows: float = 2.0  # no flags before this many baseline windows of history ...
    min_history_points: int = 60  # ... or, for short series, a quarter of it (at least this)
    range_history_seconds: float = 7 * 86_400.0  # memory for "never seen before" extremes
    range_margin: float = 0.1  # a new extreme must beat the old one by this share of its excursion
    spike_z: float = 6.0  # single-point robust z for a spike
    sustained_z: float = 3.0  # robust z of the short median for a sustained deviation
    sustained_seconds: float = 1_800.0  # the short median's span ...
    min_sustained_points: int = 3  # ... and at least this many points (one point is not "sustained")
    merge_gap_seconds: float = 1_800.0  # flags closer than this form one anomaly
    relative_scale_floor: float = 0.01  # scale is at least this share of the level, and at least the
    # series' resolution (the smallest step between its distinct values in the baseline window)
    min_points: int = 30  # fewer usable points than this: the series is too short to judge
