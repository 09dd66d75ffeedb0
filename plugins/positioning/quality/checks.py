"""The check catalogue: every expectation of the gate as one row of :data:`CATALOGUE`, in evaluation order.

A row says which suite validates it, what a failure does (its level: the row is quarantined, the interval is
blocked, or a warning is recorded), which great-expectations class checks which column of the suite's frame
(the derived columns are built in :mod:`positioning.quality.frames`), its bounds and, in words, what it
requires (the ``description`` recorded with each result and quoted in quarantine reasons).

Bounds and descriptions are templates over :class:`~positioning.quality.config.QualityConfig`, resolved by
:func:`checks`. A bound is a number (used as is), the name of a config field, or ``1-<field>``, ``1+<field>``,
``1/<field>``; a description is a ``str.format`` template over the config's fields.

What "row" means for cross-metric checks: the row that is published from the disagreeing figures is the one
quarantined. OI USD vs coins x mark quarantines the ``oi_usd`` row (coins and mark are the venue's primary figures
and stand on their own checks); ratio vs shares and shares summing to one quarantine the ratio row; long + short
OI vs total quarantines the ``oi_usd`` (total) row. A figure derived from a bad input (OI USD = negative coins x
mark) fails its own checks, so it is quarantined too.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from positioning.quality.config import SUITE_FACT_ROWS, SUITE_RAW_ROWS, SUITE_VENUE_COVERAGE, QualityConfig

QUARANTINE, BLOCK, WARNING = "quarantine", "block", "warning"  # what a failure of a check does

Bound = int | float | str | None


@dataclass(frozen=True)
class CheckSpec:
    """One row of the catalogue (thresholds still unresolved: see the module docstring)."""

    name: str  # the ``expectation`` column of the quality tables
    suite: str
    level: str  # QUARANTINE (row), BLOCK (batch) or WARNING
    expectation: str  # the great_expectations.expectations class name
    column: str | tuple[str, ...]  # a tuple is a compound key (``column_list``)
    description: str
    low: Bound = None  # min_value
    high: Bound = None  # max_value
    strict_min: bool = False  # the low bound is exclusive
    strict_max: bool = False


@dataclass(frozen=True)
class Check:
    """One resolved expectation: its name, suite, level, GE type and kwargs, and its description."""

    name: str
    suite: str
    level: str
    expectation_type: str  # the great_expectations.expectations class name
    kwargs: dict[str, Any]
    description: str

    @property
    def tested_column(self) -> str:
        return self.kwargs.get("column") or ",".join(self.kwargs.get("column_list", []))


NOT_NULL = "ExpectColumnValuesToNotBeNull"
BETWEEN = "ExpectColumnValuesToBeBetween"
UNIQUE = "ExpectCompoundColumnsToBeUnique"
MAX_BETWEEN = "ExpectColumnMaxToBeBetween"

# Short names for the table's suite column.
FACTS, RAW, COVERAGE = SUITE_FACT_ROWS, SUITE_RAW_ROWS, SUITE_VENUE_COVERAGE

# fmt: off
CATALOGUE: tuple[CheckSpec, ...] = (
    # positioning.fact_rows: one row per staged fact row; a failing row is quarantined, the others publish.
    CheckSpec("venue_not_null", FACTS, QUARANTINE, NOT_NULL, "venue", "venue is set"),
    CheckSpec("symbol_not_null", FACTS, QUARANTINE, NOT_NULL, "symbol", "symbol is set"),
    CheckSpec("metric_not_null", FACTS, QUARANTINE, NOT_NULL, "metric", "metric is set"),
    CheckSpec("source_ts_not_null", FACTS, QUARANTINE, NOT_NULL, "source_ts", "source_ts is set"),
    # NaN/inf reach the gate as evidence (the parsers keep them); finite_value is null for them.
    CheckSpec("value_is_finite", FACTS, QUARANTINE, NOT_NULL, "finite_value",
              "the value is a finite number (not NaN, not infinite)"),
    CheckSpec("ratio_in_open_range", FACTS, QUARANTINE, BETWEEN, "ratio_value",
              "a long/short ratio lies in ({ratio_min:g}, {ratio_max:g})",
              low="ratio_min", high="ratio_max", strict_min=True, strict_max=True),
    CheckSpec("ratio_shares_sum_to_one", FACTS, QUARANTINE, BETWEEN, "ratio_share_sum",
              "long share + short share = 1 within {share_sum_tolerance:g}",
              low="1-share_sum_tolerance", high="1+share_sum_tolerance"),
    # The check that catches a ratio reported on the wrong scale.
    CheckSpec("ratio_matches_shares", FACTS, QUARANTINE, BETWEEN, "ratio_over_share_ratio",
              "ratio = long share / short share within {ratio_vs_shares_tolerance:.0%}",
              low="1-ratio_vs_shares_tolerance", high="1+ratio_vs_shares_tolerance"),
    # A ratio x0.01 (or x100) against its own shares is published as the shares' quotient: recorded, not lost.
    CheckSpec("ratio_on_shares_scale", FACTS, WARNING, BETWEEN, "published_over_venue_ratio",
              "the venue's ratio is on its shares' scale (one that equals long share / short share only after a "
              "factor of 100 is published as that quotient; the factor is the observed value)",
              low="1-ratio_vs_shares_tolerance", high="1+ratio_vs_shares_tolerance"),
    # Two different rows under one key in one response: which is right is unknowable, so the facts of that
    # venue's instrument (that metric, for a ratio) are withheld; every other row publishes.
    CheckSpec("raw_rows_agree", FACTS, QUARANTINE, BETWEEN, "raw_key_versions",
              "a venue response that repeats a row key repeats the same values", low=1, high=1),
    CheckSpec("oi_positive", FACTS, QUARANTINE, BETWEEN, "oi_value",
              "open interest (contracts, coins, USD) > 0",
              low=0, strict_min=True),
    CheckSpec("mark_price_positive", FACTS, QUARANTINE, BETWEEN, "mark_price_value",
              "mark price > 0",
              low=0, strict_min=True),
    CheckSpec("oi_usd_matches_coins_x_mark", FACTS, QUARANTINE, BETWEEN, "usd_over_coins_x_mark",
              "venue-reported OI USD = OI coins x mark price within {usd_vs_coins_x_mark_tolerance:.1%}",
              low="1-usd_vs_coins_x_mark_tolerance", high="1+usd_vs_coins_x_mark_tolerance"),
    # Checked as long_share + short_share of the oi_usd row. The description is recorded with every result
    # (expectation_results, Data Docs), so it keeps its wording.
    CheckSpec("oi_sides_sum_to_total", FACTS, QUARANTINE, BETWEEN, "oi_sides_over_total",
              "long OI + short OI = total OI within {oi_sides_tolerance:.1%} (Strike)",
              low="1-oi_sides_tolerance", high="1+oi_sides_tolerance"),
    CheckSpec("source_ts_in_window", FACTS, QUARANTINE, BETWEEN, "source_ts_outside_window_s",
              "the venue's timestamp lies inside the interval window (seconds outside it; 0 = inside)",
              low=0, high=0),
    CheckSpec("fact_grain_unique", FACTS, BLOCK, UNIQUE, ("venue", "symbol", "metric", "period"),
              "one staged row per (venue, symbol, metric, period)"),
    # positioning.raw_rows: one row per parsed row of every response, before de-duplication. The normaliser
    # keeps one row per key, so a venue repeating its rows is recorded here rather than collapsed silently; an
    # exact repeat (venues' documented examples do repeat rows) loses nothing, so it is a warning. A repeat with
    # other values is raw_rows_agree's (the facts suite).
    CheckSpec("raw_rows_unique", RAW, WARNING, UNIQUE, ("raw_path", "row_type", "row_key", "row_values"),
              "no venue response repeats a row (an exact repeat is collapsed into one)"),
    # positioning.venue_coverage: one row per venue of the run.
    CheckSpec("venue_completeness", COVERAGE, WARNING, BETWEEN, "completeness",
              "each venue delivered OI for at least {completeness_floor:.0%} of its expected symbols",
              low="completeness_floor", high=1),
    CheckSpec("some_venue_complete", COVERAGE, BLOCK, MAX_BETWEEN, "completeness",
              "at least one venue delivered OI for {completeness_floor:.0%} of its expected symbols",
              low="completeness_floor"),
    CheckSpec("venue_oi_drift", COVERAGE, WARNING, BETWEEN, "oi_usd_change_factor",
              "a venue's total OI USD moved less than {drift_factor:g}x against its previous interval",
              low="1/drift_factor", high="drift_factor"),
)
# fmt: on

_BOUND = re.compile(r"(?:1([-+/]))?(\w+)")


def resolve_bound(bound: Bound, config: QualityConfig) -> Any:
    """A bound's value under ``config`` (see the module docstring for the spellings)."""
    if not isinstance(bound, str):
        return bound
    match = _BOUND.fullmatch(bound)
    if match is None or match.group(2) not in {f.name for f in dataclasses.fields(config)}:
        raise ValueError(f"bound {bound!r}: expected a number, <field>, 1-<field>, 1+<field> or 1/<field>")
    value = getattr(config, match.group(2))
    operator = match.group(1)
    if operator == "-":
        return 1 - value
    if operator == "+":
        return 1 + value
    if operator == "/":
        return 1 / value
    return value


def expectation_kwargs(spec: CheckSpec, config: QualityConfig) -> dict[str, Any]:
    """The kwargs of the expectation class, always in the order column, min_value, max_value, strict_min,
    strict_max (the order the suites and Data Docs show them in)."""
    if isinstance(spec.column, tuple):
        return {"column_list": list(spec.column)}
    kwargs: dict[str, Any] = {"column": spec.column}
    if spec.low is not None:
        kwargs["min_value"] = resolve_bound(spec.low, config)
    if spec.high is not None:
        kwargs["max_value"] = resolve_bound(spec.high, config)
    if spec.strict_min:
        kwargs["strict_min"] = True
    if spec.strict_max:
        kwargs["strict_max"] = True
    return kwargs


def checks(config: QualityConfig) -> list[Check]:
    """Every expectation of the gate, in evaluation order, with ``config``'s thresholds."""
    values = dataclasses.asdict(config)
    return [
        Check(
            spec.name,
            spec.suite,
            spec.level,
            spec.expectation,
            expectation_kwargs(spec, config),
            spec.description.format(**values),
        )
        for spec in CATALOGUE
    ]
