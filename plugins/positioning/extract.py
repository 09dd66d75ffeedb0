"""Running one venue's extraction for one data interval: HTTP only, every response landed, a manifest out.

Each venue module (``positioning.venues.<venue>``) provides:

* ``VENUE``: its name; ``LIMITS``: rate-limit groups (``http.RateLimit``) from the documented limits;
* ``envelope_error(payload)``: its error envelope, for the shared retry logic;
* ``PARSERS``: endpoint name → pure parser ``(payload, params) -> list[row]`` (rows from ``positioning.rows``);
* ``async def extract(client, request) -> VenueExtract``: which endpoints to call for a request (batch
  endpoints where the venue has them, per-symbol calls only where it has none).

This module wires a venue module to the shared :class:`~positioning.http.VenueClient`, runs it, and writes the
manifest (what was requested, what failed, which raw files hold the responses) next to the raw files.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from positioning.http import FetchResult, RateLimit, RetryPolicy, VenueClient
from positioning.params import LS_PERIODS  # noqa: F401  (re-exported for venue modules)
from positioning.raw import RawLander, interval_stamp, safe_component
from positioning.rows import Instrument

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


@dataclass(frozen=True)
class ExtractRequest:
    """What one extract task asks of one venue."""

    symbols: tuple[str, ...]  # validated base symbols
    ls_period: str  # one of LS_PERIODS
    interval_start: datetime
    interval_end: datetime
    include_oi_change_24h: bool = False

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
    async with VenueClient(
        venue,
        base_url,
        limits={**module.LIMITS, **(limits or {})},
        envelope_error=module.envelope_error,
        lander=lander,
        retry=retry,
        concurrency=concurrency,
        timeout=timeout,
        log=log,
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
