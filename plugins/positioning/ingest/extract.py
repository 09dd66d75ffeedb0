"""Running one venue's extraction for one data interval: HTTP only, every response landed, a manifest out.

Each venue module (``positioning.venues.<venue>``) provides:

* ``VENUE``: its name; ``LIMITS``: rate-limit groups (``http.RateLimit``) from the documented limits;
* ``envelope_error(payload)``: its error envelope, for the shared retry logic;
* ``PARSERS``: endpoint name → pure parser ``(payload, params) -> list[row]`` (rows from ``positioning.rows``);
* ``async def extract(client, request) -> VenueExtract``: which endpoints to call for a request (batch
  endpoints where the venue has them, per-symbol calls only where it has none).

This module wires a venue module to the shared :class:`~positioning.ingest.http.VenueClient`, runs it, and writes the
manifest (what was requested, what failed, which raw files hold the responses) next to the raw files.

Current and past intervals
--------------------------
A run asks the venues for its own data interval. Whether that interval is *past* is decided on the venue's clock
(the ``Date`` header of the venue's listing response, which every plan fetches first; our clock if it has none;
``ExtractRequest.now`` overrides both): an interval is past when its end is older than
:func:`freshness_tolerance` (the larger of 90 minutes and two interval lengths). A current interval uses the
snapshot endpoints (current OI, mark, funding) plus the ratio history windows, as the scheduled run always did.
A past interval uses only history endpoints, over the same window, so that the values do not depend on when the
run happened: Binance ``openInterestHist`` and the three ratio endpoints (``startTime``/``endTime``), OKX rubik
(``begin``/``end``). What a venue keeps only as a snapshot (Binance/OKX current OI, mark and funding, every
Bitget endpoint, Strike) is recorded in the manifest's ``unavailable`` (metric -> reason) instead of storing
today's value under an old timestamp. An interval older than a venue keeps an endpoint (its *retention*:
Binance 30 days, OKX rubik 2/30/180 days for 5m/1H/1D) is not requested at all and is recorded the same way
(a gap with its reason, not an error), see :func:`retention_gap`.

The loader turns ``unavailable`` into ``ops.interval_unavailable`` rows, keeps whatever an earlier run stored for
those (venue, metric) pairs, and ``marts.coverage`` tells "not available from the venue" from "missing".
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from positioning.ingest.http import Endpoint, FetchResult, RateLimit, RetryPolicy, VenueClient
from positioning.ingest.raw import RawLander, interval_stamp, read_raw, safe_component
from positioning.params import LS_PERIODS  # noqa: F401  (re-exported for venue modules)
from positioning.rows import Instrument, ParseError

PERIOD_MS = {
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}
DAY = timedelta(days=1)
# The venue drops its oldest bucket while we are still asking: a window closer than this to the retention edge
# is treated as outside it (a clean gap rather than a 400 from the venue).
RETENTION_MARGIN = timedelta(minutes=10)
MIN_FRESHNESS = timedelta(minutes=90)
OUTSIDE_RETENTION = "outside retention"  # how a retention gap's reason starts (ops.interval_unavailable.kind)


def unavailable_kind(reason: str) -> str:
    """``retention`` (the venue no longer keeps it) or ``snapshot_only`` (the venue never kept it)."""
    return "retention" if reason.startswith(OUTSIDE_RETENTION) else "snapshot_only"


def freshness_tolerance(interval_start: datetime, interval_end: datetime) -> timedelta:
    """How long after its end an interval still counts as current: max(90 min, 2 x its length).

    Within it, the snapshot endpoints still describe the interval (a scheduled run, or a UI trigger later in
    the following hour); beyond it they describe today, and only history endpoints are used. It is also longer
    than one 1h bucket, so the bucket ending at the interval end has ended (and is served) by then.
    """
    return max(MIN_FRESHNESS, 2 * (interval_end - interval_start))


@dataclass(frozen=True)
class ExtractRequest:
    """What one extract task asks of one venue."""

    symbols: tuple[str, ...]  # validated base symbols
    ls_period: str  # one of LS_PERIODS
    interval_start: datetime
    interval_end: datetime
    include_oi_change_24h: bool = False
    now: datetime | None = None  # the clock to plan against; None = the venue's (see the module docstring)

    def with_clock(self, venue_now: datetime | None) -> ExtractRequest:
        """This request with ``now`` set: an explicit ``now`` wins, then the venue's clock, then ours."""
        if self.now is not None:
            return self
        return dataclasses.replace(self, now=venue_now or datetime.now(UTC))

    @property
    def is_past(self) -> bool:
        """The interval ended longer ago than :func:`freshness_tolerance`: history endpoints only."""
        now = self.now or datetime.now(UTC)
        return now - self.interval_end > freshness_tolerance(self.interval_start, self.interval_end)

    def retention_gap(self, oldest_needed_ms: int, retention: timedelta, what: str) -> str | None:
        """Why ``what`` cannot be asked for this interval (its oldest bucket is older than the venue keeps it),
        or None when it can."""
        now = self.now or datetime.now(UTC)
        edge = now - retention + RETENTION_MARGIN
        if datetime.fromtimestamp(oldest_needed_ms / 1000, UTC) < edge:
            return (
                f"{OUTSIDE_RETENTION}: {what} keeps {retention.days or retention} days of history and this interval "
                f"needs data from {datetime.fromtimestamp(oldest_needed_ms / 1000, UTC):%Y-%m-%d %H:%M} UTC"
            )
        return None

    @property
    def interval_end_ms(self) -> int:
        return int(self.interval_end.timestamp() * 1000)

    @property
    def interval_start_ms(self) -> int:
        return int(self.interval_start.timestamp() * 1000)


@dataclass
class VenueExtract:
    """What a venue module's ``extract`` returns."""

    venue: str
    results: list[FetchResult] = field(default_factory=list)
    instruments: dict[str, str] = field(default_factory=dict)  # base symbol -> venue instrument
    skipped: dict[str, str] = field(default_factory=dict)  # base symbol -> why it was not requested
    fatal: str | None = None  # set when nothing useful could be fetched (listing failed, geo-block...)
    # metric -> why the venue cannot give it for this interval (snapshot-only endpoint, outside retention)
    unavailable: dict[str, str] = field(default_factory=dict)
    history: bool = False  # the past-interval (history endpoints only) plan was used
    as_of: datetime | None = None  # the clock the plan was decided on


SNAPSHOT_ONLY = "not available for this interval: {venue} {endpoint} gives only the current value (no history)"


def snapshot_only(venue: str, endpoint: str, metrics: tuple[str, ...]) -> dict[str, str]:
    return {metric: SNAPSHOT_ONLY.format(venue=venue, endpoint=endpoint) for metric in metrics}


def venue_clock(result: FetchResult) -> datetime | None:
    """The venue's clock when it answered: the ``Date`` header of the landed response (None if absent)."""
    if not result.raw_paths:
        return None
    try:
        date = read_raw(result.raw_paths[-1]).meta.get("headers", {}).get("date")
        return parsedate_to_datetime(date).astimezone(UTC) if date else None
    except (OSError, ValueError, TypeError, KeyError):
        return None


def venue_module(venue: str) -> ModuleType:
    from positioning import VENUES

    if venue not in VENUES:
        raise ValueError(f"unknown venue {venue!r}; expected one of {', '.join(VENUES)}")
    return importlib.import_module(f"positioning.venues.{venue}")


def manifest_path(data_dir: Path, venue: str, interval_end: datetime, run_id: str, attempt: int) -> Path:
    return (
        data_dir
        / "manifests"
        / f"interval_end={interval_stamp(interval_end)}"
        / f"run_id={safe_component(run_id)}"
        / f"venue={safe_component(venue)}__try={attempt:02d}.json"
    )


def write_json_atomic(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=1, default=str)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_name, path)
    except BaseException:
        os.unlink(temp_name)
        raise


def venue_status(extract: VenueExtract) -> str:
    """``failed`` (nothing usable), ``partial`` (some requests failed) or ``ok``."""
    if extract.fatal:
        return "failed"
    if any(not result.ok for result in extract.results):
        return "partial"
    return "ok"


def venue_client(
    venue: str,
    base_url: str,
    lander: RawLander,
    *,
    limits: Mapping[str, RateLimit] | None = None,
    retry: RetryPolicy | None = None,
    concurrency: int = 8,
    timeout: float = 10.0,
    log: Callable[[str], None] | None = None,
) -> VenueClient:
    """The shared client wired to a venue module's documented limits (``limits`` replaces entries) and envelope."""
    module = venue_module(venue)
    return VenueClient(
        venue,
        base_url,
        limits={**module.LIMITS, **(limits or {})},
        envelope_error=module.envelope_error,
        lander=lander,
        retry=retry,
        concurrency=concurrency,
        timeout=timeout,
        log=log,
    )


async def extract_venue(
    venue: str,
    base_url: str,
    request: ExtractRequest,
    *,
    data_dir: Path,
    run_id: str,
    attempt: int = 1,
    retry: RetryPolicy | None = None,
    concurrency: int = 8,
    timeout: float = 10.0,
    limits: Mapping[str, RateLimit] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Extract one venue for one interval; land every response; write and return the manifest.

    ``limits`` replaces entries of the venue's documented rate limits (tests against a simulator that enforces
    other limits); production runs always use the documented ones.
    """
    module = venue_module(venue)
    lander = RawLander(data_dir / "raw", venue, request.interval_end, run_id, attempt)
    started = datetime.now(UTC)
    async with venue_client(
        venue, base_url, lander, limits=limits, retry=retry, concurrency=concurrency, timeout=timeout, log=log
    ) as client:
        extract = await module.extract(client, request)
        requests_sent = client.requests_sent
        status_counts = dict(client.status_counts)
    finished = datetime.now(UTC)
    manifest = {
        "venue": venue,
        "run_id": run_id,
        "attempt": attempt,
        "interval_start": request.interval_start.isoformat(),
        "interval_end": request.interval_end.isoformat(),
        "ls_period": request.ls_period,
        "include_oi_change_24h": request.include_oi_change_24h,
        "symbols_requested": list(request.symbols),
        "instruments": extract.instruments,
        "skipped": extract.skipped,
        "status": venue_status(extract),
        "fatal": extract.fatal,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "requests_sent": requests_sent,
        "status_counts": status_counts,
        "requests": [result.summary() for result in extract.results],
        "history": extract.history,
        "as_of": extract.as_of.isoformat() if extract.as_of else None,
        "unavailable": extract.unavailable,
    }
    path = manifest_path(data_dir, venue, request.interval_end, run_id, attempt)
    write_json_atomic(path, manifest)
    manifest["manifest_path"] = str(path)
    return manifest


def run_extract(venue: str, base_url: str, request: ExtractRequest, **options: Any) -> dict[str, Any]:
    """Synchronous entry point for Airflow tasks and the CLI."""
    return asyncio.run(extract_venue(venue, base_url, request, **options))


async def gather_per_symbol(calls: list[Any]) -> list[FetchResult]:
    """Run per-symbol coroutines concurrently; the client's limiters pace them."""
    return list(await asyncio.gather(*calls))


def map_listed(
    venue: str, instruments: list[Instrument], symbols: tuple[str, ...]
) -> tuple[dict[str, str], dict[str, str]]:
    """Base symbol -> tradable venue instrument, and base symbol -> why it is skipped on this venue.

    A symbol the venue does not list (or lists but does not trade) is skipped and reported, not an error.
    """
    by_symbol: dict[str, Instrument] = {}
    for instrument in instruments:
        current = by_symbol.get(instrument.symbol)
        if current is None or (instrument.tradable and not current.tradable):
            by_symbol[instrument.symbol] = instrument
    mapped, skipped = {}, {}
    for symbol in symbols:
        instrument = by_symbol.get(symbol)
        if instrument is None:
            skipped[symbol] = f"not listed on {venue}"
        elif not instrument.tradable:
            skipped[symbol] = f"{instrument.instrument} is {instrument.status} on {venue}, not trading"
        else:
            mapped[symbol] = instrument.instrument
    return mapped, skipped


async def fetch_listing(
    client: VenueClient,
    venue: str,
    endpoint: Endpoint,
    params: Mapping[str, Any] | None,
    parse: Callable[[Any], list[Instrument]],
    request: ExtractRequest,
) -> tuple[VenueExtract, ExtractRequest, FetchResult]:
    """Every venue plan's first step: the listing call, which symbols the venue trades, and the venue's clock.

    Returns the extract so far (``fatal`` set when the listing failed or did not parse: nothing else is asked),
    the request with ``now`` set from the listing's ``Date`` header, and the listing response itself.
    """
    result = VenueExtract(venue)
    listing = await client.get(endpoint, params)
    result.results.append(listing)
    if not listing.ok:
        result.fatal = f"{venue} {endpoint.name} failed: {listing.error}"
        return result, request, listing
    try:
        instruments = parse(listing.payload)
    except ParseError as exc:
        result.fatal = str(exc)
        return result, request, listing
    result.instruments, result.skipped = map_listed(venue, instruments, request.symbols)
    request = request.with_clock(venue_clock(listing))
    result.as_of = request.now
    return result, request, listing
