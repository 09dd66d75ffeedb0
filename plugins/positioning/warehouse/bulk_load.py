"""The bulk fill's load: every hourly interval of a window through the same audit → publish as a DAG run.

The chunk manifests (``positioning.ingest.bulk``) are parsed by the venue parsers once, the facts of every
interval end are built at once by :func:`positioning.warehouse.normalize.bucket_facts` (the same "latest bucket
ended at or before the end" rule a past-interval DAG run applies, vectorised), each interval is staged
(:mod:`positioning.warehouse.bulk_stage`), a week of them is audited at once
(:func:`positioning.quality.window.audit_window`) and published in one transaction. What the venues cannot give
(snapshot-only metrics, intervals beyond a venue's retention) is recorded in ``ops.interval_unavailable`` exactly
as a past-interval run records it. An interval with no rows at all publishes nothing (its skipped symbols and unavailable metrics are still
recorded) and stays a gap in ``marts.coverage``.
Then the marts are refreshed over the window and exported.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from positioning.ingest import archive_fill
from positioning.ingest.bulk import BulkInterrupted, BulkPlan, rest_first_end
from positioning.ingest.manifests import Manifest, ManifestStore
from positioning.quality.frames import Window, naive_utc, previous_oi
from positioning.quality.window import audit_window
from positioning.rows import Instrument, LongShortRatio, OpenInterestHistory
from positioning.warehouse.bulk_stage import (
    HOUR,
    HOUR_MS,
    FillRows,
    coarse_facts,
    finest,
    stage_interval,
    unavailable_by_end,
)
from positioning.warehouse.connection import insert_frame
from positioning.warehouse.load import (
    PARSE_ERROR_SCHEMA,
    StagedInterval,
    interval_start_of,
    kept_pairs,
    latest_tries,
    ops_frames,
    record_blocked_interval,
    replace_ops,
    upsert_instruments,
)
from positioning.warehouse.normalize import bucket_facts, instrument_rows, symbol_map
from positioning.warehouse.parse import ParsedRows, parse_manifests

# Intervals audited together (one great-expectations run per suite): a week of hours, a few hundred thousand rows.
AUDIT_WINDOW = 168


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
    from positioning.quality import GxSession, QualityConfig
    from positioning.warehouse.marts import export_marts, refresh

    config = config or dataclasses.replace(QualityConfig.from_env(), data_docs=0.0)  # Data Docs for 720 intervals: no
    chunks = [c for c in ManifestStore(data).chunks(plan.run_id) if c.status == "ok"]
    archived = [c for c in chunks if archive_fill.is_archive_chunk(c)]
    parsed = parse_manifests([c for c in chunks if not archive_fill.is_archive_chunk(c)])
    mapped = symbol_map([c for c in chunks if c.chunk != "listing" and not archive_fill.is_archive_chunk(c)])
    ends_ms = [int(end.timestamp() * 1000) for end in plan.ends]
    built = time.perf_counter()
    facts = None
    if mapped.height:
        facts = finest(pl.concat([bucket_facts(mapped, parsed, ends_ms, HOUR_MS),
                                  *coarse_facts(plan, mapped, parsed, ends_ms)], how="vertical_relaxed"))  # fmt: skip
    unavailable = unavailable_by_end(plan)
    disagreements = None
    if archived:
        facts, disagreements = with_archive(plan, archived, parsed, facts, ends_ms, unavailable, config, log)
    listing = {c.venue: c for c in chunks if c.chunk == "listing"}
    rows = FillRows(facts, parsed.files)
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
        todo = []
        for end, end_ms in zip(plan.ends, ends_ms, strict=True):
            if naive_utc(end) in done:
                summary["skipped"] += 1
            else:
                todo.append((end, end_ms))
        for first in range(0, len(todo), AUDIT_WINDOW):
            batch = []
            for end, end_ms in todo[first : first + AUDIT_WINDOW]:
                staged, manifests = stage_interval(plan, end, end_ms, rows, unavailable[end], listing)
                if staged.facts.is_empty():
                    # Nothing to audit or publish: the hour stays a gap in marts.coverage, with its reasons.
                    con.execute("BEGIN TRANSACTION")
                    replace_ops(con, staged, plan.run_id)
                    con.execute("COMMIT")
                    summary["empty"] += 1
                    continue
                batch.append((end, staged, latest_tries(manifests)))
            if not batch:
                continue
            tolerance = timedelta(minutes=config.current_value_tolerance_minutes)
            reports = audit_window(
                [staged for _, staged, _ in batch], [manifests for _, _, manifests in batch],
                [Window(interval_start_of(m, end), end, tolerance) for end, _, m in batch], plan.run_id,
                previous_oi(con, batch[0][0]), config=config, session=gate,
            )  # fmt: skip
            passed = []
            for (_end, staged, _manifests), report in zip(batch, reports, strict=True):
                if report.blocked:
                    record_blocked_interval(con, staged, report, plan.run_id)
                    summary["blocked"].append(f"{staged.ts.isoformat()}: {report.blocking[:1]}")
                else:
                    passed.append((staged, report))
            if stop_after_intervals is not None:
                passed = passed[: max(0, stop_after_intervals - summary["published"])]
            summary["facts"] += publish_many(con, passed, plan.run_id)
            summary["published"] += len(passed)
            done_now = summary["published"] + summary["skipped"] + summary["empty"] + len(summary["blocked"])
            elapsed = time.perf_counter() - started
            eta = elapsed / max(1, done_now - summary["skipped"]) * (len(plan.ends) - done_now)
            log(f"bulk load: {done_now}/{len(plan.ends)} intervals, {elapsed:.0f} s, about {eta:.0f} s to go")
            if stop_after_intervals is not None and summary["published"] >= stop_after_intervals:
                raise BulkInterrupted(f"stopped after {summary['published']} intervals (test hook)")
        _write_run_log(con, plan, chunks, parsed)
        if disagreements is not None:
            _write_disagreements(con, plan, disagreements)
            summary["source_disagreements"] = disagreements.height
        summary["load_seconds"] = round(time.perf_counter() - started, 1)
        marts_started = time.perf_counter()
        con.execute("BEGIN TRANSACTION")
        summary["marts"] = refresh(con, plan.ends, log=log)
        con.execute("COMMIT")
        export_marts(con, data / "exports")
        summary["marts_seconds"] = round(time.perf_counter() - marts_started, 1)
    return summary


def with_archive(
    plan: BulkPlan,
    chunks: list[Manifest],
    parsed: ParsedRows,
    facts: pl.DataFrame | None,
    ends_ms: list[int],
    unavailable: dict[datetime, dict[str, dict[str, str]]],
    config: Any,
    log: Callable[[str], None],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The fill's facts with the archive's where the REST history has none (``source = 'archive'``, period
    ``5m``), ``unavailable`` updated to match (an hour the archive filled is no longer "outside retention"; one
    whose day the archive lacks says so), and the overlap's disagreements (``archive_fill.disagreements``)."""
    rest_first = rest_first_end(plan)
    overlap_from = (rest_first - HOUR - timedelta(minutes=5)).date() if rest_first else None
    rows = archive_fill.archive_rows(chunks, overlap_from)
    parsed.errors.extend(rows.errors)
    archive_parsed = ParsedRows()
    archive_parsed.rows[Instrument] = parsed.rows[Instrument]  # the listing's multipliers
    archive_parsed.frames[OpenInterestHistory] = [rows.oi]
    archive_parsed.frames[LongShortRatio] = [rows.ratios]
    from_archive = bucket_facts(symbol_map(chunks), archive_parsed, ends_ms, HOUR_MS).with_columns(
        source=pl.lit("archive")
    )
    keys = ["venue", "symbol", "metric", "end_ms"]
    published = facts
    if facts is not None:
        # REST facts of hours before its reach are dropped as "outside retention" (stage_interval): not a reason
        # to leave the archive's out.
        reach_ms = int(rest_first.timestamp() * 1000) if rest_first else 0
        published = facts.filter((pl.col("venue") != archive_fill.VENUE) | (pl.col("end_ms") >= reach_ms))
        from_archive = from_archive.join(published.select(keys), on=keys, how="anti")
    merged = pl.concat([f for f in (published, from_archive) if f is not None], how="vertical_relaxed")
    present = set(from_archive.select("end_ms", "metric").unique().iter_rows())
    for end, end_ms in zip(plan.ends, ends_ms, strict=True):
        gaps = unavailable[end].setdefault(archive_fill.VENUE, {})
        for metric in archive_fill.METRICS:
            if (end_ms, metric) in present:
                gaps.pop(metric, None)
            elif metric in gaps and (end - HOUR).date() in rows.missing_days:
                gaps[metric] += f"; the Binance archive has no loadable file for {(end - HOUR).date()}"
    rest = parsed.frame(OpenInterestHistory), parsed.frame(LongShortRatio)
    disagreements = archive_fill.disagreements(
        rows, *(f.filter(pl.col("venue") == archive_fill.VENUE) for f in rest), config.archive_vs_rest_tolerance
    )
    compared = archive_fill.compared_buckets(rows)
    log(
        f"bulk load: {from_archive.height} facts from the archive; overlap: {compared} archive buckets compared "
        f"with the REST history, {disagreements.height} differ by more than {config.archive_vs_rest_tolerance:.1%}"
    )
    for row in disagreements.head(3).iter_rows(named=True):
        log(
            f"  quality warning: sources disagree: binance {row['key']} {row['metric']} at "
            f"{datetime.fromtimestamp(row['ts_ms'] / 1000, UTC):%Y-%m-%d %H:%M}: archive {row['archive_value']:g}, "
            f"REST ({row['period']}) {row['rest_value']:g}"
        )
    return merged, disagreements


def publish_many(con: Any, passed: list[tuple[StagedInterval, Any]], run_id: str) -> int:
    """:func:`positioning.warehouse.load.publish` of many audited intervals in one transaction, a statement per
    table rather than per interval and table: each interval's facts replace its own (the pairs its staging could not
    observe are kept, as there), its ops and quality records replace this run's. Returns the facts written."""
    if not passed:
        return 0
    stamps = [staged.ts for staged, _ in passed]
    kept = pl.DataFrame(
        [(staged.ts, pair) for staged, _ in passed for pair in kept_pairs(staged)],
        schema={"ts": pl.Datetime("us"), "pair": pl.String},
        orient="row",
    )
    facts = pl.concat([report.publish for _, report in passed], how="vertical_relaxed")
    now = naive_utc(datetime.now(UTC))
    progress = pl.DataFrame(
        {"run_id": run_id, "ts": stamps, "facts": [report.publish.height for _, report in passed], "published_at": now},
        schema={"run_id": pl.String, "ts": pl.Datetime("us"), "facts": pl.Int64, "published_at": pl.Datetime("us")},
    )

    def stacked(frames: list[pl.DataFrame]) -> pl.DataFrame:
        frames = [frame for frame in frames if frame.height]
        return pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()

    con.register("_batch_ts", pl.DataFrame({"ts": stamps}, schema={"ts": pl.Datetime("us")}))
    con.register("_kept", kept)
    con.register("_progress", progress)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "DELETE FROM core.fact_positioning AS f WHERE f.ts IN (SELECT ts FROM _batch_ts) AND NOT EXISTS "
            "(SELECT 1 FROM _kept AS k WHERE k.ts = f.ts AND k.pair = f.venue || '|' || f.metric)"
        )
        insert_frame(con, "core.fact_positioning", facts)
        for table, frames in (
            ("ops.skipped_symbols", [staged.skipped_symbols for staged, _ in passed]),
            ("ops.interval_unavailable", [staged.interval_unavailable for staged, _ in passed]),
            ("quality.quarantine", [report.quarantine.drop("row_id") for _, report in passed]),
        ):
            con.execute(f"DELETE FROM {table} WHERE ts IN (SELECT ts FROM _batch_ts)")
            insert_frame(con, table, stacked(frames))
        for table, frames in (
            ("quality.validation_runs", [report.validation_runs for _, report in passed]),
            ("quality.expectation_results", [report.expectation_results for _, report in passed]),
        ):
            con.execute(f"DELETE FROM {table} WHERE run_id = ? AND ts IN (SELECT ts FROM _batch_ts)", [run_id])
            insert_frame(con, table, stacked(frames))
        con.execute("INSERT OR REPLACE INTO ops.bulk_fill_progress BY NAME SELECT * FROM _progress")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_batch_ts")
        con.unregister("_kept")
        con.unregister("_progress")
    return facts.height


def _write_disagreements(con: Any, plan: BulkPlan, disagreements: pl.DataFrame) -> None:
    frame = disagreements.select(
        run_id=pl.lit(plan.run_id),
        venue=pl.lit(archive_fill.VENUE),
        key="key",
        metric="metric",
        period="period",
        bucket_ts=pl.from_epoch("ts_ms", time_unit="ms").cast(pl.Datetime("us")),
        archive_value="archive_value",
        rest_value="rest_value",
        relative_difference="relative_difference",
        checked_at=pl.lit(naive_utc(datetime.now(UTC)), pl.Datetime("us")),
    )
    con.execute("BEGIN TRANSACTION")
    con.execute("DELETE FROM ops.source_disagreements WHERE run_id = ?", [plan.run_id])
    insert_frame(con, "ops.source_disagreements", frame)
    con.execute("COMMIT")


def _write_run_log(con: Any, plan: BulkPlan, chunks: list[Manifest], parsed: ParsedRows) -> None:
    """The run-level log (chunks as extract runs, their failures, parse errors) and the instruments, once."""
    ts = naive_utc(plan.last_end)
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
    instruments = instrument_rows(parsed).with_columns(seen=pl.lit(naive_utc(datetime.now(UTC)), pl.Datetime("us")))
    upsert_instruments(con, instruments)
    con.execute("COMMIT")
