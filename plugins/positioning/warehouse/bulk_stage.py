"""The bulk fill's hours, staged: what each hourly interval of a window hands the audit, built from the fill's
facts of every interval end at once.

:func:`stage_interval` gives what ``positioning.warehouse.load.stage`` gives a DAG run for one interval (facts, raw
rows, skipped symbols, unavailable metrics) plus one manifest per venue (what the gate's coverage check reads);
:class:`FillRows` indexes the fill's facts and raw rows so that an hour's share is a lookup and a slice;
:func:`unavailable_by_end` says what a past-interval run would record as unavailable; :func:`coarse_facts` and
:func:`finest` bring in a venue's coarser history (OKX 1D) where its finer one no longer reaches.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from positioning import registry
from positioning.ingest.bulk import BulkPlan, first_fetchable_end
from positioning.ingest.manifests import Manifest
from positioning.periods import LONGEST_PERIOD_MS, period_seconds
from positioning.quality.frames import naive_utc
from positioning.rows import Instrument, LongShortRatio, OpenInterestHistory
from positioning.venues.base import unavailable_kind
from positioning.warehouse.load import SKIPPED_SCHEMA, UNAVAILABLE_SCHEMA, StagedInterval
from positioning.warehouse.normalize import bucket_facts, empty_facts, instrument_rows
from positioning.warehouse.parse import ParsedRows

HOUR = timedelta(hours=1)
HOUR_MS = 3_600_000


def unavailable_by_end(plan: BulkPlan) -> dict[datetime, dict[str, dict[str, str]]]:
    """Per interval end and venue: metric -> reason, as a past-interval DAG run would record it."""
    result: dict[datetime, dict[str, dict[str, str]]] = {end: {} for end in plan.ends}
    for spec in registry.specs():
        venue = spec.name
        base = spec.past_unavailable()
        series = spec.history(plan.period)
        # A metric is out of reach when every series that gives it is (a coarser period may keep it longer).
        reach: dict[str, tuple[datetime, str]] = {}
        for s in series if venue in plan.venues else []:
            first_end = first_fetchable_end(plan, s)
            for metric in s.metrics:
                if metric not in reach or first_end < reach[metric][0]:
                    reach[metric] = (first_end, f"{s.endpoint.name} keeps {s.retention.days} days of history")
        for end in plan.ends:
            unavailable = dict(base)
            for metric, (first_end, kept) in reach.items():
                if end < first_end:
                    unavailable[metric] = f"outside retention: {venue} {kept}"
            if venue not in plan.venues:
                for s in series:
                    unavailable.update({m: f"not requested: the bulk fill did not include {venue}" for m in s.metrics})
            result[end][venue] = unavailable
    return result


def coarse_facts(plan: BulkPlan, mapped: pl.DataFrame, parsed: ParsedRows, ends_ms: list[int]) -> list[pl.DataFrame]:
    """Facts of the ``coarser`` series (OKX 1D) for every hour: the latest bucket ended by the hour and started no
    earlier than two of its periods before it (the gate's window for a period longer than the interval), so a
    day's reading serves the hours of the next day, not only the first."""
    coarse = {(spec.name, s.period, s.period_ms) for spec in registry.specs() if spec.name in plan.venues
              for s in spec.history(plan.period) if s.coarser}  # fmt: skip
    if not coarse:
        return []
    pairs = [f"{venue}|{period}" for venue, period, _ in coarse]
    subset = ParsedRows()
    subset.rows[Instrument] = parsed.rows[Instrument]
    for row_type in (LongShortRatio, OpenInterestHistory):
        frame = parsed.frame(row_type)
        subset.frames[row_type] = [frame.filter(pl.concat_str("venue", pl.lit("|"), "period").is_in(pairs))]
    return [bucket_facts(mapped, subset, ends_ms, max(length for _, _, length in coarse))]


def finest(facts: pl.DataFrame) -> pl.DataFrame:
    """One fact per (venue, symbol, metric, interval): the finest period's where a venue gave it at two (OKX's 1H and,
    where 1H no longer reaches, 1D)."""
    periods = {p: period_seconds(p) or 0 for p in facts["period"].unique().to_list()}
    ranked = facts.with_columns(_seconds=pl.col("period").replace_strict(periods, return_dtype=pl.Int64))
    return (
        ranked.sort("_seconds", maintain_order=True)
        .unique(["venue", "symbol", "metric", "end_ms"], keep="first", maintain_order=True)
        .drop("_seconds")
    )


class FillRows:
    """The fill's facts and raw rows, indexed for one interval at a time: the facts by interval end, the raw rows
    (the gate's raw-row frame plus each row's bucket ts) by bucket, so an interval's share is a lookup and a slice,
    not a pass over the window."""

    def __init__(self, facts: pl.DataFrame | None, files: list[tuple[str, str, str, Any]]) -> None:
        from positioning.quality import raw_row_frame

        self.facts = (
            {key[0]: part for key, part in facts.partition_by("end_ms", as_dict=True, include_key=False).items()}
            if facts is not None
            else {}
        )
        frame = raw_row_frame(files).filter(pl.col("row_type") != "Instrument")
        self.raw = (
            frame.with_columns(bucket_ms=pl.col("row_key").str.split("|").list.last().cast(pl.Int64, strict=False))
            .drop_nulls("bucket_ms")
            .sort("bucket_ms", "row_id")
        )
        self._buckets = self.raw["bucket_ms"]
        self.no_instruments = instrument_rows(ParsedRows()).with_columns(seen=pl.lit(None, pl.Datetime("us")))

    def facts_at(self, end_ms: int) -> pl.DataFrame:
        return self.facts.get(end_ms, empty_facts())

    def raw_window(self, end_ms: int) -> pl.DataFrame:
        """The raw rows an interval could have used: buckets from one interval plus the longest period before its
        end (by bucket, then in the order they were parsed)."""
        low = self._buckets.search_sorted(end_ms - HOUR_MS - LONGEST_PERIOD_MS, "left")
        high = self._buckets.search_sorted(end_ms, "right")
        return self.raw.slice(low, high - low).drop("bucket_ms")


def stage_interval(
    plan: BulkPlan,
    end: datetime,
    end_ms: int,
    rows: FillRows,
    unavailable: dict[str, dict[str, str]],
    listing: dict[str, Manifest],
) -> tuple[StagedInterval, list[Manifest]]:
    """What ``positioning.warehouse.load.stage`` gives for one interval, from the bulk frames; and one manifest
    per venue (what the gate's coverage check reads)."""
    ts = naive_utc(end)
    now = naive_utc(datetime.now(UTC))
    interval = rows.facts_at(end_ms)
    pairs = [f"{venue}|{metric}" for venue, metrics in unavailable.items() for metric in metrics]
    interval = interval.filter(~pl.concat_str("venue", pl.lit("|"), "metric").is_in(pairs)).with_columns(
        ts=pl.lit(ts, pl.Datetime("us")), run_id=pl.lit(plan.run_id), loaded_at=pl.lit(now, pl.Datetime("us"))
    )
    manifests, skipped, unavailable_rows = [], [], []
    for venue in registry.names():
        chunk = listing.get(venue)
        manifests.append(
            Manifest(
                venue=venue,
                run_id=plan.run_id,
                attempt=1,
                interval_start=end - HOUR,
                interval_end=end,
                ls_period=plan.period,
                status="ok" if chunk is not None or venue not in plan.venues else "failed",
                instruments=chunk.instruments if chunk else {},
                skipped=chunk.skipped if chunk else {},
                symbols_requested=plan.symbols,
                unavailable=unavailable.get(venue, {}),
                started_at=end,
                finished_at=end,
            )
        )
        skipped += [
            {"ts": ts, "venue": venue, "symbol": s, "reason": r} for s, r in (chunk.skipped if chunk else {}).items()
        ]
        unavailable_rows += [
            {"ts": ts, "venue": venue, "metric": m, "kind": unavailable_kind(r), "reason": r, "run_id": plan.run_id}
            for m, r in unavailable.get(venue, {}).items()
        ]
    empty = {"ts": pl.Datetime("us"), "run_id": pl.String}
    staged = StagedInterval(
        ts=ts,
        facts=interval,
        instruments=rows.no_instruments,  # written once per fill
        parse_errors=pl.DataFrame(schema=empty),
        raw_rows=rows.raw_window(end_ms),
        extract_runs=pl.DataFrame(schema=empty),
        extract_failures=pl.DataFrame(schema=empty),
        skipped_symbols=pl.DataFrame(skipped, schema=SKIPPED_SCHEMA),
        interval_unavailable=pl.DataFrame(unavailable_rows, schema=UNAVAILABLE_SCHEMA),
    )
    return staged, manifests
