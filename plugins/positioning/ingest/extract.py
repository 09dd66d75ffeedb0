"""The extract runner: one venue's snapshot plan for one interval, every response landed, a manifest out.

The venue's adapter (``positioning.registry.get(venue)``, see ``positioning.venues.base``) says what to ask;
this module wires it to the shared :class:`~positioning.ingest.http.VenueClient` with the adapter's documented
limits and envelope, runs its plan, and writes the manifest (what was requested, what failed, which raw files
hold the responses) through the manifest store. HTTP only: no DuckDB.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from positioning import registry
from positioning.ingest.http import RateLimit, RetryPolicy, VenueClient
from positioning.ingest.manifests import Manifest, ManifestStore, RequestRecord
from positioning.ingest.raw import RawLander
from positioning.venues.base import ExtractRequest, VenueExtract


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
    """The shared client wired to a venue's documented limits (``limits`` replaces entries) and envelope."""
    spec = registry.get(venue)
    return VenueClient(
        venue,
        base_url,
        limits={**spec.limits, **(limits or {})},
        envelope_error=spec.envelope_error,
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
) -> Manifest:
    """Extract one venue for one interval; land every response; write and return the manifest.

    ``limits`` replaces entries of the venue's documented rate limits (tests against a simulator that enforces
    other limits); production runs always use the documented ones.
    """
    spec = registry.get(venue)
    lander = RawLander(data_dir / "raw", venue, request.interval_end, run_id, attempt)
    started = datetime.now(UTC)
    async with venue_client(
        venue, base_url, lander, limits=limits, retry=retry, concurrency=concurrency, timeout=timeout, log=log
    ) as client:
        extract = await spec.plan(client, request)
        requests_sent = client.requests_sent
        status_counts = dict(client.status_counts)
    manifest = Manifest(
        venue=venue,
        run_id=run_id,
        attempt=attempt,
        interval_start=request.interval_start,
        interval_end=request.interval_end,
        ls_period=request.ls_period,
        include_oi_change_24h=request.include_oi_change_24h,
        symbols_requested=tuple(request.symbols),
        instruments=extract.instruments,
        skipped=extract.skipped,
        status=venue_status(extract),
        fatal=extract.fatal,
        started_at=started,
        finished_at=datetime.now(UTC),
        requests_sent=requests_sent,
        status_counts=status_counts,
        requests=tuple(RequestRecord.from_json(result.summary()) for result in extract.results),
        history=extract.history,
        as_of=extract.as_of,
        unavailable=extract.unavailable,
    )
    return ManifestStore(data_dir).write(manifest)


def run_extract(venue: str, base_url: str, request: ExtractRequest, **options: Any) -> Manifest:
    """Synchronous entry point for Airflow tasks and the CLI."""
    return asyncio.run(extract_venue(venue, base_url, request, **options))
