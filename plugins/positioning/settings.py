"""Tunable thresholds, in one documented place. Each can be overridden by an environment variable."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields


def env_float(name: str, default: float) -> float:
    """A float from the environment, ``default`` when unset or empty; a clear error naming the variable."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} must be a number") from None


@dataclass(frozen=True)
class SkewThresholds:
    """Skew label of ``avg_ls_ratio`` (design.md, Definitions): checked top to bottom.

    ``>= extreme_long`` EXTREME_LONG, ``>= long_skewed`` LONG_SKEWED, ``<= extreme_short`` EXTREME_SHORT,
    ``<= short_skewed`` SHORT_SKEWED, otherwise NEUTRAL; no ratio at all is NO_DATA.
    Environment: POSITIONING_SKEW_EXTREME_LONG, _LONG_SKEWED, _EXTREME_SHORT, _SHORT_SKEWED.
    """

    extreme_long: float = 2.5
    long_skewed: float = 1.25
    extreme_short: float = 0.4
    short_skewed: float = 0.8

    @classmethod
    def from_env(cls) -> SkewThresholds:
        defaults = cls()
        return cls(
            **{f.name: env_float(f"POSITIONING_SKEW_{f.name.upper()}", getattr(defaults, f.name)) for f in fields(cls)}
        )


@dataclass(frozen=True)
class SignalThresholds:
    """The rules of ``marts.positioning_signals`` (include/sql/models/140_marts_positioning_signals.sql).

    "Extreme" is relative to the symbol's own history, never a fixed ratio: the consensus long/short ratio's
    30-day z-score (``marts.skew_history.consensus_z_30d``) and the total OI's 30-day percentile
    (``marts.oi_change.total_oi_pct_30d``). Changes are over 4 hours. Comparisons are inclusive (a value
    exactly at a threshold fires). Each firing rule has a score, 1.0 exactly at its thresholds and growing
    with how far beyond them the numbers are, so signals of different kinds rank on one scale:

    * CASCADE_DOWN_RISK  ``total_oi_pct_30d >= large_oi_percentile`` and ``consensus_z_30d >= skew_extreme_z``;
      score ``(z / skew_extreme_z) * (oi_pct / large_oi_percentile)``.
    * SQUEEZE_RISK       ``total_oi_pct_30d >= large_oi_percentile`` and ``consensus_z_30d <= -skew_extreme_z``;
      score ``(-z / skew_extreme_z) * (oi_pct / large_oi_percentile)``.
    * SHORT_CAPITULATION ``total_oi_change_4h_pct <= -capitulation_oi_drop_pct`` and
      ``mark_price_change_4h_pct >= capitulation_price_rise_pct``;
      score ``(-oi_change / capitulation_oi_drop_pct) * (price_change / capitulation_price_rise_pct)``.
    * BUILDUP            ``total_oi_change_4h_pct >= buildup_oi_rise_pct`` and
      ``abs(mark_price_change_4h_pct) <= buildup_price_flat_pct``; score ``oi_change / buildup_oi_rise_pct``.

    ``window_min_observations``: a rolling z-score or percentile needs at least this many observations in its
    window (else NULL, and no rule depending on it fires).
    Environment: POSITIONING_SIGNAL_<FIELD NAME IN UPPER CASE>, e.g. POSITIONING_SIGNAL_SKEW_EXTREME_Z=2.5.
    """

    skew_extreme_z: float = 2.0
    large_oi_percentile: float = 80.0  # the symbol's top quintile of total OI over 30 days
    capitulation_oi_drop_pct: float = 2.0
    capitulation_price_rise_pct: float = 1.0
    buildup_oi_rise_pct: float = 3.0
    buildup_price_flat_pct: float = 0.5
    window_min_observations: float = 24.0  # one day of hourly intervals

    def __post_init__(self) -> None:
        for field in fields(self):
            if not getattr(self, field.name) > 0:
                raise ValueError(f"signal threshold {field.name} must be positive, got {getattr(self, field.name)}")
        if self.large_oi_percentile > 100:
            raise ValueError(f"large_oi_percentile is a percentile (0-100], got {self.large_oi_percentile}")

    @classmethod
    def from_env(cls) -> SignalThresholds:
        defaults = cls()
        return cls(
            **{
                f.name: env_float(f"POSITIONING_SIGNAL_{f.name.upper()}", getattr(defaults, f.name))
                for f in fields(cls)
            }
        )
