"""The quality gate of the load: write → audit → publish, with great-expectations.

The load stages an interval in memory (polars), then :func:`audit` validates it with three expectation suites and
decides what may be published. Nothing reaches ``core.*`` (and therefore ``marts.*``) before it passed.

Suites (one great-expectations run each, per interval; every expectation is listed in :func:`checks`):

``positioning.fact_rows`` (the audit frame: one row per staged fact row, with the derived columns below)
    Row-level ("quarantine"): a row that breaks one of these goes to ``quality.quarantine`` with the expectation and
    the offending value and is not published; the interval's other rows still publish.

    * keys not null (venue, symbol, metric, source_ts) and the value finite (NaN/inf are kept by the parsers so that
      they arrive here as evidence);
    * ratios (unit ``ratio``) inside (0, 100); long share + short share = 1 within ``share_sum_tolerance`` where the
      venue reports shares; the ratio equals long share / short share within ``ratio_vs_shares_tolerance`` (this is
      what catches a ratio reported on the wrong scale);
    * OI in contracts, coins and USD > 0; mark price > 0; a venue-reported OI USD equals OI coins x mark price of the
      same venue within ``usd_vs_coins_x_mark_tolerance``; Strike's long + short OI equals its total within
      ``oi_sides_tolerance`` (checked as long_share + short_share of the ``oi_usd`` row);
    * ``source_ts`` inside the interval's window (see :class:`Window`).

    What "row" means for cross-metric checks: the row that is published from the disagreeing figures is the one
    quarantined. OI USD vs coins x mark quarantines the ``oi_usd`` row (coins and mark are the venue's primary
    figures and stand on their own checks); ratio vs shares and shares summing to one quarantine the ratio row;
    Strike's sides vs total quarantines the ``oi_usd`` (total) row. A figure derived from a bad input (OI USD =
    negative coins x mark) fails its own checks, so it is quarantined too.

    Batch-level ("block"): ``fact_grain_unique``, the fact grain (venue, symbol, metric, period) is unique.

``positioning.raw_rows`` (one row per parsed row of every raw response, before any de-duplication)
    Batch-level: ``raw_rows_unique``, no response carries the same key twice. The normaliser keeps the latest row
    per key, so a venue that repeats its rows (the simulator's ``duplicate_rows`` fault) would otherwise collapse
    silently; a venue doing that is broken, and the interval is not published.

``positioning.venue_coverage`` (one row per venue with a manifest in this run, i.e. every enabled venue)
    * ``venue_completeness``: present / expected symbols >= ``completeness_floor`` (warning: recorded, the venue's
      rows still publish). Expected = the requested symbols the venue lists (the manifest's ``instruments``); a
      venue whose extract failed, or whose responses held no rows at all (an empty listing is never legitimate),
      is expected to have every requested symbol, so its completeness is 0. Present = expected symbols with a
      published (not quarantined) ``oi_usd`` row. A venue expected to have nothing counts as complete.
      A venue whose manifest lists ``oi_usd`` as unavailable for the interval (a past interval of a snapshot-only
      venue, or one beyond its retention: ``positioning.ingest.extract``) is expected to have nothing.
    * ``some_venue_complete``: the best venue's completeness >= the floor; below the floor on every venue is a
      batch failure ("block").
    * ``venue_oi_drift``: a venue's total OI USD against its previous published interval in
      ``core.fact_positioning``, over the symbols present in both, within a factor of ``drift_factor`` either way
      (warning).

A batch-level failure records the validation (its own transaction, so the failure is visible), publishes nothing
and raises :class:`QualityGateError` naming what failed. Every run is recorded in ``quality.validation_runs`` and
``quality.expectation_results``, and Data Docs (HTML) are rendered to ``$POSITIONING_DATA_DIR/exports/quality/``.
:meth:`GateReport.summary` (structured + ``text``) is the hook for the alert task; the load task returns it.

``great_expectations`` costs 3-4 s to import: it is imported inside :func:`audit`, never at module level.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from positioning.settings import env_float

SUITE_FACT_ROWS = "positioning.fact_rows"
SUITE_RAW_ROWS = "positioning.raw_rows"
SUITE_VENUE_COVERAGE = "positioning.venue_coverage"
SUITES = (SUITE_FACT_ROWS, SUITE_RAW_ROWS, SUITE_VENUE_COVERAGE)

QUARANTINE, BLOCK, WARNING = "quarantine", "block", "warning"  # what a failure of a check does
OI_METRICS = ("oi_contracts", "oi_coins", "oi_usd")
DATA_DOCS_SITE = "quality"


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds of the gate, in one place. Each is overridable by ``POSITIONING_QUALITY_<NAME>`` (upper case),
    e.g. ``POSITIONING_QUALITY_COMPLETENESS_FLOOR=0.8``; ``POSITIONING_QUALITY_DATA_DOCS=0`` skips the HTML."""

    ratio_min: float = 0.0  # exclusive: a long/short ratio of 0 or below is impossible
    ratio_max: float = 100.0  # exclusive
    share_sum_tolerance: float = 1e-3  # |long_share + short_share - 1|
    ratio_vs_shares_tolerance: float = 0.01  # |ratio / (long_share / short_share) - 1|
    usd_vs_coins_x_mark_tolerance: float = 0.005  # |oi_usd / (oi_coins x mark_price) - 1|, venue-reported USD
    oi_sides_tolerance: float = 0.001  # |(long OI + short OI) / total OI - 1| (Strike)
    # A current value (OI, mark, funding, Strike's split) may be stamped up to this long after the interval end,
    # plus the venue's extract duration: a run triggered from the UI later in the following hour still passes,
    # a backfill of an old interval (which can only fetch today's value) does not. Default: one hour.
    current_value_tolerance_minutes: float = 60.0
    completeness_floor: float = 0.5  # present / expected symbols per venue
    drift_factor: float = 3.0  # venue total OI USD vs its previous published interval, either way
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


# --------------------------------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Check:
    """One expectation: its name (the ``expectation`` column of the quality tables), suite, level, GE type."""

    name: str
    suite: str
    level: str
    expectation_type: str  # the great_expectations.expectations class name
    kwargs: dict[str, Any]
    description: str

    @property
    def tested_column(self) -> str:
        return self.kwargs.get("column") or ",".join(self.kwargs.get("column_list", []))


def checks(config: QualityConfig) -> list[Check]:
    """Every expectation of the gate, in evaluation order."""
    c = config
    between = "ExpectColumnValuesToBeBetween"
    rows = [
        *(
            Check(
                f"{key}_not_null",
                SUITE_FACT_ROWS,
                QUARANTINE,
                "ExpectColumnValuesToNotBeNull",
                {"column": key},
                f"{key} is set",
            )
            for key in ("venue", "symbol", "metric", "source_ts")
        ),
        Check(
            "value_is_finite",
            SUITE_FACT_ROWS,
            QUARANTINE,
            "ExpectColumnValuesToNotBeNull",
            {"column": "finite_value"},
            "the value is a finite number (not NaN, not infinite)",
        ),
        Check(
            "ratio_in_open_range",
            SUITE_FACT_ROWS,
            QUARANTINE,
            between,
            {
                "column": "ratio_value",
                "min_value": c.ratio_min,
                "max_value": c.ratio_max,
                "strict_min": True,
                "strict_max": True,
            },
            f"a long/short ratio lies in ({c.ratio_min:g}, {c.ratio_max:g})",
        ),
        Check(
            "ratio_shares_sum_to_one",
            SUITE_FACT_ROWS,
            QUARANTINE,
            between,
            {
                "column": "ratio_share_sum",
                "min_value": 1 - c.share_sum_tolerance,
                "max_value": 1 + c.share_sum_tolerance,
            },
            f"long share + short share = 1 within {c.share_sum_tolerance:g}",
        ),
        Check(
            "ratio_matches_shares",
            SUITE_FACT_ROWS,
            QUARANTINE,
            between,
            {
                "column": "ratio_over_share_ratio",
                "min_value": 1 - c.ratio_vs_shares_tolerance,
                "max_value": 1 + c.ratio_vs_shares_tolerance,
            },
            f"ratio = long share / short share within {c.ratio_vs_shares_tolerance:.0%}",
        ),
        Check(
            "oi_positive",
            SUITE_FACT_ROWS,
            QUARANTINE,
            between,
            {"column": "oi_value", "min_value": 0, "strict_min": True},
            "open interest (contracts, coins, USD) > 0",
        ),
        Check(
            "mark_price_positive",
            SUITE_FACT_ROWS,
            QUARANTINE,
            between,
            {"column": "mark_price_value", "min_value": 0, "strict_min": True},
            "mark price > 0",
        ),
        Check(
            "oi_usd_matches_coins_x_mark",
            SUITE_FACT_ROWS,
            QUARANTINE,
            between,
            {
                "column": "usd_over_coins_x_mark",
                "min_value": 1 - c.usd_vs_coins_x_mark_tolerance,
                "max_value": 1 + c.usd_vs_coins_x_mark_tolerance,
            },
            f"venue-reported OI USD = OI coins x mark price within {c.usd_vs_coins_x_mark_tolerance:.1%}",
        ),
        Check(
            "oi_sides_sum_to_total",
            SUITE_FACT_ROWS,
            QUARANTINE,
            between,
            {
                "column": "oi_sides_over_total",
                "min_value": 1 - c.oi_sides_tolerance,
                "max_value": 1 + c.oi_sides_tolerance,
            },
            f"long OI + short OI = total OI within {c.oi_sides_tolerance:.1%} (Strike)",
        ),
        Check(
            "source_ts_in_window",
            SUITE_FACT_ROWS,
            QUARANTINE,
            between,
            {"column": "source_ts_outside_window_s", "min_value": 0, "max_value": 0},
            "the venue's timestamp lies inside the interval window (seconds outside it; 0 = inside)",
        ),
        Check(
            "fact_grain_unique",
            SUITE_FACT_ROWS,
            BLOCK,
            "ExpectCompoundColumnsToBeUnique",
            {"column_list": ["venue", "symbol", "metric", "period"]},
            "one staged row per (venue, symbol, metric, period)",
        ),
    ]
    raw = [
        Check(
            "raw_rows_unique",
            SUITE_RAW_ROWS,
            BLOCK,
            "ExpectCompoundColumnsToBeUnique",
            {"column_list": ["raw_path", "row_type", "row_key"]},
            "no venue response carries the same row key twice",
        ),
    ]
    coverage = [
        Check(
            "venue_completeness",
            SUITE_VENUE_COVERAGE,
            WARNING,
            between,
            {"column": "completeness", "min_value": c.completeness_floor, "max_value": 1},
            f"each venue delivered OI for at least {c.completeness_floor:.0%} of its expected symbols",
        ),
        Check(
            "some_venue_complete",
            SUITE_VENUE_COVERAGE,
            BLOCK,
            "ExpectColumnMaxToBeBetween",
            {"column": "completeness", "min_value": c.completeness_floor},
            f"at least one venue delivered OI for {c.completeness_floor:.0%} of its expected symbols",
        ),
        Check(
            "venue_oi_drift",
            SUITE_VENUE_COVERAGE,
            WARNING,
            between,
            {"column": "oi_usd_change_factor", "min_value": 1 / c.drift_factor, "max_value": c.drift_factor},
            f"a venue's total OI USD moved less than {c.drift_factor:g}x against its previous interval",
        ),
    ]
    return rows + raw + coverage


# ---------------------------------------------------------------------------------------------- audit frames

_PERIOD = re.compile(r"^(\d+)\s*([mhHdDwW])")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def period_seconds(period: str) -> int | None:
    """Seconds of a venue's bucket spelling (5m, 1h, 1H, 1D, 1Dutc...); None for '' (a current value)."""
    match = _PERIOD.match(period or "")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()] if match else None


@dataclass(frozen=True)
class Window:
    """When the values of one interval [start, end] may be stamped by the venue.

    Current values (period ''): from ``start`` to ``end`` + ``current_value_tolerance`` + the venue's extract
    duration. Buckets (ratios, OKX's 24 h history; period set): at or before ``end`` (the normaliser picks the
    latest bucket at or before it) and not before ``min(start - period, end - 2 x period)``: the bucket before the
    interval is allowed, and when the period is longer than the interval the latest finished bucket may start up
    to two periods before the end.
    """

    start: datetime
    end: datetime
    current_tolerance: timedelta


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def audit_frame(facts: pl.DataFrame, window: Window, extract_seconds: dict[str, float]) -> pl.DataFrame:
    """The staged facts with ``row_id`` and one derived column per row check (null where it does not apply)."""
    start, end = _naive(window.start), _naive(window.end)
    frame = facts.with_row_index("row_id").with_columns(pl.col("row_id").cast(pl.Int64))
    same_venue = (
        frame.group_by("venue", "symbol")
        .agg(
            coins=pl.col("value").filter(pl.col("metric") == "oi_coins").first(),
            mark=pl.col("value").filter(pl.col("metric") == "mark_price").first(),
        )
        .with_columns(
            coins=pl.when(pl.col("coins").is_finite() & (pl.col("coins") > 0)).then("coins"),
            mark=pl.when(pl.col("mark").is_finite() & (pl.col("mark") > 0)).then("mark"),
        )
    )
    durations = pl.DataFrame(
        {"venue": list(extract_seconds), "extract_s": list(extract_seconds.values())},
        schema={"venue": pl.String, "extract_s": pl.Float64},
    )
    periods = {period: period_seconds(period) for period in facts["period"].unique().to_list()}
    period_s = pl.col("period").replace_strict(periods, default=None, return_dtype=pl.Int64)
    is_ratio = pl.col("unit") == "ratio"
    has_shares = pl.col("long_share").is_not_null() & pl.col("short_share").is_not_null()
    interval_s = (end - start).total_seconds()
    bucket_low_s = pl.min_horizontal(-interval_s - pl.col("period_s"), -2 * pl.col("period_s"))
    current_high_s = window.current_tolerance.total_seconds() + pl.col("extract_s").fill_null(0)
    offset_s = (pl.col("source_ts") - pl.lit(end)).dt.total_microseconds() / 1e6
    low_s = pl.when(pl.col("period_s").is_not_null()).then(bucket_low_s).otherwise(-interval_s)
    high_s = pl.when(pl.col("period_s").is_not_null()).then(0.0).otherwise(current_high_s)
    return (
        frame.join(same_venue, on=["venue", "symbol"], how="left")
        .join(durations, on="venue", how="left")
        .with_columns(period_s=period_s)
        .with_columns(
            finite_value=pl.when(pl.col("value").is_finite()).then("value"),
            ratio_value=pl.when(is_ratio).then("value"),
            ratio_share_sum=pl.when(is_ratio & has_shares).then(pl.col("long_share") + pl.col("short_share")),
            ratio_over_share_ratio=pl.when(is_ratio & has_shares).then(
                pl.col("value") / (pl.col("long_share") / pl.col("short_share"))
            ),
            oi_value=pl.when(pl.col("metric").is_in(OI_METRICS)).then("value"),
            mark_price_value=pl.when(pl.col("metric") == "mark_price").then("value"),
            usd_over_coins_x_mark=pl.when(
                (pl.col("metric") == "oi_usd")
                & (pl.col("usd_source") == "venue")
                & pl.col("coins").is_not_null()
                & pl.col("mark").is_not_null()
            ).then(pl.col("value") / (pl.col("coins") * pl.col("mark"))),
            oi_sides_over_total=pl.when((pl.col("metric") == "oi_usd") & has_shares).then(
                pl.col("long_share") + pl.col("short_share")
            ),
            source_ts_outside_window_s=pl.when(offset_s < low_s)
            .then(offset_s - low_s)
            .when(offset_s > high_s)
            .then(offset_s - high_s)
            .otherwise(pl.when(offset_s.is_not_null()).then(0.0)),
            window_low=pl.lit(end) + pl.duration(microseconds=(low_s * 1e6).cast(pl.Int64)),
            window_high=pl.lit(end) + pl.duration(microseconds=(high_s * 1e6).cast(pl.Int64)),
        )
        .drop("coins", "mark", "extract_s")
    )


_KEY_FIELDS = ("instrument", "key", "metric", "period", "ts_ms")


def raw_row_frame(files: Iterable[tuple[str, str, str, Any]]) -> pl.DataFrame:
    """One row per parsed row of every raw response: (venue, endpoint, raw_path, row_type, row_key).

    An entry whose rows are a polars (lazy) frame (a vectorised parse, ``normalize.parse_manifests``) has these
    columns already."""
    columns = ["venue", "endpoint", "raw_path", "row_type", "row_key"]
    parts: list[pl.DataFrame] = []
    records: list[tuple[str, str, str, str, str]] = []

    def flush() -> None:
        if records:
            parts.append(pl.DataFrame(records, schema=dict.fromkeys(columns, pl.String), orient="row"))
            records.clear()

    for venue, endpoint, raw_path, rows in files:
        if isinstance(rows, (pl.DataFrame, pl.LazyFrame)):
            flush()
            parts.append(rows.lazy().select(columns).collect())
            continue
        for row in rows:
            key = "|".join(str(getattr(row, name)) for name in _KEY_FIELDS if hasattr(row, name))
            records.append((venue, endpoint, raw_path, type(row).__name__, key))
    flush()
    frame = pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=dict.fromkeys(columns, pl.String))
    return frame.with_row_index("row_id")


def previous_oi(con: duckdb.DuckDBPyConnection, ts: datetime) -> pl.DataFrame:
    """Per venue, its latest published interval before ``ts``: (venue, symbol, previous_ts, previous_oi_usd)."""
    rows = con.execute(
        """
        WITH previous AS (
            SELECT venue, max(ts) AS ts FROM core.fact_positioning WHERE metric = 'oi_usd' AND ts < ? GROUP BY venue
        )
        SELECT f.venue, f.symbol, f.ts AS previous_ts, f.value AS previous_oi_usd
        FROM core.fact_positioning AS f JOIN previous USING (venue, ts)
        WHERE f.metric = 'oi_usd'
        """,
        [_naive(ts)],
    ).fetchall()
    return pl.DataFrame(
        rows,
        schema={
            "venue": pl.String,
            "symbol": pl.String,
            "previous_ts": pl.Datetime("us"),
            "previous_oi_usd": pl.Float64,
        },
        orient="row",
    )


def coverage_frame(
    manifests: list[dict[str, Any]], raw_rows: pl.DataFrame, published: pl.DataFrame, previous: pl.DataFrame
) -> pl.DataFrame:
    """One row per venue of this run: expected/present symbols, completeness, total OI USD and its drift."""
    rows_per_venue = dict(raw_rows.group_by("venue").len().iter_rows()) if raw_rows.height else {}
    oi = published.filter(pl.col("metric") == "oi_usd").select("venue", "symbol", oi_usd="value")
    records = []
    for manifest in sorted(manifests, key=lambda m: m["venue"]):
        venue = manifest["venue"]
        delivered_nothing = manifest["status"] == "failed" or not rows_per_venue.get(venue)
        expected = sorted(manifest.get("symbols_requested", []) if delivered_nothing else manifest["instruments"])
        if "oi_usd" in manifest.get("unavailable", {}):
            expected = []  # a past interval the venue keeps no OI for (or beyond its retention): nothing is owed
        venue_oi = oi.filter(pl.col("venue") == venue)
        present = sorted(set(expected) & set(venue_oi["symbol"].to_list()))
        missing = sorted(set(expected) - set(present))
        compared = venue_oi.join(previous.filter(pl.col("venue") == venue), on=["venue", "symbol"])
        previous_total = compared["previous_oi_usd"].sum() if compared.height else None
        current_total = compared["oi_usd"].sum() if compared.height else None
        records.append(
            {
                "venue": venue,
                "extract_status": manifest["status"],
                "expected_symbols": len(expected),
                "present_symbols": len(present),
                # Nothing expected is nothing missing: a venue that lists none of the requested symbols is complete.
                "completeness": len(present) / len(expected) if expected else 1.0,
                "missing_symbols": ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else ""),
                "oi_usd_total": venue_oi["oi_usd"].sum() if venue_oi.height else None,
                "previous_ts": compared["previous_ts"].max() if compared.height else None,
                "compared_symbols": compared.height,
                "previous_oi_usd_total": previous_total,
                "oi_usd_change_factor": current_total / previous_total if previous_total else None,
            }
        )
    return pl.DataFrame(records, infer_schema_length=None).with_columns(
        pl.col("oi_usd_total", "previous_oi_usd_total", "oi_usd_change_factor", "completeness").cast(pl.Float64)
    )


# ---------------------------------------------------------------------------------------------------- report


@dataclass
class GateReport:
    """The outcome of :func:`audit` for one interval: what publishes, what is quarantined, what was recorded."""

    ts: datetime
    interval_start: datetime
    run_id: str
    publish: pl.DataFrame  # the staged fact rows that passed
    quarantine: pl.DataFrame  # quality.quarantine rows
    validation_runs: pl.DataFrame  # quality.validation_runs rows
    expectation_results: pl.DataFrame  # quality.expectation_results rows
    coverage: pl.DataFrame
    blocking: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    data_docs_index: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def blocked(self) -> bool:
        return bool(self.blocking)

    @property
    def rows_quarantined(self) -> int:
        return self.quarantine["row_id"].n_unique() if self.quarantine.height else 0

    def summary(self) -> dict[str, Any]:
        """The alert hook: a JSON-serialisable summary (XCom-friendly) with a human-readable ``text``."""
        failed = self.expectation_results.filter(~pl.col("success"))
        return {
            "ts": self.ts.isoformat(),
            "run_id": self.run_id,
            "ok": not (self.blocking or self.warnings or self.quarantined),
            "published": not self.blocked,
            "rows_staged": self.publish.height + self.rows_quarantined,
            "rows_published": 0 if self.blocked else self.publish.height,
            "rows_quarantined": self.rows_quarantined,
            "blocking": list(self.blocking),
            "warnings": list(self.warnings),
            "quarantined": list(self.quarantined),
            "failed_expectations": [
                {k: row[k] for k in ("suite", "expectation", "level", "unexpected_count", "observed_value")}
                for row in failed.iter_rows(named=True)
            ],
            "data_docs": self.data_docs_index,
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "text": self.text(),
        }

    def text(self) -> str:
        stamp = self.ts.strftime("%Y-%m-%d %H:%M UTC")
        if self.blocked:
            head = f"quality gate BLOCKED publication of {stamp} (run {self.run_id})"
        elif self.quarantined or self.warnings:
            head = f"quality gate passed {stamp} with findings (run {self.run_id})"
        else:
            head = f"quality gate passed {stamp}: every expectation met (run {self.run_id})"
        lines = [head]
        lines += [f"  BLOCK {line}" for line in self.blocking]
        lines += [f"  QUARANTINED {line}" for line in self.quarantined]
        lines += [f"  WARNING {line}" for line in self.warnings]
        if self.data_docs_index:
            lines.append(f"  report: {self.data_docs_index}")
        return "\n".join(lines)


def alert_summary(report: GateReport) -> dict[str, Any]:
    """What the alert task needs from a load: ``ok``, ``published``, ``blocking``/``warnings``/``quarantined``
    lines and ``text``. Same as :meth:`GateReport.summary`; kept as a function for the alerting issue."""
    return report.summary()


def summary_from_warehouse(con: duckdb.DuckDBPyConnection, ts: datetime, run_id: str | None = None) -> dict[str, Any]:
    """The latest recorded gate outcome of an interval, from the quality tables (for an alert after a failed load,
    whose XCom is empty)."""
    params: list[Any] = [_naive(ts)]
    where = "ts = ?"
    if run_id:
        where += " AND run_id = ?"
        params.append(run_id)
    runs = con.execute(
        f"SELECT run_id, suite, success, blocked, summary, data_docs_path FROM quality.validation_runs WHERE {where} "
        f"AND run_id = (SELECT run_id FROM quality.validation_runs WHERE {where} ORDER BY started_at DESC LIMIT 1)",
        params + params,
    ).fetchall()
    if not runs:
        return {"ts": _naive(ts).isoformat(), "ok": None, "text": "no validation recorded for this interval"}
    return {
        "ts": _naive(ts).isoformat(),
        "run_id": runs[0][0],
        "ok": all(r[2] for r in runs),
        "published": not any(r[3] for r in runs),
        "text": "\n".join(r[4] for r in runs if r[4]),
        "data_docs": next((r[5] for r in runs if r[5]), None),
    }


# ----------------------------------------------------------------------------------------------------- audit


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        with contextlib.suppress(AttributeError, ValueError):
            value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _pandas(frame: pl.DataFrame, check_columns: Iterable[str]) -> Any:
    """A pandas copy for great-expectations. pandas treats NaN as missing and map expectations skip missing
    values, so a NaN in a derived check column becomes +inf there (it then fails its range check) while null
    stays "not applicable". The finite check catches NaN values themselves (``finite_value`` is null for them)."""
    check_columns = [c for c in check_columns if c in frame.columns and frame.schema[c].is_float()]
    return frame.with_columns(pl.col(c).fill_nan(float("inf")) for c in check_columns).to_pandas()


class GxSession:
    """An ephemeral great-expectations context (optionally with a filesystem Data Docs site) whose suites and
    validation definitions are built once: a DAG load audits one interval with it, the bulk fill hundreds (the
    context set-up would otherwise cost more than the validations themselves)."""

    def __init__(self, docs_dir: Path | None):
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        self.gx = gx
        # In-memory stores, no default (temporary) docs site, no analytics calls from inside a task.
        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False), analytics_enabled=False
        )
        self.context = gx.get_context(project_config=config, mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.docs_dir = docs_dir
        if docs_dir is not None:
            docs_dir.mkdir(parents=True, exist_ok=True)
            self.context.add_data_docs_site(
                site_name=DATA_DOCS_SITE,
                site_config={
                    "class_name": "SiteBuilder",
                    "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )
        self.source = self.context.data_sources.add_pandas("positioning_staging")
        self._definitions: dict[str, tuple[list[Check], Any]] = {}

    def run(self, suite_name: str, frame: Any, suite_checks: list[Check], index_column: str, run_name: str) -> Any:
        from great_expectations.core.run_identifier import RunIdentifier

        built = self._definitions.get(suite_name)
        if built is None:
            built = self._definitions[suite_name] = (suite_checks, self._definition(suite_name, suite_checks))
        elif built[0] != suite_checks:
            raise ValueError(f"{suite_name}: this session validates other checks; use a new GxSession per config")
        return built[1].run(
            batch_parameters={"dataframe": frame},
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [index_column]},
            run_id=RunIdentifier(run_name=run_name, run_time=datetime.now(UTC)),
        )

    def _definition(self, suite_name: str, suite_checks: list[Check]) -> Any:
        gx = self.gx
        asset = self.source.add_dataframe_asset(name=suite_name.removeprefix("positioning."))
        batch = asset.add_batch_definition_whole_dataframe("interval")
        suite = self.context.suites.add(gx.ExpectationSuite(name=suite_name))
        for check in suite_checks:
            expectation_class = getattr(gx.expectations, check.expectation_type)
            suite.add_expectation(
                expectation_class(
                    **check.kwargs,
                    meta={"check": check.name, "level": check.level},
                    description=f"{check.name}: {check.description}",
                    severity="warning" if check.level == WARNING else "critical",
                )
            )
        return self.context.validation_definitions.add(
            gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
        )

    def build_docs(self) -> str | None:
        if self.docs_dir is None:
            return None
        self.context.build_data_docs(site_names=[DATA_DOCS_SITE])
        return str(self.docs_dir / "index.html")


def _result_rows(result: Any, suite_checks: list[Check]) -> list[tuple[Check, Any]]:
    by_name = {check.name: check for check in suite_checks}
    return [(by_name[r.expectation_config.meta["check"]], r) for r in result.results]


def _failed_indices(expectation_result: Any, index_column: str) -> list[int]:
    return [int(item[index_column]) for item in expectation_result.result.get("unexpected_index_list") or []]


def _exception(expectation_result: Any) -> str | None:
    info = expectation_result.exception_info or {}
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    return None


def _format(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def audit(
    staged: dict[str, Any],
    manifests: list[dict[str, Any]],
    window: Window,
    run_id: str,
    previous: pl.DataFrame,
    *,
    config: QualityConfig | None = None,
    docs_dir: Path | None = None,
    session: GxSession | None = None,
) -> GateReport:
    """Validate one staged interval (``load.stage``) and decide what publishes. Writes nothing to DuckDB.

    ``session``: a :class:`GxSession` to reuse across intervals (its Data Docs setting wins over ``docs_dir``).
    """
    config = config or QualityConfig.from_env()
    started = time.perf_counter()
    session = session or GxSession(docs_dir if config.data_docs else None)
    imported = time.perf_counter()
    ts = _naive(window.end)
    all_checks = checks(config)
    by_suite = {suite: [c for c in all_checks if c.suite == suite] for suite in SUITES}
    run_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{window.end.strftime('%Y%m%dT%H%M%SZ')}__{run_id}")
    extract_seconds = {
        m["venue"]: (datetime.fromisoformat(m["finished_at"]) - datetime.fromisoformat(m["started_at"])).total_seconds()
        for m in manifests
    }

    facts = audit_frame(staged["facts"], window, extract_seconds)
    fact_checks = by_suite[SUITE_FACT_ROWS]
    check_columns = [c.tested_column for c in fact_checks]
    suite_results: dict[str, Any] = {}
    suite_started: dict[str, tuple[datetime, float]] = {}

    def run(suite: str, frame: pl.DataFrame, index_column: str, columns: list[str]) -> Any:
        began = (datetime.now(UTC), time.perf_counter())
        suite_results[suite] = session.run(suite, _pandas(frame, columns), by_suite[suite], index_column, run_name)
        suite_started[suite] = (began[0], time.perf_counter() - began[1])
        return suite_results[suite]

    # 1. Row checks on the staged facts; failing rows are quarantined, the rest is what may publish.
    fact_result = run(SUITE_FACT_ROWS, facts, "row_id", check_columns)
    quarantine_parts, blocking, warnings, quarantined_lines = [], [], [], []
    for check, outcome in _result_rows(fact_result, fact_checks):
        if outcome.success:
            continue
        error = _exception(outcome)
        if error or check.level == BLOCK:
            # An expectation that could not be evaluated cannot tell good rows from bad: block, to be safe.
            blocking.append(_block_line(check, outcome, facts, error))
            continue
        ids = _failed_indices(outcome, "row_id")
        quarantine_parts.append(
            pl.DataFrame(
                {"row_id": ids, "expectation": check.name, "tested_column": check.tested_column},
                schema={"row_id": pl.Int64, "expectation": pl.String, "tested_column": pl.String},
            )
        )
    failures = (
        pl.concat(quarantine_parts)
        if quarantine_parts
        else pl.DataFrame(schema={"row_id": pl.Int64, "expectation": pl.String, "tested_column": pl.String})
    )
    quarantine = _quarantine_rows(facts, failures, ts, run_id, all_checks)
    for (expectation,), group in quarantine.group_by(["expectation"], maintain_order=True):
        examples = "; ".join(
            f"{r['venue']} {r['symbol']} {r['metric']}{'/' + r['period'] if r['period'] else ''} "
            f"value={_format(r['value'])} ({r['tested_column']}={_format(r['observed'])})"
            for r in group.head(3).iter_rows(named=True)
        )
        more = f" and {group.height - 3} more" if group.height > 3 else ""
        quarantined_lines.append(f"{expectation}: {group.height} row(s): {examples}{more}")
    failed_ids = failures["row_id"].unique().implode()
    publish = (
        staged["facts"]
        .with_row_index("row_id")
        .filter(~pl.col("row_id").cast(pl.Int64).is_in(failed_ids))
        .drop("row_id")
    )

    # 2. Duplicate rows inside a venue response (before the normaliser collapsed them).
    raw_rows = staged["raw_rows"]
    raw_result = run(SUITE_RAW_ROWS, raw_rows, "row_id", [])
    for check, outcome in _result_rows(raw_result, by_suite[SUITE_RAW_ROWS]):
        if not outcome.success:
            blocking.append(_raw_duplicates_line(check, outcome, raw_rows))

    # 3. Completeness per venue (on what publishes) and drift against the previous published interval.
    coverage = coverage_frame(manifests, raw_rows, publish, previous)
    coverage_result = run(SUITE_VENUE_COVERAGE, coverage, "venue", ["completeness", "oi_usd_change_factor"])
    for check, outcome in _result_rows(coverage_result, by_suite[SUITE_VENUE_COVERAGE]):
        if outcome.success:
            continue
        line = _coverage_line(check, outcome, coverage, config)
        (blocking if check.level == BLOCK or _exception(outcome) else warnings).append(line)

    validated = time.perf_counter()
    data_docs = None
    try:
        data_docs = session.build_docs()
    except Exception as exc:  # the report is a convenience; never let it fail the load
        warnings.append(f"data_docs: could not render Data Docs to {docs_dir}: {exc}")
    finished = time.perf_counter()

    report = GateReport(
        ts=ts,
        interval_start=_naive(window.start),
        run_id=run_id,
        publish=publish,
        quarantine=quarantine,
        validation_runs=pl.DataFrame(),
        expectation_results=pl.DataFrame(),
        coverage=coverage,
        blocking=blocking,
        warnings=warnings,
        quarantined=quarantined_lines,
        data_docs_index=data_docs,
        timings={
            "import_and_context": imported - started,
            "validate": validated - imported,
            "data_docs": finished - validated,
            "total": finished - started,
        },
    )
    report.expectation_results = _expectation_records(suite_results, by_suite, ts, run_id)
    report.validation_runs = _validation_records(
        report, suite_results, suite_started, by_suite, facts, docs_dir, run_name
    )
    return report


def _validation_id(run_id: str, ts: datetime, suite: str) -> str:
    return f"{run_id}|{ts.isoformat()}|{suite}"


def _quarantine_rows(
    facts: pl.DataFrame, failures: pl.DataFrame, ts: datetime, run_id: str, all_checks: list[Check]
) -> pl.DataFrame:
    descriptions = {c.name: c.description for c in all_checks}
    columns = [
        "venue",
        "symbol",
        "metric",
        "period",
        "instrument",
        "value",
        "unit",
        "usd_source",
        "long_share",
        "short_share",
        "source_ts",
    ]
    joined = failures.join(facts, on="row_id", how="left")
    observed = [
        None if row["tested_column"] not in facts.columns else row[row["tested_column"]]
        for row in joined.iter_rows(named=True)
    ]
    reasons = [
        f"{row['expectation']} failed ({descriptions.get(row['expectation'], '')}): "
        f"{row['metric']} value {_format(row['value'])}"
        + (
            f", {row['tested_column']} = {_format(obs)}"
            if row["tested_column"] not in ("finite_value", row["metric"])
            else ""
        )
        + (
            f", window {row['window_low']} .. {row['window_high']}"
            if row["expectation"] == "source_ts_in_window"
            else ""
        )
        for row, obs in zip(joined.iter_rows(named=True), observed, strict=True)
    ]
    observed_values = [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None for v in observed]
    # The finite check's tested column is null for the offending row: its evidence is the value itself.
    return joined.select(
        pl.lit(ts, pl.Datetime("us")).alias("ts"),
        pl.lit(run_id).alias("run_id"),
        pl.lit(_validation_id(run_id, ts, SUITE_FACT_ROWS)).alias("validation_id"),
        "row_id",
        *columns,
        "expectation",
        "tested_column",
        pl.Series("observed", observed_values, dtype=pl.Float64),
        pl.Series("reason", reasons, dtype=pl.String),
        pl.lit(_naive(datetime.now(UTC)), pl.Datetime("us")).alias("quarantined_at"),
    ).with_columns(observed=pl.when(pl.col("tested_column") == "finite_value").then("value").otherwise("observed"))


def _block_line(check: Check, outcome: Any, facts: pl.DataFrame, error: str | None) -> str:
    if error:
        return f"{check.name} could not be evaluated: {error}"
    ids = _failed_indices(outcome, "row_id")
    duplicated = facts.filter(pl.col("row_id").is_in(ids)).select("venue", "symbol", "metric", "period").unique()
    examples = ", ".join("/".join(filter(None, row)) for row in duplicated.head(5).iter_rows())
    return f"{check.name}: {len(ids)} staged rows share their (venue, symbol, metric, period) key: {examples}"


def _raw_duplicates_line(check: Check, outcome: Any, raw_rows: pl.DataFrame) -> str:
    error = _exception(outcome)
    if error:
        return f"{check.name} could not be evaluated: {error}"
    ids = _failed_indices(outcome, "row_id")
    offenders = (
        raw_rows.filter(pl.col("row_id").is_in(ids))
        .group_by("venue", "endpoint")
        .agg(rows=pl.len(), files=pl.col("raw_path").n_unique())
        .sort("venue", "endpoint")
    )
    parts = [
        f"{r['venue']} {r['endpoint']} ({r['rows']} rows in {r['files']} responses)"
        for r in offenders.iter_rows(named=True)
    ]
    return f"{check.name}: venue responses repeat rows with the same key: {', '.join(parts)}"


def _coverage_line(check: Check, outcome: Any, coverage: pl.DataFrame, config: QualityConfig) -> str:
    error = _exception(outcome)
    if error:
        return f"{check.name} could not be evaluated: {error}"
    if check.name == "some_venue_complete":
        venues = ", ".join(f"{r['venue']} {r['completeness']:.0%}" for r in coverage.iter_rows(named=True))
        return f"{check.name}: every venue is below the completeness floor {config.completeness_floor:.0%}: {venues}"
    failed = set(map(str, (item["venue"] for item in outcome.result.get("unexpected_index_list") or [])))
    rows = coverage.filter(pl.col("venue").is_in(sorted(failed)))
    if check.name == "venue_completeness":
        details = [
            f"{r['venue']} {r['present_symbols']}/{r['expected_symbols']} symbols ({r['completeness']:.0%}"
            f"{', extract ' + r['extract_status'] if r['extract_status'] != 'ok' else ''}"
            f"{', missing ' + r['missing_symbols'] if r['missing_symbols'] else ''})"
            for r in rows.iter_rows(named=True)
        ]
        return f"{check.name}: below the floor {config.completeness_floor:.0%}: {'; '.join(details)}"
    details = [
        f"{r['venue']} total OI USD x{r['oi_usd_change_factor']:.2f} vs {r['previous_ts']} "
        f"({r['compared_symbols']} symbols)"
        for r in rows.iter_rows(named=True)
    ]
    return f"{check.name}: moved more than {config.drift_factor:g}x: {'; '.join(details)}"


def _expectation_records(
    suite_results: dict[str, Any], by_suite: dict[str, list[Check]], ts: datetime, run_id: str
) -> pl.DataFrame:
    records = []
    for suite, result in suite_results.items():
        for check, outcome in _result_rows(result, by_suite[suite]):
            details = outcome.result or {}
            observed = details.get("observed_value")
            if observed is None and "partial_unexpected_list" in details:
                observed = (details.get("unexpected_list") or [])[:20]
            records.append(
                {
                    "validation_id": _validation_id(run_id, ts, suite),
                    "ts": ts,
                    "run_id": run_id,
                    "suite": suite,
                    "expectation": check.name,
                    "expectation_type": outcome.expectation_config.type,
                    "column_name": check.tested_column,
                    "level": check.level,
                    "success": bool(outcome.success),
                    "observed_value": json.dumps(_jsonable(observed)),
                    "element_count": details.get("element_count"),
                    "unexpected_count": details.get("unexpected_count"),
                    "unexpected_percent": details.get("unexpected_percent"),
                    "exception": _exception(outcome),
                    "description": check.description,
                }
            )
    return pl.DataFrame(
        records,
        schema={
            "validation_id": pl.String,
            "ts": pl.Datetime("us"),
            "run_id": pl.String,
            "suite": pl.String,
            "expectation": pl.String,
            "expectation_type": pl.String,
            "column_name": pl.String,
            "level": pl.String,
            "success": pl.Boolean,
            "observed_value": pl.String,
            "element_count": pl.Int64,
            "unexpected_count": pl.Int64,
            "unexpected_percent": pl.Float64,
            "exception": pl.String,
            "description": pl.String,
        },
    )


def _validation_records(
    report: GateReport,
    suite_results: dict[str, Any],
    suite_started: dict[str, tuple[datetime, float]],
    by_suite: dict[str, list[Check]],
    facts: pl.DataFrame,
    docs_dir: Path | None,
    run_name: str,
) -> pl.DataFrame:
    import great_expectations as gx

    results = report.expectation_results
    records = []
    for suite, result in suite_results.items():
        mine = results.filter(pl.col("suite") == suite)
        failed = mine.filter(~pl.col("success"))
        blocked = failed.filter((pl.col("level") == BLOCK) | pl.col("exception").is_not_null()).height > 0
        quarantined = report.rows_quarantined if suite == SUITE_FACT_ROWS else 0
        rows_validated = {
            SUITE_FACT_ROWS: facts.height,
            SUITE_RAW_ROWS: None,
            SUITE_VENUE_COVERAGE: report.coverage.height,
        }
        # The report's own lines name the venue, symbol or value ("strike 0/2 symbols..."): prefer them.
        detailed = {line.split(":", 1)[0]: line for line in (*report.blocking, *report.warnings, *report.quarantined)}
        lines = [
            f"{r['level']} "
            + detailed.get(
                r["expectation"],
                f"{r['expectation']}: {r['unexpected_count'] or 0} unexpected, observed {r['observed_value'][:200]}",
            )
            for r in failed.iter_rows(named=True)
        ]
        began, seconds = suite_started[suite]
        records.append(
            {
                "validation_id": _validation_id(report.run_id, report.ts, suite),
                "ts": report.ts,
                "interval_start": report.interval_start,
                "run_id": report.run_id,
                "suite": suite,
                "success": bool(result.success),
                "blocked": blocked,
                "evaluated_expectations": mine.height,
                "failed_expectations": failed.height,
                "rows_validated": rows_validated[suite]
                if rows_validated[suite] is not None
                else int(mine["element_count"].max() or 0),
                "rows_quarantined": quarantined,
                "started_at": _naive(began),
                "duration_ms": seconds * 1000,
                "ge_version": gx.__version__,
                "data_docs_path": _docs_page(docs_dir, suite, run_name) if report.data_docs_index else None,
                "summary": f"{suite} {'passed' if result.success else 'failed'} for {report.ts} (run {report.run_id})"
                + "".join(f"\n  {line}" for line in lines),
            }
        )
    return pl.DataFrame(records, infer_schema_length=None).with_columns(
        pl.col("started_at", "ts", "interval_start").cast(pl.Datetime("us")), pl.col("duration_ms").cast(pl.Float64)
    )


def _docs_page(docs_dir: Path | None, suite: str, run_name: str) -> str | None:
    """This run's Data Docs page of a suite: GE writes validations/<suite, dots as folders>/<run_name>/<run_time>/
    <batch>.html."""
    if docs_dir is None:
        return None
    folder = docs_dir.joinpath("validations", *suite.split("."), run_name)
    pages = sorted(folder.glob("*/*.html"), key=lambda p: p.stat().st_mtime)
    return str(pages[-1]) if pages else str(docs_dir / "index.html")


# --------------------------------------------------------------------------------------------------- records


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    if frame.height:
        con.register("_quality_rows", frame)
        try:
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _quality_rows")
        finally:
            con.unregister("_quality_rows")


def write_records(con: duckdb.DuckDBPyConnection, report: GateReport, *, quarantine: bool) -> None:
    """Replace this run's validation records for the interval (and, when publishing, the interval's quarantine).
    Runs inside the caller's transaction."""
    con.execute("DELETE FROM quality.expectation_results WHERE ts = ? AND run_id = ?", [report.ts, report.run_id])
    con.execute("DELETE FROM quality.validation_runs WHERE ts = ? AND run_id = ?", [report.ts, report.run_id])
    _insert(con, "quality.validation_runs", report.validation_runs)
    _insert(con, "quality.expectation_results", report.expectation_results)
    if quarantine:
        con.execute("DELETE FROM quality.quarantine WHERE ts = ?", [report.ts])
        _insert(con, "quality.quarantine", report.quarantine.drop("row_id"))


def record_blocked(con: duckdb.DuckDBPyConnection, report: GateReport) -> None:
    """A blocked interval: record the validation in its own transaction (the core tables stay as they were)."""
    con.execute("BEGIN TRANSACTION")
    try:
        write_records(con, report, quarantine=False)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
