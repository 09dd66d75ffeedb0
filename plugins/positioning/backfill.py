"""The bulk history fill, end to end: ``positioning backfill --days 30 [--symbols BTC ETH] [--period 1h]``.

It validates the input, fixes (or resumes) the window, fetches every missing chunk (``positioning.ingest.bulk``:
HTTP only, resumable) and loads the window (``positioning.warehouse.bulk_load``: every interval through the same
audit → publish as a DAG run). See ``positioning.ingest.bulk`` for the window, the chunks and resuming.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from positioning.ingest.bulk import (
    BulkInterrupted,
    BulkPlan,
    FillInputError,
    fetch,
    state_key,
    state_path,
    validated,
    window_for,
)
from positioning.ingest.http import RateLimit, RetryPolicy
from positioning.ingest.manifests import write_json_atomic
from positioning.periods import DEFAULT_PERIOD
from positioning.quality.gx import import_in_background
from positioning.warehouse.bulk_load import load

__all__ = ["BulkInterrupted", "FillInputError", "run_fill", "window_for"]


def run_fill(
    days: float,
    symbols: Iterable[str] = (),
    *,
    data: Path,
    base_urls: dict[str, str],
    period: str = DEFAULT_PERIOD,
    venues: Iterable[str] | None = None,
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

    ``symbols`` empty = the bundled top 50; explicit symbols that no venue lists are a :class:`FillInputError`
    (a typo), raised before anything reaches the warehouse. ``venues`` None = every venue with history. ``now``
    fixes the clock (tests against a frozen simulator); by default it is ours at the first start.
    """
    explicit = bool(list(symbols))
    symbols, venues, period = validated(days, symbols, venues, period)
    state_file = state_path(data, state_key(symbols, venues, days, period))
    state = json.loads(state_file.read_text(encoding="utf-8")) if state_file.exists() else None
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
    write_json_atomic(state_file, state)
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
            # The load's gate needs great-expectations (seconds of CPU to import): import it while the slowest
            # venue's rate limit is all that is left to wait on, not earlier, where it would delay requests.
            on_last_venue=import_in_background,
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
    listed_somewhere = set().union(*report.mapped.values()) if report.mapped else set()
    unknown = [s for s in plan.symbols if s not in listed_somewhere]
    if explicit and unknown and len(report.mapped) == len(plan.venues):
        raise FillInputError(
            f"--symbols {' '.join(unknown)}: not listed on {' or '.join(plan.venues)}; use the base asset "
            "(BTC, PEPE), not an instrument id"
        )
    summary = load(plan, data, log=log, stop_after_intervals=stop_after_intervals)
    finished = time.perf_counter()
    complete = not report.failed_chunks and not summary["blocked"]
    if complete:
        state["done"] = True
        write_json_atomic(state_file, state)
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
