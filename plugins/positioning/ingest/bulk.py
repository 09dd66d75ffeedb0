"""Bulk history fill: the first fill of the warehouse from what the venues still keep, in one command.

``positioning backfill --days 30 [--symbols BTC ETH] [--period 1h]`` fills the last ``days`` of hourly intervals
without one Airflow run per hour:

1. **fetch** (HTTP only): per venue with history (Binance ``/futures/data``: ``openInterestHist`` and the three
   ratio endpoints, pages of 500 buckets with ``startTime``/``endTime``; OKX rubik ``long-short-account-ratio``
   with ``begin``/``end``, one call per coin unless the venue truncates, then paged backwards), one *chunk* per
   venue listing and per (venue, symbol). Every response is landed by the shared :class:`RawLander` under the run
   id ``bulk__<first end>__<last end>__<period>``; a chunk's manifest (the same format the extract tasks write) is
   written only when all its pages arrived. The shared :class:`VenueClient` paces every call with the venues'
   documented limits (one client per venue, so one limiter per limit group).
2. **load** (the single DuckDB writer): the chunk manifests are parsed by the venue parsers, the facts of every
   hourly interval end are built at once by :func:`positioning.warehouse.normalize.bucket_facts` (the same "latest bucket
   ended at or before the end" rule a past-interval DAG run applies, vectorised), and each interval goes through
   the same audit (great-expectations gate, without Data Docs) and publish as a DAG run's load. What the venues
   cannot give (mark, funding, Bitget, Strike; intervals beyond a venue's retention) is recorded in
   ``ops.interval_unavailable`` exactly as a past-interval run records it. Then the marts are refreshed over the
   window and exported.

Resumable: the window is fixed by the first start and kept in a state file
(``$POSITIONING_DATA_DIR/manifests/bulk/<key>.json``, key = symbols, venues, days and period); a restart with the
same arguments reuses it, skips chunks whose manifest exists, and skips intervals listed in
``ops.bulk_fill_progress`` for the run. Publishing an interval replaces it (delete + insert by ts), so an
interval interrupted mid-publish is simply published again: kill + restart gives the same warehouse as one
uninterrupted fill. A finished fill marks its state done; the next invocation starts a new window. Resume on
the same day: a window whose oldest hour has meanwhile left a venue's retention loses that hour (a gap).

Intervals: hourly (the DAG's schedule), the newest ending at the last full hour that is already *past*
(``positioning.ingest.extract.freshness_tolerance``), so a scheduled run owns the current hours and the two never
overlap in meaning. ``--period`` is the bucket size asked of the venues (the DAG's ``lsPeriod``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from positioning import VENUES
from positioning.ingest.extract import (
    PERIOD_MS,
    RETENTION_MARGIN,
    freshness_tolerance,
    unavailable_kind,
    venue_client,
    venue_clock,
    venue_module,
    write_json_atomic,
)
from positioning.ingest.http import Endpoint, FetchResult, RateLimit, RetryPolicy, VenueClient
from positioning.ingest.raw import RawLander, interval_stamp, safe_component

HOUR = timedelta(hours=1)
HOUR_MS = 3_600_000
HISTORY_VENUES = ("binance", "okx")  # the venues with public history of what the DAG stores
MAX_PAGES = 1000  # a safety stop for a venue that keeps answering with the same page


class BulkInterrupted(RuntimeError):
    """Raised by the ``stop_after_*`` test hooks to simulate a kill at a chosen point."""


@dataclass(frozen=True)
class BulkPlan:
    """One bulk fill: which intervals (hourly ends), symbols, venues and bucket period."""

    first_end: datetime
    last_end: datetime
    symbols: tuple[str, ...]
    period: str = "1h"
    venues: tuple[str, ...] = HISTORY_VENUES
    as_of: datetime | None = None  # the clock the window and the retention edges were decided on

    @property
    def run_id(self) -> str:
        return f"bulk__{interval_stamp(self.first_end)}__{interval_stamp(self.last_end)}__{self.period}"

    @property
    def ends(self) -> list[datetime]:
        count = int((self.last_end - self.first_end) / HOUR) + 1
        return [self.first_end + i * HOUR for i in range(count)]

    def to_json(self) -> dict[str, Any]:
        return {
            "first_end": self.first_end.isoformat(),
            "last_end": self.last_end.isoformat(),
            "symbols": list(self.symbols),
            "period": self.period,
            "venues": list(self.venues),
            "as_of": self.as_of.isoformat() if self.as_of else None,
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> BulkPlan:
        return cls(
            first_end=datetime.fromisoformat(document["first_end"]),
            last_end=datetime.fromisoformat(document["last_end"]),
            symbols=tuple(document["symbols"]),
            period=document["period"],
            venues=tuple(document["venues"]),
            as_of=datetime.fromisoformat(document["as_of"]) if document.get("as_of") else None,
        )


def window_for(days: float, now: datetime, period: str = "1h") -> tuple[datetime, datetime]:
    """The hourly interval ends of the last ``days``: the newest is the last full hour already past."""
    newest = (now - freshness_tolerance(now - HOUR, now)).replace(minute=0, second=0, microsecond=0)
    count = max(1, int(days * 24))
    return newest - (count - 1) * HOUR, newest


# ------------------------------------------------------------------------------------------------- venues


@dataclass(frozen=True)
class HistorySeries:
    """One history endpoint of one venue: how it is paged and which bucket period it is asked for."""

    endpoint: Endpoint
    metrics: tuple[str, ...]
    period: str  # the venue's spelling
    period_ms: int
    retention: timedelta


def history_series(venue: str, ls_period: str) -> list[HistorySeries]:
    if venue == "binance":
        from positioning.venues import binance

        return [
            HistorySeries(endpoint, metrics, ls_period, PERIOD_MS[ls_period], binance.HISTORY_RETENTION)
            for endpoint, metrics in binance.HISTORY_ENDPOINTS
        ]
    if venue == "okx":
        from positioning.venues import okx

        period = okx.rubik_period(ls_period)
        return [
            HistorySeries(
                okx.LONG_SHORT_ACCOUNT_RATIO,
                ("ls_account",),
                period,
                okx.RUBIK_PERIOD_MS[period],
                okx.RUBIK_RETENTION[period],
            )
        ]
    return []


def first_fetchable_end(plan: BulkPlan, series: HistorySeries) -> datetime:
    """The oldest interval end whose window (one interval plus one bucket) the venue still keeps: the same test
    as :meth:`positioning.ingest.extract.ExtractRequest.retention_gap` applies to a past-interval run."""
    edge = (plan.as_of or datetime.now(UTC)) - series.retention + RETENTION_MARGIN
    needed = edge + HOUR + timedelta(milliseconds=series.period_ms)
    hours = -(-(needed - plan.first_end) // HOUR) if needed > plan.first_end else 0
    return plan.first_end + hours * HOUR


async def _page_binance(
    client: VenueClient, series: HistorySeries, instrument: str, symbol: str, start_ms: int, end_ms: int
) -> list[FetchResult]:
    """Ascending pages of ``limit`` 500 from ``startTime`` until a short page or the end."""
    from positioning.venues.binance import HISTORY_PAGE_LIMIT

    results, cursor = [], start_ms
    for _ in range(MAX_PAGES):
        params = {
            "symbol": instrument,
            "period": series.period,
            "startTime": cursor,
            "endTime": end_ms,
            "limit": HISTORY_PAGE_LIMIT,
        }
        result = await client.get(series.endpoint, params, symbol=symbol)
        results.append(result)
        if not result.ok or not isinstance(result.payload, list) or len(result.payload) < HISTORY_PAGE_LIMIT:
            break
        cursor = int(result.payload[-1]["timestamp"]) + series.period_ms
        if cursor > end_ms:
            break
    return results


async def _page_okx(
    client: VenueClient, series: HistorySeries, coin: str, start_ms: int, end_ms: int
) -> list[FetchResult]:
    """``begin``/``end`` over the whole range; if the venue answers with less than the range (newest first),
    ask again for what is older than its oldest row."""
    results, end = [], end_ms
    for _ in range(MAX_PAGES):
        params = {"ccy": coin, "period": series.period, "begin": start_ms, "end": end}
        result = await client.get(series.endpoint, params, symbol=coin)
        results.append(result)
        rows = result.payload.get("data") if result.ok and isinstance(result.payload, dict) else None
        if not rows:
            break
        oldest = min(int(row[0]) for row in rows)
        if oldest - series.period_ms < start_ms:
            break
        end = oldest - 1
    return results


# -------------------------------------------------------------------------------------------------- state


def _state_path(data: Path, key: str) -> Path:
    return data / "manifests" / "bulk" / f"{key}.json"


def _state_key(symbols: Iterable[str], venues: Iterable[str], days: float, period: str) -> str:
    text = json.dumps([sorted(symbols), sorted(venues), days, period])
    return "fill-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def chunk_dir(data: Path, run_id: str) -> Path:
    return data / "manifests" / "bulk" / f"run_id={safe_component(run_id)}"


def chunk_path(data: Path, run_id: str, venue: str, chunk: str) -> Path:
    return chunk_dir(data, run_id) / f"venue={safe_component(venue)}__chunk={safe_component(chunk)}.json"


def read_chunks(data: Path, run_id: str) -> list[dict[str, Any]]:
    manifests = []
    for path in sorted(chunk_dir(data, run_id).glob("venue=*__chunk=*.json")):
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest["manifest_path"] = str(path)
        manifests.append(manifest)
    return manifests


# -------------------------------------------------------------------------------------------------- fetch


@dataclass
class FetchReport:
    requests_sent: dict[str, int] = field(default_factory=dict)
    status_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    chunks_written: int = 0
    chunks_skipped: int = 0
    failed_chunks: list[str] = field(default_factory=list)

    @property
    def rate_limited(self) -> int:
        return sum(count for counts in self.status_counts.values() for s, count in counts.items() if s == "429")


def _manifest(
    plan: BulkPlan,
    venue: str,
    chunk: str,
    attempt: int,
    instruments: dict[str, str],
    skipped: dict[str, str],
    results: list[FetchResult],
    started: datetime,
    as_of: datetime | None,
    fatal: str | None = None,
) -> dict[str, Any]:
    failed = [r for r in results if not r.ok]
    return {
        "venue": venue,
        "run_id": plan.run_id,
        "attempt": attempt,
        "chunk": chunk,
        "interval_start": (plan.first_end - HOUR).isoformat(),
        "interval_end": plan.last_end.isoformat(),
        "ls_period": plan.period,
        "include_oi_change_24h": False,
        "symbols_requested": list(plan.symbols) if chunk == "listing" else [chunk],
        "instruments": instruments,
        "skipped": skipped,
        "status": "failed" if fatal else ("partial" if failed else "ok"),
        "fatal": fatal,
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "requests_sent": sum(r.attempts for r in results),
        "status_counts": {},
        "requests": [r.summary() for r in results],
        "history": True,
        "as_of": as_of.isoformat() if isinstance(as_of, datetime) else as_of,
        "unavailable": {},
    }


async def _fetch_venue(
    plan: BulkPlan,
    venue: str,
    data: Path,
    attempt: int,
    report: FetchReport,
    *,
    base_url: str,
    limits: dict[str, RateLimit] | None,
    retry: RetryPolicy | None,
    concurrency: int,
    timeout: float,
    stop_after_chunks: int | None,
    log: Callable[[str], None],
) -> None:
    module = venue_module(venue)
    lander = RawLander(data / "raw", venue, plan.last_end, plan.run_id, attempt)
    listing_path = chunk_path(data, plan.run_id, venue, "listing")
    async with venue_client(
        venue, base_url, lander, limits=limits, retry=retry, concurrency=concurrency, timeout=timeout, log=log
    ) as client:

        def written(path: Path, manifest: dict[str, Any]) -> None:
            manifest["status_counts"] = dict(client.status_counts)
            write_json_atomic(path, manifest)
            report.chunks_written += 1
            if stop_after_chunks is not None and report.chunks_written >= stop_after_chunks:
                raise BulkInterrupted(f"stopped after {report.chunks_written} chunks (test hook)")

        try:
            if listing_path.exists():
                listing_manifest = json.loads(listing_path.read_text(encoding="utf-8"))
                report.chunks_skipped += 1
            else:
                started = datetime.now(UTC)
                listing_endpoint, listing_params = _listing(venue)
                listing = await client.get(listing_endpoint, listing_params)
                instruments, skipped, fatal = {}, {}, None
                if listing.ok:
                    from positioning.ingest.extract import map_listed

                    parsed = module.PARSERS[listing_endpoint.name](listing.payload, listing_params)
                    instruments, skipped = map_listed(venue, parsed, plan.symbols)
                else:
                    fatal = f"{venue} {listing_endpoint.name} failed: {listing.error}"
                listing_manifest = _manifest(
                    plan,
                    venue,
                    "listing",
                    attempt,
                    instruments,
                    skipped,
                    [listing],
                    started,
                    venue_clock(listing),
                    fatal,
                )
                if fatal:
                    report.failed_chunks.append(f"{venue}/listing: {fatal}")
                    write_json_atomic(listing_path.with_suffix(".failed"), listing_manifest)
                    return
                written(listing_path, listing_manifest)

            async def symbol_chunk(symbol: str, instrument: str) -> None:
                path = chunk_path(data, plan.run_id, venue, symbol)
                if path.exists():
                    report.chunks_skipped += 1
                    return
                started = datetime.now(UTC)
                results: list[FetchResult] = []
                for series in history_series(venue, plan.period):
                    first = first_fetchable_end(plan, series)
                    if first > plan.last_end:
                        continue  # the whole window is beyond this venue's retention: a gap, nothing to ask
                    start_ms = int((first - HOUR).timestamp() * 1000) - series.period_ms
                    end_ms = int(plan.last_end.timestamp() * 1000)
                    if venue == "binance":
                        results += await _page_binance(client, series, instrument, symbol, start_ms, end_ms)
                    else:
                        results += await _page_okx(client, series, symbol, start_ms, end_ms)
                manifest = _manifest(
                    plan,
                    venue,
                    symbol,
                    attempt,
                    {symbol: instrument},
                    {},
                    results,
                    started,
                    listing_manifest.get("as_of"),
                )
                if manifest["status"] != "ok":
                    # Not checkpointed: a restart asks again (its raw files stay on disk as evidence).
                    report.failed_chunks.append(f"{venue}/{symbol}: {[r.error for r in results if not r.ok][:1]}")
                    return
                written(path, manifest)

            await asyncio.gather(*(symbol_chunk(s, i) for s, i in listing_manifest["instruments"].items()))
        finally:
            report.requests_sent[venue] = report.requests_sent.get(venue, 0) + client.requests_sent
            counts = report.status_counts.setdefault(venue, {})
            for status, count in client.status_counts.items():
                counts[status] = counts.get(status, 0) + count


def _listing(venue: str) -> tuple[Endpoint, dict[str, str]]:
    if venue == "binance":
        from positioning.venues import binance

        return binance.EXCHANGE_INFO, {}
    from positioning.venues import okx

    return okx.INSTRUMENTS, dict(okx.SWAP)


async def fetch(plan: BulkPlan, data: Path, attempt: int, base_urls: dict[str, str], **options: Any) -> FetchReport:
    """Fetch every missing chunk of the plan, the venues concurrently (each paced by its own limiters)."""
    report = FetchReport()
    limits = options.pop("limits", None) or {}
    await asyncio.gather(
        *(
            _fetch_venue(
                plan, venue, data, attempt, report, base_url=base_urls[venue], limits=limits.get(venue), **options
            )
            for venue in plan.venues
        )
    )
    return report


# --------------------------------------------------------------------------------------------------- load


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def unavailable_by_end(plan: BulkPlan) -> dict[datetime, dict[str, dict[str, str]]]:
    """Per interval end and venue: metric -> reason, as a past-interval DAG run would record it."""
    result: dict[datetime, dict[str, dict[str, str]]] = {end: {} for end in plan.ends}
    for venue in VENUES:
        base = venue_module(venue).past_unavailable()
        series = history_series(venue, plan.period) if venue in plan.venues else []
        first = [(s, first_fetchable_end(plan, s)) for s in series]
        for end in plan.ends:
            unavailable = dict(base)
            for s, first_end in first:
                if end < first_end:
                    reason = f"outside retention: {venue} {s.endpoint.name} keeps {s.retention.days} days of history"
                    unavailable.update({metric: reason for metric in s.metrics})
            if venue not in plan.venues:
                for s in history_series(venue, plan.period):
                    unavailable.update({m: f"not requested: the bulk fill did not include {venue}" for m in s.metrics})
            result[end][venue] = unavailable
    return result


def _raw_rows_with_ts(files: list[tuple[str, str, str, Any]]) -> pl.DataFrame:
    """The gate's raw-row frame plus each row's bucket ts (null for listing rows)."""
    from positioning.quality import raw_row_frame

    frame = raw_row_frame(files)
    return frame.with_columns(
        bucket_ms=pl.col("row_key").str.split("|").list.last().cast(pl.Int64, strict=False),
    ).filter(pl.col("row_type") != "Instrument")


def load(
    plan: BulkPlan,
    data: Path,
    *,
    log: Callable[[str], None],
    stop_after_intervals: int | None = None,
    config: Any = None,
) -> dict[str, Any]:
    """Parse the chunks, build every interval's facts at once, then audit and publish interval by interval."""
    from positioning import warehouse
    from positioning.quality import GxSession, QualityConfig, QualityGateError, previous_oi
    from positioning.warehouse.load import _audit, _insert, _publish_or_block, upsert_instruments
    from positioning.warehouse.marts import export_marts, refresh
    from positioning.warehouse.normalize import _symbol_map, bucket_facts, instrument_rows, parse_manifests

    config = config or replace(QualityConfig.from_env(), data_docs=0.0)  # Data Docs for 720 intervals: no
    chunks = [c for c in read_chunks(data, plan.run_id) if c["status"] == "ok"]
    parsed = parse_manifests(chunks)
    symbol_map = _symbol_map([c for c in chunks if c["chunk"] != "listing"])
    ends_ms = [int(end.timestamp() * 1000) for end in plan.ends]
    built = time.perf_counter()
    facts = bucket_facts(symbol_map, parsed, ends_ms, HOUR_MS) if symbol_map.height else None
    raw_rows = _raw_rows_with_ts(parsed.files)
    unavailable = unavailable_by_end(plan)
    listing = {c["venue"]: c for c in chunks if c["chunk"] == "listing"}
    log(
        f"bulk load: {len(chunks)} chunks parsed, facts of {len(ends_ms)} intervals built in "
        f"{time.perf_counter() - built:.2f} s"
    )
    summary: dict[str, Any] = {"published": 0, "skipped": 0, "blocked": [], "facts": 0}
    started = time.perf_counter()
    gate = GxSession(None)  # one context and one set of suites for every interval of the fill
    with warehouse.writer(data / "warehouse.duckdb", log=log) as con:
        done = {
            row[0]
            for row in con.execute("SELECT ts FROM ops.bulk_fill_progress WHERE run_id = ?", [plan.run_id]).fetchall()
        }
        for end, end_ms in zip(plan.ends, ends_ms, strict=True):
            ts = _naive(end)
            if ts in done:
                summary["skipped"] += 1
                continue
            staged, manifests = _stage_interval(plan, end, end_ms, facts, raw_rows, unavailable[end], listing)
            try:
                report = _audit(staged, manifests, end, plan.run_id, data, config, None, previous_oi(con, ts), gate)
                counts = _publish_or_block(con, staged, plan.run_id, report)
            except QualityGateError as exc:
                summary["blocked"].append(f"{ts.isoformat()}: {str(exc).splitlines()[1:2]}")
                continue
            con.execute(
                "INSERT OR REPLACE INTO ops.bulk_fill_progress VALUES (?, ?, ?, ?)",
                [plan.run_id, ts, counts["facts"], _naive(datetime.now(UTC))],
            )
            summary["published"] += 1
            summary["facts"] += counts["facts"]
            if summary["published"] % 24 == 0:  # a line per day of history: a long fill shows it is moving
                log(
                    f"bulk load: {summary['published'] + summary['skipped']}/{len(plan.ends)} intervals, "
                    f"{time.perf_counter() - started:.0f} s"
                )
            if stop_after_intervals is not None and summary["published"] >= stop_after_intervals:
                raise BulkInterrupted(f"stopped after {summary['published']} intervals (test hook)")
        # The run-level log (chunks as extract runs, their failures, parse errors) and the instruments, once.
        from positioning.warehouse.load import _ops_frames

        ops = _ops_frames(chunks, _naive(plan.last_end))
        parse_errors = pl.DataFrame(
            [{"ts": _naive(plan.last_end), "run_id": plan.run_id, **error} for error in parsed.errors],
            schema={
                "ts": pl.Datetime("us"),
                "run_id": pl.String,
                "venue": pl.String,
                "endpoint": pl.String,
                "raw_path": pl.String,
                "error": pl.String,
            },
        )
        con.execute("BEGIN TRANSACTION")
        for table in ("extract_runs", "extract_failures", "parse_errors"):
            con.execute(f"DELETE FROM ops.{table} WHERE run_id = ?", [plan.run_id])
        _insert(con, "ops.extract_runs", ops["extract_runs"])
        _insert(con, "ops.extract_failures", ops["extract_failures"])
        _insert(con, "ops.parse_errors", parse_errors)
        instruments = instrument_rows(parsed).with_columns(seen=pl.lit(_naive(datetime.now(UTC)), pl.Datetime("us")))
        upsert_instruments(con, instruments)
        con.execute("COMMIT")
        summary["load_seconds"] = round(time.perf_counter() - started, 1)
        marts_started = time.perf_counter()
        con.execute("BEGIN TRANSACTION")
        summary["marts"] = refresh(con, plan.ends, log=log)
        con.execute("COMMIT")
        export_marts(con, data / "exports")
        summary["marts_seconds"] = round(time.perf_counter() - marts_started, 1)
    return summary


def _no_instruments() -> pl.DataFrame:
    from positioning.warehouse.normalize import ParsedRows, instrument_rows

    return instrument_rows(ParsedRows()).with_columns(seen=pl.lit(None, pl.Datetime("us")))


def _stage_interval(
    plan: BulkPlan,
    end: datetime,
    end_ms: int,
    facts: pl.DataFrame | None,
    raw_rows: pl.DataFrame,
    unavailable: dict[str, dict[str, str]],
    listing: dict[str, dict[str, Any]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What ``positioning.warehouse.load.stage`` gives for one interval, from the bulk frames; and one manifest-like record
    per venue (what the gate's coverage check reads)."""
    ts = _naive(end)
    now = _naive(datetime.now(UTC))
    interval = pl.DataFrame() if facts is None else facts.filter(pl.col("end_ms") == end_ms).drop("end_ms")
    pairs = {(venue, metric) for venue, metrics in unavailable.items() for metric in metrics}
    if interval.height:
        interval = interval.filter(
            ~pl.concat_str("venue", pl.lit("|"), "metric").is_in([f"{v}|{m}" for v, m in pairs])
        ).with_columns(
            ts=pl.lit(ts, pl.Datetime("us")), run_id=pl.lit(plan.run_id), loaded_at=pl.lit(now, pl.Datetime("us"))
        )
    # The raw rows this interval could have used: buckets from one interval plus the longest period before it.
    longest = max(PERIOD_MS.values())
    window = raw_rows.filter(pl.col("bucket_ms").is_between(end_ms - HOUR_MS - longest, end_ms))
    manifests, skipped, unavailable_rows = [], [], []
    for venue in VENUES:
        chunk = listing.get(venue, {})
        manifests.append(
            {
                "venue": venue,
                "run_id": plan.run_id,
                "attempt": 1,
                "status": "ok" if chunk or venue not in plan.venues else "failed",
                "instruments": chunk.get("instruments", {}),
                "symbols_requested": list(plan.symbols),
                "skipped": chunk.get("skipped", {}),
                "unavailable": unavailable.get(venue, {}),
                "interval_start": (end - HOUR).isoformat(),
                "interval_end": end.isoformat(),
                "started_at": end.isoformat(),
                "finished_at": end.isoformat(),
            }
        )
        skipped += [{"ts": ts, "venue": venue, "symbol": s, "reason": r} for s, r in chunk.get("skipped", {}).items()]
        unavailable_rows += [
            {"ts": ts, "venue": venue, "metric": m, "kind": unavailable_kind(r), "reason": r, "run_id": plan.run_id}
            for m, r in unavailable.get(venue, {}).items()
        ]
    empty = {"ts": pl.Datetime("us"), "run_id": pl.String}
    staged = {
        "ts": ts,
        "facts": interval,
        "instruments": _no_instruments(),  # upserted once for the whole fill
        "parse_errors": pl.DataFrame(schema=empty),
        "raw_rows": window.drop("bucket_ms"),
        "extract_runs": pl.DataFrame(schema=empty),
        "extract_failures": pl.DataFrame(schema=empty),
        "skipped_symbols": pl.DataFrame(
            skipped, schema={"ts": pl.Datetime("us"), "venue": pl.String, "symbol": pl.String, "reason": pl.String}
        ),
        "interval_unavailable": pl.DataFrame(
            unavailable_rows,
            schema={
                "ts": pl.Datetime("us"),
                "venue": pl.String,
                "metric": pl.String,
                "kind": pl.String,
                "reason": pl.String,
                "run_id": pl.String,
            },
        ),
    }
    return staged, manifests


# ----------------------------------------------------------------------------------------------- the fill


def run_fill(
    days: float,
    symbols: Iterable[str],
    *,
    data: Path,
    base_urls: dict[str, str],
    period: str = "1h",
    venues: Iterable[str] = HISTORY_VENUES,
    now: datetime | None = None,
    limits: dict[str, dict[str, RateLimit]] | None = None,
    retry: RetryPolicy | None = None,
    concurrency: int = 16,
    timeout: float = 10.0,
    stop_after_chunks: int | None = None,
    stop_after_intervals: int | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Fetch (resuming) and load a bulk fill; returns what happened (requests, 429s, intervals, timings).

    ``now`` fixes the clock (tests against a frozen simulator); by default it is ours at the first start.
    """
    symbols = tuple(dict.fromkeys(s.strip().upper() for s in symbols))
    venues = tuple(v for v in HISTORY_VENUES if v in set(venues))
    if period not in PERIOD_MS:
        raise ValueError(f"--period must be one of {', '.join(PERIOD_MS)}, got {period!r}")
    state_path = _state_path(data, _state_key(symbols, venues, days, period))
    state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists() else None
    if state is None or state.get("done"):
        clock = now or datetime.now(UTC)
        first_end, last_end = window_for(days, clock, period)
        plan = BulkPlan(first_end, last_end, symbols, period, venues, clock)
        state = {"plan": plan.to_json(), "starts": 0, "done": False}
        log(f"bulk fill {plan.run_id}: {len(plan.ends)} hourly intervals, {len(symbols)} symbols, venues {venues}")
    else:
        plan = BulkPlan.from_json(state["plan"])
        log(f"bulk fill {plan.run_id}: resuming (start {state['starts'] + 1})")
    state["starts"] += 1
    write_json_atomic(state_path, state)
    started = time.perf_counter()
    report = asyncio.run(
        fetch(
            plan,
            data,
            state["starts"],
            base_urls,
            limits=limits,
            retry=retry,
            concurrency=concurrency,
            timeout=timeout,
            stop_after_chunks=stop_after_chunks,
            log=log,
        )
    )
    fetched = time.perf_counter()
    log(
        f"bulk fetch: {sum(report.requests_sent.values())} requests {report.requests_sent}, "
        f"{report.rate_limited} answered 429, {report.chunks_written} chunks written, {report.chunks_skipped} "
        f"already done, {len(report.failed_chunks)} failed, {fetched - started:.1f} s"
    )
    for line in report.failed_chunks[:10]:
        log(f"  failed chunk {line}")
    summary = load(plan, data, log=log, stop_after_intervals=stop_after_intervals)
    finished = time.perf_counter()
    complete = not report.failed_chunks and not summary["blocked"]
    if complete:
        state["done"] = True
        write_json_atomic(state_path, state)
    log(
        f"bulk load: {summary['published']} intervals published ({summary['facts']} facts), "
        f"{summary['skipped']} already published, {len(summary['blocked'])} blocked by the quality gate; "
        f"{finished - fetched:.1f} s"
    )
    return {
        "run_id": plan.run_id,
        "plan": plan.to_json(),
        "complete": complete,
        "requests_sent": report.requests_sent,
        "status_counts": report.status_counts,
        "rate_limited": report.rate_limited,
        "failed_chunks": report.failed_chunks,
        "fetch_seconds": round(fetched - started, 2),
        "load_seconds": round(finished - fetched, 2),
        **summary,
    }
