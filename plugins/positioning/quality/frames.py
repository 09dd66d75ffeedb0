"""The frames the suites validate, built with polars before great-expectations sees them.

* :func:`audit_frame` (suite ``positioning.fact_rows``): the staged facts, one row each, with ``row_id`` and one
  derived column per row check, null where the check does not apply (a ratio check on an OI row), so that every
  check is a plain column expectation;
* :func:`raw_row_frame` (``positioning.raw_rows``): one row per parsed row of every raw response, before any
  de-duplication;
* :func:`coverage_frame` (``positioning.venue_coverage``): one row per venue of the run, with its completeness and
  its total OI USD against :func:`previous_oi`, the venue's previous published interval.

:class:`Window` says when a value of the interval may be stamped by its venue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from positioning.periods import period_seconds

if TYPE_CHECKING:
    from positioning.ingest.manifests import Manifest

OI_METRICS = ("oi_contracts", "oi_coins", "oi_usd")
# The fields of a parsed row that make its key in a response (those its type has), in ``row_key`` order.
RAW_KEY_FIELDS = ("instrument", "key", "metric", "period", "ts_ms")


def naive_utc(moment: datetime) -> datetime:
    """``moment`` as naive UTC (how DuckDB and the frames keep timestamps); a naive moment is taken as UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


@dataclass(frozen=True)
class Window:
    """When the values of one interval [start, end] may be stamped by the venue.

    Current values (period ''): from ``start`` to ``end`` + ``current_value_tolerance`` + the venue's extract
    duration. Buckets (ratios, a venue's 24 h OI history; period set): at or before ``end`` (the normaliser picks
    the latest bucket at or before it) and not before ``min(start - period, end - 2 x period)``: the bucket before
    the interval is allowed, and when the period is longer than the interval the latest finished bucket may start
    up to two periods before the end.
    """

    start: datetime
    end: datetime
    current_tolerance: timedelta


def audit_frame(
    facts: pl.DataFrame, window: Window, extract_seconds: dict[str, float], raw_rows: pl.DataFrame | None = None
) -> pl.DataFrame:
    """The staged facts with ``row_id`` and one derived column per row check (null where it does not apply).

    ``raw_rows`` (:func:`raw_row_frame`): the responses the facts were parsed from, for ``raw_key_versions``."""
    return audit_frames([facts], [window], [extract_seconds], [raw_rows]).drop("_interval")


def audit_frames(
    facts: list[pl.DataFrame],
    windows: list[Window],
    extract_seconds: list[dict[str, float]],
    raw_rows: list[pl.DataFrame | None],
) -> pl.DataFrame:
    """:func:`audit_frame` of many intervals in one pass, stacked in order with their position in ``_interval``
    (each interval's ``row_id`` counts its own rows, as alone): the bulk fill builds thousands of them."""
    frame = pl.concat(
        [
            part.with_row_index("row_id").with_columns(
                pl.col("row_id").cast(pl.Int64),
                _interval=pl.lit(i, pl.Int64),
                _start=pl.lit(naive_utc(w.start), pl.Datetime("us")),
                _end=pl.lit(naive_utc(w.end), pl.Datetime("us")),
                _tolerance_s=pl.lit(w.current_tolerance.total_seconds(), pl.Float64),
            )
            for i, (part, w) in enumerate(zip(facts, windows, strict=True))
        ],
        how="vertical_relaxed",
    )
    frame = frame.join(_key_versions(raw_rows, facts), on=["_interval", "row_id"], how="left")
    # OI USD vs coins x mark compares figures of the same venue and symbol; a non-positive or non-finite input
    # fails its own check, so it is left out here rather than failing this one too.
    same_venue = (
        frame.group_by("_interval", "venue", "symbol")
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
        [(i, venue, seconds) for i, by_venue in enumerate(extract_seconds) for venue, seconds in by_venue.items()],
        schema={"_interval": pl.Int64, "venue": pl.String, "extract_s": pl.Float64},
        orient="row",
    )
    periods = {period: period_seconds(period) for period in frame["period"].unique().to_list()}
    period_s = pl.col("period").replace_strict(periods, default=None, return_dtype=pl.Int64)
    is_ratio = pl.col("unit") == "ratio"
    has_shares = pl.col("long_share").is_not_null() & pl.col("short_share").is_not_null()
    # The window as offsets in seconds from the interval end (see Window).
    interval_s = (pl.col("_end") - pl.col("_start")).dt.total_microseconds() / 1e6
    bucket_low_s = pl.min_horizontal(-interval_s - pl.col("period_s"), -2 * pl.col("period_s"))
    current_high_s = pl.col("_tolerance_s") + pl.col("extract_s").fill_null(0)
    offset_s = (pl.col("source_ts") - pl.col("_end")).dt.total_microseconds() / 1e6
    low_s = pl.when(pl.col("period_s").is_not_null()).then(bucket_low_s).otherwise(-interval_s)
    high_s = pl.when(pl.col("period_s").is_not_null()).then(0.0).otherwise(current_high_s)
    return (
        frame.join(same_venue, on=["_interval", "venue", "symbol"], how="left")
        .join(durations, on=["_interval", "venue"], how="left")
        .with_columns(period_s=period_s)
        .with_columns(
            finite_value=pl.when(pl.col("value").is_finite()).then("value"),
            ratio_value=pl.when(is_ratio).then("value"),
            ratio_share_sum=pl.when(is_ratio & has_shares).then(pl.col("long_share") + pl.col("short_share")),
            ratio_over_share_ratio=pl.when(is_ratio & has_shares).then(
                pl.col("value") / (pl.col("long_share") / pl.col("short_share"))
            ),
            # 1 where the venue's ratio is published as sent; 100 where it came on a x0.01 scale (the shares'
            # quotient is published instead: positioning.warehouse.ratios).
            published_over_venue_ratio=pl.when(is_ratio & pl.col("venue_ratio").is_not_null()).then(
                pl.col("value") / pl.col("venue_ratio")
            ),
            oi_value=pl.when(pl.col("metric").is_in(OI_METRICS)).then("value"),
            mark_price_value=pl.when(pl.col("metric") == "mark_price").then("value"),
            usd_over_coins_x_mark=pl.when(
                (pl.col("metric") == "oi_usd")
                & (pl.col("usd_source") == "venue")
                & pl.col("coins").is_not_null()
                & pl.col("mark").is_not_null()
            ).then(pl.col("value") / (pl.col("coins") * pl.col("mark"))),
            # A venue that splits its OI into long and short sides reports them as shares of the oi_usd row.
            oi_sides_over_total=pl.when((pl.col("metric") == "oi_usd") & has_shares).then(
                pl.col("long_share") + pl.col("short_share")
            ),
            source_ts_outside_window_s=pl.when(offset_s < low_s)
            .then(offset_s - low_s)
            .when(offset_s > high_s)
            .then(offset_s - high_s)
            .otherwise(pl.when(offset_s.is_not_null()).then(0.0)),
            window_low=pl.col("_end") + pl.duration(microseconds=(low_s * 1e6).cast(pl.Int64)),
            window_high=pl.col("_end") + pl.duration(microseconds=(high_s * 1e6).cast(pl.Int64)),
        )
        .drop("coins", "mark", "extract_s", "_start", "_end", "_tolerance_s")
    )


def _key_versions(raw_rows: list[pl.DataFrame | None], facts: list[pl.DataFrame]) -> pl.DataFrame:
    """(_interval, row_id, raw_key_versions) of every interval: :func:`raw_key_versions` of its own raw rows.
    Intervals of one fill share their raw rows, so a window whose rows repeat no key with other values (the rule)
    is settled by one look at them all."""
    schema = {"_interval": pl.Int64, "row_id": pl.Int64, "raw_key_versions": pl.Int64}
    present = [rows for rows in raw_rows if rows is not None and rows.height]
    if not present or not _conflicts(pl.concat(present, how="vertical_relaxed").unique("row_id")).height:
        return pl.DataFrame(schema=schema)
    parts = [
        raw_key_versions(rows, part.with_row_index("row_id").with_columns(pl.col("row_id").cast(pl.Int64)))
        .with_columns(_interval=pl.lit(i, pl.Int64))
        .select(list(schema))
        for i, (rows, part) in enumerate(zip(raw_rows, facts, strict=True))
        if rows is not None and rows.height
    ]
    return pl.concat(parts) if parts else pl.DataFrame(schema=schema)


RAW_ROW_SCHEMA = {
    "venue": pl.String,
    "endpoint": pl.String,
    "raw_path": pl.String,
    "row_type": pl.String,
    "row_key": pl.String,
    "row_subject": pl.String,  # the instrument (or base coin) the row is about
    "row_metric": pl.String,  # its ratio metric, null for other rows
    "row_values": pl.UInt64,  # a fingerprint of every field: equal rows, equal fingerprints (within one run)
}


def raw_row_frame(files: Iterable[tuple[str, str, str, Any]]) -> pl.DataFrame:
    """One row per parsed row of every raw response (:data:`RAW_ROW_SCHEMA`).

    An entry whose rows are a polars (lazy) frame (a vectorised parse, ``parse.parse_manifests``) has these
    columns already."""
    columns = list(RAW_ROW_SCHEMA)
    parts: list[pl.DataFrame] = []
    records: list[tuple[Any, ...]] = []

    def flush() -> None:
        if records:
            parts.append(pl.DataFrame(records, schema=RAW_ROW_SCHEMA, orient="row"))
            records.clear()

    for venue, endpoint, raw_path, rows in files:
        if isinstance(rows, (pl.DataFrame, pl.LazyFrame)):
            flush()  # keep the order of the entries
            parts.append(rows.lazy().select(columns).collect())
            continue
        for row, fingerprint in zip(rows, _fingerprints(rows), strict=True):
            key = "|".join(str(getattr(row, name)) for name in RAW_KEY_FIELDS if hasattr(row, name))
            subject = getattr(row, "instrument", None) or getattr(row, "key", None)
            records.append((venue, endpoint, raw_path, type(row).__name__, key, subject,
                            getattr(row, "metric", None), fingerprint))  # fmt: skip
    flush()
    frame = pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=RAW_ROW_SCHEMA)
    return frame.with_row_index("row_id")


def _fingerprints(rows: list[Any]) -> list[int]:
    """The ``row_values`` of parsed rows: the hash of their fields as a frame row, as the vectorised parse computes
    it (``parse.parse_manifests``), so both parses of one response agree."""
    from positioning.warehouse.parse import rows_frame

    result = [0] * len(rows)
    positions: dict[type, list[int]] = {}
    for position, row in enumerate(rows):
        positions.setdefault(type(row), []).append(position)
    for row_type, indices in positions.items():
        frame = rows_frame([rows[i] for i in indices], row_type)
        for i, fingerprint in zip(indices, frame.select(pl.struct(frame.columns).hash()).to_series(), strict=True):
            result[i] = fingerprint
    return result


def raw_key_versions(raw_rows: pl.DataFrame, facts: pl.DataFrame) -> pl.DataFrame:
    """(row_id of ``facts``, raw_key_versions): for each fact built from a row key that one response repeats with
    different values, how many different versions it sent (2 or more). Facts of the venue's instrument (or base
    coin) are affected, only the repeated metric's where the row is a ratio."""
    conflicts = _conflicts(raw_rows).group_by("venue", "row_subject", "row_metric").agg(pl.col("versions").max())
    if conflicts.is_empty():
        return pl.DataFrame(schema={"row_id": pl.Int64, "raw_key_versions": pl.Int64})
    matched = [
        facts.select("row_id", "venue", "metric", subject=pl.col(column))
        .join(conflicts, left_on=["venue", "subject"], right_on=["venue", "row_subject"])
        .filter(pl.col("row_metric").is_null() | (pl.col("row_metric") == pl.col("metric")))
        for column in ("instrument", "symbol")
    ]
    return pl.concat(matched).group_by("row_id").agg(raw_key_versions=pl.col("versions").max().cast(pl.Int64))


def _conflicts(raw_rows: pl.DataFrame) -> pl.DataFrame:
    """The row keys one response sends with different values, and how many versions of each."""
    return (
        raw_rows.group_by("venue", "raw_path", "row_type", "row_key", "row_subject", "row_metric")
        .agg(versions=pl.col("row_values").n_unique())
        .filter(pl.col("versions") > 1)
    )


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
        [naive_utc(ts)],
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
    manifests: list[Manifest], raw_rows: pl.DataFrame, published: pl.DataFrame, previous: pl.DataFrame
) -> pl.DataFrame:
    """One row per venue of this run: expected/present symbols, completeness, total OI USD and its drift.

    Expected = the requested symbols the venue lists (the manifest's ``instruments``); a venue whose extract
    failed, or whose responses held no rows at all (an empty listing is never legitimate), owes every requested
    symbol, so its completeness is 0. Present = expected symbols with a published (not quarantined) ``oi_usd`` row.
    """
    rows_per_venue = dict(raw_rows["venue"].value_counts().iter_rows()) if raw_rows.height else {}
    oi = published.filter(pl.col("metric") == "oi_usd").select("venue", "symbol", oi_usd="value")
    # One pass per frame for every venue (the bulk fill builds this for thousands of intervals).
    by_venue = oi.group_by("venue").agg("symbol", pl.col("oi_usd").sum()).rows()
    symbols_with_oi = {venue: set(symbols) for venue, symbols, _ in by_venue}
    totals = {venue: total for venue, _, total in by_venue}
    compared_by_venue = {
        row["venue"]: row
        for row in oi.join(previous, on=["venue", "symbol"])
        .group_by("venue")
        .agg(
            current=pl.col("oi_usd").sum(),
            previous=pl.col("previous_oi_usd").sum(),
            previous_ts=pl.col("previous_ts").max(),
            compared=pl.len(),
        )
        .iter_rows(named=True)
    }
    records = []
    for manifest in sorted(manifests, key=lambda m: m.venue):
        venue = manifest.venue
        delivered_nothing = manifest.status == "failed" or not rows_per_venue.get(venue)
        expected = sorted(manifest.symbols_requested if delivered_nothing else manifest.instruments)
        if "oi_usd" in manifest.unavailable:
            expected = []  # a past interval the venue keeps no OI for (or beyond its retention): nothing is owed
        present = sorted(set(expected) & symbols_with_oi.get(venue, set()))
        missing = sorted(set(expected) - set(present))
        compared = compared_by_venue.get(venue)
        previous_total = compared["previous"] if compared else None
        records.append(
            {
                "venue": venue,
                "extract_status": manifest.status,
                "expected_symbols": len(expected),
                "present_symbols": len(present),
                # Nothing expected is nothing missing: a venue that lists none of the requested symbols is complete.
                "completeness": len(present) / len(expected) if expected else 1.0,
                "missing_symbols": ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else ""),
                "oi_usd_total": totals.get(venue),
                "previous_ts": compared["previous_ts"] if compared else None,
                "compared_symbols": compared["compared"] if compared else 0,
                "previous_oi_usd_total": previous_total,
                "oi_usd_change_factor": compared["current"] / previous_total if previous_total else None,
            }
        )
    return pl.DataFrame(records, infer_schema_length=None).with_columns(
        pl.col("oi_usd_total", "previous_oi_usd_total", "oi_usd_change_factor", "completeness").cast(pl.Float64)
    )
