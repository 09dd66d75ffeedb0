"""The bulk fill's load: every hourly interval of a window through the same audit → publish as a DAG run.

The chunk manifests (``positioning.ingest.bulk``) are parsed by the venue parsers once, the facts of every
interval end are built at once by :func:`positioning.warehouse.normalize.bucket_facts` (the same "latest bucket
ended at or before the end" rule a past-interval DAG run applies, vectorised), and each interval is staged as a
:class:`~positioning.warehouse.load.StagedInterval` and handed to
:func:`positioning.warehouse.load.audit_and_publish`. What the venues cannot give (snapshot-only metrics,
intervals beyond a venue's retention) is recorded in ``ops.interval_unavailable`` exactly as a past-interval run
records it. An interval with no rows at all publishes nothing (its skipped symbols and unavailable metrics are still
recorded) and stays a gap in ``marts.coverage``.
Then the marts are refreshed over the window and exported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from positioning import registry
from positioning.ingest.bulk import BulkInterrupted, BulkPlan, first_fetchable_end
from positioning.ingest.manifests import Manifest, ManifestStore
from positioning.periods import LONGEST_PERIOD_MS
from positioning.venues.base import unavailable_kind
from positioning.warehouse.connection import insert_frame
from positioning.warehouse.load import (
    PARSE_ERROR_SCHEMA,
    SKIPPED_SCHEMA,
    UNAVAILABLE_SCHEMA,
    StagedInterval,
    audit_and_publish,
    ops_frames,
    replace_ops,
    upsert_instruments,
)
from positioning.warehouse.normalize import bucket_facts, empty_facts, instrument_rows, symbol_map
from positioning.warehouse.parse import ParsedRows, parse_manifests

HOUR = timedelta(hours=1)
HOUR_MS = 3_600_000


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def unavailable_by_end(plan: BulkPlan) -> dict[datetime, dict[str, dict[str, str]]]:
    """Per interval end and venue: metric -> reason, as a past-interval DAG run would record it."""
    result: dict[datetime, dict[str, dict[str, str]]] = {end: {} for end in plan.ends}
    for spec in registry.specs():
        venue = spec.name
        base = spec.past_unavailable()
        series = spec.history(plan.period)
        first = [(s, first_fetchable_end(plan, s)) for s in series] if venue in plan.venues else []
        for end in plan.ends:
            unavailable = dict(base)
            for s, first_end in first:
                if end < first_end:
                    reason = f"outside retention: {venue} {s.endpoint.name} keeps {s.retention.days} days of history"
                    unavailable.update({metric: reason for metric in s.metrics})
            if venue not in plan.venues:
                for s in series:
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
    from positioning.quality import GxSession, QualityConfig, QualityGateError
    from positioning.warehouse.marts import export_marts, refresh

    config = config or dataclasses.replace(QualityConfig.from_env(), data_docs=0.0)  # Data Docs for 720 intervals: no
    chunks = [c for c in ManifestStore(data).chunks(plan.run_id) if c.status == "ok"]
    parsed = parse_manifests(chunks)
    mapped = symbol_map([c for c in chunks if c.chunk != "listing"])
    ends_ms = [int(end.timestamp() * 1000) for end in plan.ends]
    built = time.perf_counter()
    facts = bucket_facts(mapped, parsed, ends_ms, HOUR_MS) if mapped.height else None
    raw_rows = _raw_rows_with_ts(parsed.files)
    unavailable = unavailable_by_end(plan)
    listing = {c.venue: c for c in chunks if c.chunk == "listing"}
    log(
        f"bulk load: {len(chunks)} chunks parsed, facts of {len(ends_ms)} intervals built in "
        f"{time.perf_counter() - built:.2f} s"
    )
    summary: dict[str, Any] = {"published": 0, "skipped": 0, "blocked": [], "empty": 0, "facts": 0}
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
            staged, manifests = stage_interval(plan, end, end_ms, facts, raw_rows, unavailable[end], listing)
            if staged.facts.is_empty():
                # Nothing to audit or publish: the hour stays a gap in marts.coverage, with its reasons.
                con.execute("BEGIN TRANSACTION")
                replace_ops(con, staged, plan.run_id)
                con.execute("COMMIT")
                summary["empty"] += 1
                continue
            try:
                counts, _report = audit_and_publish(
                    lambda: contextlib.nullcontext(con), staged, manifests, end, plan.run_id,
                    config=config, docs_dir=None, session=gate,
                )  # fmt: skip
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
        _write_run_log(con, plan, chunks, parsed)
        summary["load_seconds"] = round(time.perf_counter() - started, 1)
        marts_started = time.perf_counter()
        con.execute("BEGIN TRANSACTION")
        summary["marts"] = refresh(con, plan.ends, log=log)
        con.execute("COMMIT")
        export_marts(con, data / "exports")
        summary["marts_seconds"] = round(time.perf_counter() - marts_started, 1)
    return summary


def _write_run_log(con: Any, plan: BulkPlan, chunks: list[Manifest], parsed: ParsedRows) -> None:
    """The run-level log (chunks as extract runs, their failures, parse errors) and the instruments, once."""
    ts = _naive(plan.last_end)
    ops = ops_frames(chunks, ts)
    parse_errors = pl.DataFrame(
        [{"ts": ts, "run_id": plan.run_id, **error} for error in parsed.errors], schema=PARSE_ERROR_SCHEMA
    )
    con.execute("BEGIN TRANSACTION")
    for table in ("extract_runs", "extract_failures", "parse_errors"):
        con.execute(f"DELETE FROM ops.{table} WHERE run_id = ?", [plan.run_id])
    insert_frame(con, "ops.extract_runs", ops["extract_runs"])
    insert_frame(con, "ops.extract_failures", ops["extract_failures"])
    insert_frame(con, "ops.parse_errors", parse_errors)
    instruments = instrument_rows(parsed).with_columns(seen=pl.lit(_naive(datetime.now(UTC)), pl.Datetime("us")))
    upsert_instruments(con, instruments)
    con.execute("COMMIT")


def stage_interval(
    plan: BulkPlan,
    end: datetime,
    end_ms: int,
    facts: pl.DataFrame | None,
    raw_rows: pl.DataFrame,
    unavailable: dict[str, dict[str, str]],
    listing: dict[str, Manifest],
) -> tuple[StagedInterval, list[Manifest]]:
    """What ``positioning.warehouse.load.stage`` gives for one interval, from the bulk frames; and one manifest
    per venue (what the gate's coverage check reads)."""
    ts = _naive(end)
    now = _naive(datetime.now(UTC))
    interval = facts.filter(pl.col("end_ms") == end_ms).drop("end_ms") if facts is not None else empty_facts()
    pairs = [f"{venue}|{metric}" for venue, metrics in unavailable.items() for metric in metrics]
    interval = interval.filter(~pl.concat_str("venue", pl.lit("|"), "metric").is_in(pairs)).with_columns(
        ts=pl.lit(ts, pl.Datetime("us")), run_id=pl.lit(plan.run_id), loaded_at=pl.lit(now, pl.Datetime("us"))
    )
    # The raw rows this interval could have used: buckets from one interval plus the longest period before it.
    window = raw_rows.filter(pl.col("bucket_ms").is_between(end_ms - HOUR_MS - LONGEST_PERIOD_MS, end_ms))
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
        instruments=instrument_rows(ParsedRows()).with_columns(seen=pl.lit(None, pl.Datetime("us"))),  # once per fill
        parse_errors=pl.DataFrame(schema=empty),
        raw_rows=window.drop("bucket_ms"),
        extract_runs=pl.DataFrame(schema=empty),
        extract_failures=pl.DataFrame(schema=empty),
        skipped_symbols=pl.DataFrame(skipped, schema=SKIPPED_SCHEMA),
        interval_unavailable=pl.DataFrame(unavailable_rows, schema=UNAVAILABLE_SCHEMA),
    )
    return staged, manifests
