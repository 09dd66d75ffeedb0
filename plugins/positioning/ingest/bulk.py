"""Bulk history fill: the first fill of the warehouse from what the venues still keep, in one command.

``positioning backfill --days 30 [--symbols BTC ETH] [--period 1h]`` fills the last ``days`` of hourly intervals
without one Airflow run per hour:

1. **fetch** (HTTP only): per venue with history (the adapter's ``history`` series, each paged by the paginator
   attached to it: Binance ascending pages of 500 buckets, OKX one ``begin``/``end`` window paged backwards
   when truncated), one *chunk* per venue listing and per (venue, symbol). Every response is landed by the shared :class:`RawLander` under the run
   id ``bulk__<first end>__<last end>__<period>``; a chunk's manifest (the same format the extract tasks write) is
   written only when all its pages arrived. The shared :class:`VenueClient` paces every call with the venues'
   documented limits (one client per venue, so one limiter per limit group).
2. **load** (``positioning.warehouse.bulk_load``, the single DuckDB writer): the chunk manifests are parsed by the venue parsers, the facts of every
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
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from positioning import registry
from positioning.ingest import archive_fill
from positioning.ingest.extract import venue_client
from positioning.ingest.http import FetchResult, RateLimit, RetryPolicy
from positioning.ingest.manifests import Manifest, ManifestStore, RequestRecord
from positioning.ingest.raw import RawLander, interval_stamp
from positioning.periods import DEFAULT_PERIOD, PeriodError, validate_period
from positioning.symbols import SymbolError, normalise_symbols
from positioning.venues.base import (
    RETENTION_MARGIN,
    ExtractRequest,
    HistorySeries,
    fetch_listing,
    freshness_tolerance,
)

HOUR = timedelta(hours=1)
MAX_DAYS = 3660


class BulkInterrupted(RuntimeError):
    """Raised by the ``stop_after_*`` test hooks to simulate a kill at a chosen point."""


class FillInputError(ValueError):
    """Bad input to the bulk fill (a period, a window, a venue or symbols); one line saying what to do."""


@dataclass(frozen=True)
class BulkPlan:
    """One bulk fill: which intervals (hourly ends), symbols, venues and bucket period."""

    first_end: datetime
    last_end: datetime
    symbols: tuple[str, ...]
    period: str = DEFAULT_PERIOD
    venues: tuple[str, ...] = ()
    as_of: datetime | None = None  # the clock the window and the retention edges were decided on

    @property
    def run_id(self) -> str:
        return f"bulk__{interval_stamp(self.first_end)}__{interval_stamp(self.last_end)}__{self.period}"

    @property
    def ends(self) -> list[datetime]:
        count = int((self.last_end - self.first_end) / HOUR) + 1
        return [self.first_end + i * HOUR for i in range(count)]

    def series(self, venue: str) -> list[HistorySeries]:
        return registry.get(venue).history(self.period)

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


def window_for(days: float, now: datetime, period: str = DEFAULT_PERIOD) -> tuple[datetime, datetime]:
    """The hourly interval ends of the last ``days``: the newest is the last full hour already past."""
    newest = (now - freshness_tolerance(now - HOUR, now)).replace(minute=0, second=0, microsecond=0)
    count = max(1, int(days * 24))
    return newest - (count - 1) * HOUR, newest


def validated(
    days: float, symbols: Iterable[str], venues: Iterable[str] | None, period: str
) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """The fill's inputs checked before anything is written: (symbols, venues, period) or FillInputError."""
    if isinstance(days, bool) or not isinstance(days, int | float) or not 1 / 24 <= days <= MAX_DAYS:
        raise FillInputError(f"--days must be between 0.05 (one hour) and {MAX_DAYS}, got {days}")
    try:
        period = validate_period(period, name="--period")
        checked = tuple(normalise_symbols(list(symbols) or None))
    except (PeriodError, SymbolError) as exc:
        raise FillInputError(str(exc).replace("symbols[", "--symbols[")) from None
    history = registry.history_names()
    wanted = tuple(venues) if venues is not None else history
    for venue in wanted:
        if venue not in history:
            known = "a venue" if venue in registry.names() else "an unknown venue"
            raise FillInputError(
                f"--venues {venue!r} is {known} without history; use one or more of {', '.join(history)}"
            )
    return checked, tuple(v for v in history if v in wanted), period


def first_fetchable_end(plan: BulkPlan, series: HistorySeries) -> datetime:
    """The oldest interval end whose window (one interval plus one bucket) the venue still keeps: the same test
    as :meth:`positioning.venues.base.ExtractRequest.retention_gap` applies to a past-interval run."""
    edge = (plan.as_of or datetime.now(UTC)) - series.retention + RETENTION_MARGIN
    needed = edge + HOUR + timedelta(milliseconds=series.period_ms)
    hours = -(-(needed - plan.first_end) // HOUR) if needed > plan.first_end else 0
    return plan.first_end + hours * HOUR


def coarser_until(plan: BulkPlan, venue: str, series: HistorySeries) -> datetime:
    """The last interval end a series is asked for: the window's, or for a ``coarser`` series the hour before its
    finer series reaches (it fills only what that one no longer keeps)."""
    if not series.coarser:
        return plan.last_end
    finer = [s for s in plan.series(venue) if not s.coarser and set(s.metrics) & set(series.metrics)]
    return min((first_fetchable_end(plan, s) for s in finer), default=plan.last_end + HOUR) - HOUR


def rest_first_end(plan: BulkPlan) -> datetime | None:
    """The oldest interval end Binance's REST history reaches (None when the plan has no Binance)."""
    if archive_fill.VENUE not in plan.venues:
        return None
    return max(first_fetchable_end(plan, series) for series in plan.series(archive_fill.VENUE))


def archive_days_of(plan: BulkPlan) -> list[date]:
    """The days the plan asks of the Binance archive (none without Binance in the plan)."""
    if archive_fill.VENUE not in plan.venues:
        return []
    return archive_fill.archive_days(plan.first_end, plan.last_end, rest_first_end(plan))


def state_path(data: Path, key: str) -> Path:
    return ManifestStore(data).bulk_dir() / f"{key}.json"


def state_key(symbols: Iterable[str], venues: Iterable[str], days: float, period: str) -> str:
    text = json.dumps([sorted(symbols), sorted(venues), days, period])
    return "fill-" + hashlib.sha256(text.encode()).hexdigest()[:16]


# -------------------------------------------------------------------------------------------------- fetch


@dataclass
class FetchReport:
    requests_sent: dict[str, int] = field(default_factory=dict)
    status_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    chunks_written: int = 0
    chunks_skipped: int = 0
    failed_chunks: list[str] = field(default_factory=list)
    mapped: dict[str, set[str]] = field(default_factory=dict)  # venue -> symbols its listing maps
    archive: archive_fill.ArchiveReport | None = None

    @property
    def rate_limited(self) -> int:
        return sum(count for counts in self.status_counts.values() for s, count in counts.items() if s == "429")


def chunk_manifest(
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
) -> Manifest:
    failed = [r for r in results if not r.ok]
    return Manifest(
        venue=venue,
        run_id=plan.run_id,
        attempt=attempt,
        chunk=chunk,
        interval_start=plan.first_end - HOUR,
        interval_end=plan.last_end,
        ls_period=plan.period,
        symbols_requested=tuple(plan.symbols) if chunk == "listing" else (chunk,),
        instruments=instruments,
        skipped=skipped,
        status="failed" if fatal else ("partial" if failed else "ok"),
        fatal=fatal,
        started_at=started,
        finished_at=datetime.now(UTC),
        requests_sent=sum(r.attempts for r in results),
        requests=tuple(RequestRecord.from_json(r.summary()) for r in results),
        history=True,
        as_of=as_of,
    )


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
    spec = registry.get(venue)
    store = ManifestStore(data)
    lander = RawLander(data / "raw", venue, plan.last_end, plan.run_id, attempt)
    async with venue_client(
        venue, base_url, lander, limits=limits, retry=retry, concurrency=concurrency, timeout=timeout, log=log
    ) as client:

        def written(manifest: Manifest) -> None:
            store.write_chunk(dataclasses.replace(manifest, status_counts=dict(client.status_counts)))
            report.chunks_written += 1
            if stop_after_chunks is not None and report.chunks_written >= stop_after_chunks:
                raise BulkInterrupted(f"stopped after {report.chunks_written} chunks (test hook)")

        try:
            listing = store.read_chunk(plan.run_id, venue, "listing")
            if listing is not None:
                report.chunks_skipped += 1
            else:
                started = datetime.now(UTC)
                # The same first step as every extract plan: listing, symbol mapping, the venue's clock.
                request = ExtractRequest(plan.symbols, plan.period, plan.first_end - HOUR, plan.last_end)
                found, _, _ = await fetch_listing(client, venue, spec.listing, request)
                fatal = found.fatal
                listing = chunk_manifest(
                    plan, venue, "listing", attempt, found.instruments, found.skipped, found.results, started,
                    found.as_of, fatal,
                )  # fmt: skip
                if fatal:
                    report.failed_chunks.append(f"{venue}/listing: {fatal}")
                    store.write_chunk(listing, failed=True)
                    return
                written(listing)
            report.mapped[venue] = set(listing.instruments)

            async def symbol_chunk(symbol: str, instrument: str) -> None:
                if store.read_chunk(plan.run_id, venue, symbol) is not None:
                    report.chunks_skipped += 1
                    return
                started = datetime.now(UTC)
                results: list[FetchResult] = []
                for series in plan.series(venue):
                    first, last = first_fetchable_end(plan, series), coarser_until(plan, venue, series)
                    if first > min(plan.last_end, last):
                        continue  # beyond this venue's retention (a gap), or a finer series covers it all
                    start_ms = int((first - HOUR).timestamp() * 1000) - series.period_ms
                    start_ms -= start_ms % series.period_ms  # from the start of the bucket it falls in (1D: midnight)
                    end_ms = int(min(plan.last_end, last).timestamp() * 1000)
                    params = series.params(symbol, instrument)
                    results += await series.paginator.pages(client, series.endpoint, params, symbol, start_ms, end_ms)
                manifest = chunk_manifest(
                    plan, venue, symbol, attempt, {symbol: instrument}, {}, results, started, listing.as_of
                )
                if manifest.status != "ok":
                    # Not checkpointed: a restart asks again (its raw files stay on disk as evidence).
                    report.failed_chunks.append(f"{venue}/{symbol}: {[r.error for r in results if not r.ok][:1]}")
                    return
                written(manifest)

            await asyncio.gather(*(symbol_chunk(s, i) for s, i in listing.instruments.items()))
        finally:
            report.requests_sent[venue] = report.requests_sent.get(venue, 0) + client.requests_sent
            counts = report.status_counts.setdefault(venue, {})
            for status, count in client.status_counts.items():
                counts[status] = counts.get(status, 0) + count


async def fetch(plan: BulkPlan, data: Path, attempt: int, base_urls: dict[str, str], **options: Any) -> FetchReport:
    """Fetch every missing chunk of the plan, the venues concurrently (each paced by its own limiters).

    ``on_last_venue``: called once when a single venue is left fetching (with more than one in the plan): from then
    on the process mostly waits on that venue's rate limit, so CPU work can start without delaying a request."""
    report = FetchReport()
    limits = options.pop("limits", None) or {}
    on_last_venue = options.pop("on_last_venue", None)
    left = len(plan.venues)

    async def one(venue: str) -> None:
        nonlocal left
        try:
            await _fetch_venue(
                plan, venue, data, attempt, report, base_url=base_urls[venue], limits=limits.get(venue), **options
            )
        finally:
            left -= 1
            if left == 1 and on_last_venue is not None:
                on_last_venue()

    await asyncio.gather(*(one(venue) for venue in plan.venues))
    days = archive_days_of(plan) if archive_fill.CONNECTION in base_urls else []
    listing = ManifestStore(data).read_chunk(plan.run_id, archive_fill.VENUE, "listing") if days else None
    if listing is not None:
        report.archive = await archive_fill.fetch_archive(
            plan, data, attempt, listing.instruments, days, base_url=base_urls[archive_fill.CONNECTION],
            make_manifest=chunk_manifest, retry=options.get("retry"), log=options.get("log") or print,
            limits=limits.get(archive_fill.CONNECTION),
        )  # fmt: skip
        report.failed_chunks += report.archive.failed_chunks
        report.requests_sent[archive_fill.CONNECTION] = report.archive.requests_sent
        report.status_counts[archive_fill.CONNECTION] = report.archive.status_counts
    return report
