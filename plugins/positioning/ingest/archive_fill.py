"""The Binance data archive as a source of the bulk fill: the days before Binance's REST history reaches back.

Binance's ``/futures/data/*`` keeps 30 days; its public archive (``positioning.venues.binance_archive``) keeps
every day since 2021-12 as one ``metrics`` zip per symbol. A fill whose window starts before the REST reach asks
the archive for every day from the window's first hour to the first day the REST history covers, *plus one day of
overlap*, so the two sources can be compared where both have a bucket (:func:`disagreements`).

Fetch (:func:`fetch_archive`): one chunk per symbol (``archive-<SYMBOL>``, venue ``binance``), its days fetched with
the archive's own politeness limits (``LIMITS``, ``CONCURRENCY``), each zip verified against its ``.CHECKSUM``. A day
the archive does not have (404) or whose checksum fails twice is recorded in the chunk (and in
``ops.extract_failures``), never loaded, and does not make the chunk fail: the hours it would have filled stay gaps
with that reason in ``marts.coverage``. Progress, with an ETA, is logged every ``PROGRESS_EVERY`` files.

Load (:func:`archive_rows`): the landed zips are parsed with polars; only the rows a fill can use are kept (per
instrument, metric and hour, the latest 5-minute bucket ended by the hour's end: the bucket the "latest bucket ended
at or before the interval end" rule picks), which keeps a year of 50 symbols at ~2 M rows instead of ~26 M. Facts
from the archive say so (``source = 'archive'``) and keep the archive's native period (``5m``); where the REST
history has the same interval, the REST fact is published.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from positioning.ingest.extract import venue_client
from positioning.ingest.http import FetchResult, RateLimit, RetryPolicy
from positioning.ingest.manifests import Manifest, ManifestStore
from positioning.ingest.raw import RawLander, read_raw
from positioning.rows import ParseError
from positioning.venues import binance_archive as archive

VENUE = archive.VENUE
CONNECTION = "binance_archive"  # connections.base_url(CONNECTION): positioning_binance_archive
CHUNK_PREFIX = "archive-"
OVERLAP = timedelta(days=1)
PROGRESS_EVERY = 500
HOUR_MS = 3_600_000
STEP_MS = archive.STEP_MS
METRICS = ("oi_coins", "oi_usd", *archive.RATIO_COLUMNS.values())  # what the archive can fill
_FILE_DAY = re.compile(r"-metrics-(\d{4}-\d{2}-\d{2})\.zip$")


def archive_days(first_end: datetime, last_end: datetime, rest_first_end: datetime | None) -> list[date]:
    """The UTC days to ask the archive for: from the day of the first interval's window to the day the REST reach
    begins plus :data:`OVERLAP` (none when the REST history covers the whole window; every day when it covers
    none: ``rest_first_end`` None)."""
    if rest_first_end is not None and rest_first_end <= first_end:
        return []
    first_ms = int((first_end - timedelta(hours=1)).timestamp() * 1000) - STEP_MS
    until = last_end if rest_first_end is None else min(rest_first_end + OVERLAP, last_end)
    return archive.days_between(first_ms, int(until.timestamp() * 1000))


def chunk_name(symbol: str) -> str:
    return CHUNK_PREFIX + symbol


def is_archive_chunk(manifest: Manifest) -> bool:
    return (manifest.chunk or "").startswith(CHUNK_PREFIX)


def _recorded_gap(result: FetchResult) -> bool:
    """A day the archive does not have (404) or a file that failed its checksum twice: recorded, not a failure."""
    return result.status == 404 or (not result.ok and archive.NOT_LOADED in (result.error or ""))


@dataclass
class ArchiveReport:
    files: int = 0  # days asked (a checksum and a zip each)
    gaps: list[str] = field(default_factory=list)  # "<instrument> <day>: why"
    failed_chunks: list[str] = field(default_factory=list)
    requests_sent: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)


async def fetch_archive(
    plan: Any,
    data: Path,
    attempt: int,
    instruments: dict[str, str],
    days: list[date],
    *,
    base_url: str,
    make_manifest: Callable[..., Manifest],
    retry: RetryPolicy | None = None,
    limits: dict[str, RateLimit] | None = None,
    timeout: float = 30.0,
    log: Callable[[str], None] = print,
) -> ArchiveReport:
    """Fetch every missing ``archive-<SYMBOL>`` chunk of the plan (see the module docstring)."""
    report = ArchiveReport()
    store = ManifestStore(data)
    todo = {s: i for s, i in instruments.items() if store.read_chunk(plan.run_id, VENUE, chunk_name(s)) is None}
    total, started = len(todo) * len(days), time.perf_counter()
    if not todo or not days:
        return report
    log(f"archive: {len(todo)} symbols x {len(days)} days ({days[0]} .. {days[-1]}) from {base_url}")
    lander = RawLander(data / "raw", VENUE, plan.last_end, plan.run_id, attempt)
    async with venue_client(
        VENUE, base_url, lander, limits={**archive.LIMITS, **(limits or {})}, retry=retry,
        concurrency=archive.CONCURRENCY, timeout=timeout,
    ) as client:  # fmt: skip

        async def one_day(symbol: str, instrument: str, day: date) -> list[FetchResult]:
            results = await archive.fetch_day(client, instrument, day, symbol)
            report.files += 1
            if report.files % PROGRESS_EVERY == 0:
                elapsed = time.perf_counter() - started
                eta = elapsed / report.files * (total - report.files)
                log(f"archive: {report.files}/{total} files, {elapsed:.0f} s, about {eta:.0f} s to go")
            return results

        async def symbol_chunk(symbol: str, instrument: str) -> None:
            chunk_started = datetime.now(UTC)
            per_day = await asyncio.gather(*(one_day(symbol, instrument, day) for day in days))
            results = [result for day_results in per_day for result in day_results]
            for day, (_, content) in zip(days, per_day, strict=True):
                if _recorded_gap(content):
                    report.gaps.append(f"{instrument} {day}: {content.error or content.status}")
            hard = [r for r in results if not r.ok and not _recorded_gap(r)]
            manifest = make_manifest(plan, VENUE, chunk_name(symbol), attempt, {symbol: instrument}, {}, results,
                                     chunk_started, None)  # fmt: skip
            manifest = dataclasses.replace(manifest, symbols_requested=(symbol,), status="partial" if hard else "ok")
            if hard:
                report.failed_chunks.append(f"{VENUE}/{chunk_name(symbol)}: {hard[0].error}")
                return  # not checkpointed: a restart asks again
            store.write_chunk(dataclasses.replace(manifest, status_counts=dict(client.status_counts)))

        try:
            await asyncio.gather(*(symbol_chunk(s, i) for s, i in todo.items()))
        finally:
            report.requests_sent = client.requests_sent
            report.status_counts = {str(k): v for k, v in client.status_counts.items()}
    log(f"archive: {report.files} files in {time.perf_counter() - started:.1f} s, {len(report.gaps)} days not loaded")
    return report


# ----------------------------------------------------------------------------------------------------- load


@dataclass
class ArchiveRows:
    """What the archive chunks give the load: rows in the REST history's row-frame columns, the raw rows on the
    hour for the overlap comparison, the days not loaded, and parse errors."""

    oi: pl.DataFrame
    ratios: pl.DataFrame
    on_the_hour: pl.DataFrame  # (key, metric, ts_ms, value) of buckets starting on an hour, overlap days only
    missing_days: set[date] = field(default_factory=set)
    errors: list[dict[str, Any]] = field(default_factory=list)


def _latest_per_hour(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Per ``keys`` and hour: the latest 5-minute bucket that ended by the hour's end (see the module docstring)."""
    hour = (pl.col("ts_ms") + STEP_MS + HOUR_MS - 1) // HOUR_MS  # the hour whose end the bucket ended by
    latest = frame.sort("ts_ms").group_by([*keys, hour.alias("_hour")], maintain_order=True).last()
    return latest.select(frame.columns)


def archive_rows(chunks: list[Manifest], overlap_from: date | None) -> ArchiveRows:
    """Parse every loaded zip of the archive chunks (the final attempt of each ok request)."""
    oi_parts, ratio_parts, hourly_parts, missing, errors = [], [], [], set(), []
    for chunk in chunks:
        for record in chunk.requests:
            if record.endpoint != archive.ENDPOINT:
                continue
            if not record.ok or not record.raw_paths:
                continue
            raw = read_raw(record.raw_paths[-1])
            match = _FILE_DAY.search(raw.meta.get("url", ""))
            instrument = chunk.instruments.get(record.symbol or "", "")
            if match is None:
                continue
            day = date.fromisoformat(match.group(1))
            try:
                oi, ratios = archive.parse_metrics(raw.content(), instrument, day)
            except ParseError as exc:
                errors.append({"venue": VENUE, "endpoint": archive.ENDPOINT, "raw_path": record.raw_paths[-1],
                               "error": str(exc)})  # fmt: skip
                missing.add(day)
                continue
            if overlap_from is not None and day >= overlap_from:
                hourly_parts.append(_on_the_hour(oi, ratios))
            oi_parts.append(_latest_per_hour(oi, ["key", "period"]))
            ratio_parts.append(_latest_per_hour(ratios, ["key", "metric", "period"]))
    for chunk in chunks:
        for record in chunk.requests:
            if record.endpoint == archive.ENDPOINT and not record.ok and record.raw_paths:
                match = _FILE_DAY.search(read_raw(record.raw_paths[-1]).meta.get("url", ""))
                if match:
                    missing.add(date.fromisoformat(match.group(1)))
    empty_oi, empty_ratios = archive.parse_metrics_empty()
    return ArchiveRows(
        oi=pl.concat(oi_parts, how="vertical") if oi_parts else empty_oi,
        ratios=pl.concat(ratio_parts, how="vertical") if ratio_parts else empty_ratios,
        on_the_hour=pl.concat(hourly_parts, how="vertical") if hourly_parts else _on_the_hour(empty_oi, empty_ratios),
        missing_days=missing,
        errors=errors,
    )


def _on_the_hour(oi: pl.DataFrame, ratios: pl.DataFrame) -> pl.DataFrame:
    hourly = pl.col("ts_ms") % HOUR_MS == 0
    levels = oi.filter(hourly).unpivot(["coins", "usd"], index=["key", "period", "ts_ms"], variable_name="metric")
    levels = levels.with_columns(metric=pl.concat_str(pl.lit("oi_"), pl.col("metric")))
    return pl.concat(
        [
            levels.select("key", "metric", "period", "ts_ms", "value"),
            ratios.filter(hourly).select("key", "metric", "period", "ts_ms", value="ratio"),
        ]
    )


def disagreements(
    rows: ArchiveRows, rest_oi: pl.DataFrame, rest_ratios: pl.DataFrame, tolerance: float
) -> pl.DataFrame:
    """Buckets both sources have, whose values differ by more than ``tolerance`` (relative): OI at the same bucket
    start whatever the period (it is a level), ratios only at the same period (a 5-minute ratio is not an hour's).
    Columns: key, metric, period, ts_ms, archive_value, rest_value, relative_difference."""
    rest = pl.concat(
        [
            rest_oi.unpivot(["coins", "usd"], index=["key", "period", "ts_ms"], variable_name="metric")
            .with_columns(metric=pl.concat_str(pl.lit("oi_"), pl.col("metric")))
            .select("key", "metric", "period", "ts_ms", "value"),
            rest_ratios.select("key", "metric", "period", "ts_ms", value="ratio"),
        ]
    ).unique(["key", "metric", "period", "ts_ms"], keep="last")
    archived = rows.on_the_hour.rename({"value": "archive_value", "period": "archive_period"})
    joined = archived.join(rest.rename({"value": "rest_value"}), on=["key", "metric", "ts_ms"])
    joined = joined.filter(pl.col("metric").str.starts_with("oi_") | (pl.col("period") == pl.col("archive_period")))
    return (
        joined.with_columns(relative_difference=(pl.col("archive_value") / pl.col("rest_value") - 1).abs())
        .filter(pl.col("relative_difference") > tolerance)
        .select("key", "metric", "period", "ts_ms", "archive_value", "rest_value", "relative_difference")
    )


def compared_buckets(rows: ArchiveRows) -> int:
    """How many archive buckets were available for comparison (a fill reports it beside the disagreements)."""
    return rows.on_the_hour.height
