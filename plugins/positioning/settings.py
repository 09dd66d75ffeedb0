"""Tunable thresholds, in one documented place. Each can be overridden by an environment variable."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields


def _env_float(name: str, default: float) -> float:
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
            **{f.name: _env_float(f"POSITIONING_SKEW_{f.name.upper()}", getattr(defaults, f.name)) for f in fields(cls)}
        )
