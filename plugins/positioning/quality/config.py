"""Configuration of the gate: the thresholds (:class:`QualityConfig`, overridable from the environment), the names
of the three expectation suites, and the error a blocked interval raises."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from positioning.settings import env_float

SUITE_FACT_ROWS = "positioning.fact_rows"
SUITE_RAW_ROWS = "positioning.raw_rows"
SUITE_VENUE_COVERAGE = "positioning.venue_coverage"
SUITES = (SUITE_FACT_ROWS, SUITE_RAW_ROWS, SUITE_VENUE_COVERAGE)


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds of the gate, in one place. Each is overridable by ``POSITIONING_QUALITY_<NAME>`` (upper case),
    e.g. ``POSITIONING_QUALITY_COMPLETENESS_FLOOR=0.8``; ``POSITIONING_QUALITY_DATA_DOCS=0`` skips the HTML."""

    ratio_min: float = 0.0  # exclusive: a long/short ratio of 0 or below is impossible
    ratio_max: float = 100.0  # exclusive
    share_sum_tolerance: float = 1e-3  # |long_share + short_share - 1|
    ratio_vs_shares_tolerance: float = 0.01  # |ratio / (long_share / short_share) - 1|
    usd_vs_coins_x_mark_tolerance: float = 0.005  # |oi_usd / (oi_coins x mark_price) - 1|, venue-reported USD
    oi_sides_tolerance: float = 0.001  # |(long OI + short OI) / total OI - 1| (venues that report the OI split)
    # A current value (OI, mark, funding, the OI split) may be stamped up to this long after the interval end,
    # plus the venue's extract duration: a run triggered from the UI later in the following hour still passes,
    # a backfill of an old interval (which can only fetch today's value) does not. Default: one hour.
    current_value_tolerance_minutes: float = 60.0
    completeness_floor: float = 0.5  # present / expected symbols per venue
    drift_factor: float = 3.0  # venue total OI USD vs its previous published interval, either way
    archive_vs_rest_tolerance: float = 0.01  # |archive / REST - 1| where both sources have a bucket (bulk fill)
    data_docs: float = 1.0  # 0 = do not render Data Docs

    @classmethod
    def from_env(cls) -> QualityConfig:
        defaults = cls()
        return cls(
            **{
                f.name: env_float(f"POSITIONING_QUALITY_{f.name.upper()}", getattr(defaults, f.name))
                for f in fields(cls)
            }
        )


class QualityGateError(RuntimeError):
    """A batch-level expectation failed: nothing of the interval was published. ``summary`` is the alert hook's."""

    def __init__(self, message: str, summary: dict[str, Any]):
        super().__init__(message)
        self.summary = summary
