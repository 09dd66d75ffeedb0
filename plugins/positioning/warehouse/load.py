"""Load one interval: write → audit → publish.

write: this run's raw files are parsed and normalised into staged frames in memory (polars), no DuckDB;
audit: :func:`positioning.quality.audit` validates them with great-expectations (row checks quarantine rows,
batch checks block the interval);
publish: the passing rows, the quarantine and the validation records go into DuckDB in one transaction.
A blocked interval records only its validation (own transaction), publishes nothing and raises
:class:`positioning.quality.QualityGateError`.

Re-running an interval replaces that interval's core rows and quarantine (delete + insert by ``ts``) and never
touches other intervals, with one exception: a (venue, metric) that this run's manifests list as ``unavailable``
(a past interval whose value the venue only had as a snapshot, or an interval beyond its retention) keeps the rows
an earlier run stored for it, so backfilling an hour that a live run already collected never loses its current
values. The unavailable pairs themselves go to ``ops.interval_unavailable`` (replaced per ts). The ops and validation tables are a log keyed by run: re-loading the same run replaces
its rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from positioning.config import data_dir
from positioning.ingest.manifests import Manifest, ManifestStore, latest_tries
from positioning.quality import (
    GateReport,
    GxSession,
    QualityConfig,
    QualityGateError,
    Window,
    audit,
    previous_oi,
    raw_row_frame,
    record_blocked,
    write_records,
)
from positioning.venues.base import unavailable_kind
from positioning.warehouse.connection import insert_frame
from positioning.warehouse.normalize import build_facts, instrument_rows
from positioning.warehouse.parse import parse_manifests

UNAVAILABLE_SCHEMA = {
    "ts": pl.Datetime("us"),
    "venue": pl.String,
    "metric": pl.String,
    "kind": pl.String,
    "reason": pl.String,
    "run_id": pl.String,
}
SKIPPED_SCHEMA = {"ts": pl.Datetime("us"), "venue": pl.String, "symbol": pl.String, "reason": pl.String}
PARSE_ERROR_SCHEMA = {
    "ts": pl.Datetime("us"),
    "run_id": pl.String,
    "venue": pl.String,
    "endpoint": pl.String,
    "raw_path": pl.String,
    "error": pl.String,
}


@dataclass
class StagedInterval:
    """One interval parsed and normalised in memory (no DuckDB yet): what the gate audits and publish writes."""

    ts: datetime  # the interval end, naive UTC
    facts: pl.DataFrame  # rows of core.fact_positioning
    instruments: pl.DataFrame  # rows for core.dim_instrument (with ``seen``)
    parse_errors: pl.DataFrame
    raw_rows: pl.DataFrame  # every parsed row before de-duplication (the gate's raw-row checks)
    extract_runs: pl.DataFrame
    extract_failures: pl.DataFrame
    skipped_symbols: pl.DataFrame
    interval_unavailable: pl.DataFrame

    def ops(self) -> dict[str, pl.DataFrame]:
        return {
            "extract_runs": self.extract_runs,
            "extract_failures": self.extract_failures,
            "parse_errors": self.parse_errors,
        }


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def ops_frames(manifests: list[Manifest], ts: datetime) -> dict[str, pl.DataFrame]:
    """The extract log of a run (every try) and the skipped/unavailable records of its latest tries."""
    runs, failures, skipped = [], [], []
    for manifest in manifests:
        failed = manifest.failed_requests
        runs.append(
            {
                "ts": ts,
                "run_id": manifest.run_id,
                "venue": manifest.venue,
                "attempt": manifest.attempt,
                "status": manifest.status,
                "error": manifest.fatal,
                "requests_sent": manifest.requests_sent,
                "failed_requests": len(failed),
                "symbols_mapped": len(manifest.instruments),
                "symbols_skipped": len(manifest.skipped),
                "started_at": _naive(manifest.started_at) if manifest.started_at else None,
                "finished_at": _naive(manifest.finished_at) if manifest.finished_at else None,
                "manifest_path": str(manifest.path) if manifest.path else None,
            }
        )
        for request in failed:
            failures.append(
                {
                    "ts": ts,
                    "run_id": manifest.run_id,
                    "venue": manifest.venue,
                    "attempt": manifest.attempt,
                    "endpoint": request.endpoint,
                    "symbol": request.symbol,
                    "status": request.status,
                    "attempts": request.attempts,
                    "retryable": request.retryable,
                    "error": request.error,
                    "raw_paths": list(request.raw_paths),
                }
            )
    unavailable = []
    for manifest in latest_tries(manifests):
        for symbol, reason in manifest.skipped.items():
            skipped.append({"ts": ts, "venue": manifest.venue, "symbol": symbol, "reason": reason})
        for metric, reason in manifest.unavailable.items():
            unavailable.append(
                {
                    "ts": ts,
                    "venue": manifest.venue,
                    "metric": metric,
                    "kind": unavailable_kind(reason),
                    "reason": reason,
                    "run_id": manifest.run_id,
                }
            )
    return {
        "interval_unavailable": pl.DataFrame(unavailable, schema=UNAVAILABLE_SCHEMA),
        "extract_runs": pl.DataFrame(runs, infer_schema_length=None),
        "extract_failures": pl.DataFrame(
            failures,
            schema={
                "ts": pl.Datetime("us"),
                "run_id": pl.String,
                "venue": pl.String,
                "attempt": pl.Int32,
                "endpoint": pl.String,
                "symbol": pl.String,
                "status": pl.Int32,
                "attempts": pl.Int32,
                "retryable": pl.Boolean,
                "error": pl.String,
                "raw_paths": pl.List(pl.String),
            },
        ),
        "skipped_symbols": pl.DataFrame(skipped, schema=SKIPPED_SCHEMA),
    }


def stage(manifests: list[Manifest], interval_end: datetime, run_id: str) -> StagedInterval:
    """Parse and normalise (no DuckDB): the staged frames of one interval."""
    current = latest_tries(manifests)
    parsed = parse_manifests(current)
    ts = _naive(interval_end)
    loaded_at = _naive(datetime.now(UTC))
    facts = build_facts(current, parsed, interval_end).with_columns(
        ts=pl.lit(ts, pl.Datetime("us")), run_id=pl.lit(run_id), loaded_at=pl.lit(loaded_at, pl.Datetime("us"))
    )
    parse_errors = pl.DataFrame(
        [{"ts": ts, "run_id": run_id, **error} for error in parsed.errors], schema=PARSE_ERROR_SCHEMA
    )
    return StagedInterval(
        ts=ts,
        facts=facts,
        instruments=instrument_rows(parsed).with_columns(seen=pl.lit(loaded_at, pl.Datetime("us"))),
        parse_errors=parse_errors,
        raw_rows=raw_row_frame(parsed.files),
        **ops_frames(manifests, ts),
    )


def upsert_instruments(con: duckdb.DuckDBPyConnection, instruments: pl.DataFrame) -> None:
    """Refresh ``core.dim_instrument`` from a run's listings (inside the caller's transaction); first_seen stays."""
    if instruments.is_empty():
        return  # the bulk fill's intervals: its instruments are written once per fill
    con.register("_instruments", instruments)
    try:
        con.execute(
            """
            INSERT INTO core.dim_instrument BY NAME
            SELECT venue, instrument, symbol, contract_value, quote, status, tradable, multiplier,
                   seen AS first_seen, seen AS last_seen
            FROM _instruments
            ON CONFLICT (venue, instrument) DO UPDATE SET
                symbol = excluded.symbol, contract_value = excluded.contract_value, quote = excluded.quote,
                status = excluded.status, tradable = excluded.tradable, multiplier = excluded.multiplier,
                last_seen = greatest(core.dim_instrument.last_seen, excluded.last_seen)
            """
        )
    finally:
        con.unregister("_instruments")


def replace_ops(con: duckdb.DuckDBPyConnection, staged: StagedInterval, run_id: str) -> None:
    """This run's extract log (inside the caller's transaction): written whether the interval publishes or not."""
    for table, frame in staged.ops().items():
        con.execute(f"DELETE FROM ops.{table} WHERE run_id = ?", [run_id])
        insert_frame(con, f"ops.{table}", frame)
    con.execute("DELETE FROM ops.skipped_symbols WHERE ts = ?", [staged.ts])
    insert_frame(con, "ops.skipped_symbols", staged.skipped_symbols)
    con.execute("DELETE FROM ops.interval_unavailable WHERE ts = ?", [staged.ts])
    insert_frame(con, "ops.interval_unavailable", staged.interval_unavailable)


def kept_pairs(staged: StagedInterval) -> list[str]:
    """``venue|metric`` pairs this load cannot observe: their existing rows at ts are kept, not replaced."""
    frame = staged.interval_unavailable
    return sorted({f"{venue}|{metric}" for venue, metric in frame.select("venue", "metric").iter_rows()})


def record_blocked_interval(
    con: duckdb.DuckDBPyConnection, staged: StagedInterval, report: GateReport, run_id: str
) -> None:
    """A blocked interval: its extract log (which venue and endpoint failed stays visible) and its validation, each
    in a transaction of its own; the core tables stay as they were."""
    con.execute("BEGIN TRANSACTION")
    replace_ops(con, staged, run_id)
    con.execute("COMMIT")
    record_blocked(con, report)


def publish(
    con: duckdb.DuckDBPyConnection, staged: StagedInterval, run_id: str, report: GateReport | None = None
) -> dict[str, int]:
    """Replace the interval's core rows and this run's ops rows, in one transaction; with a gate ``report``, only
    the rows that passed it, together with the interval's quarantine and this run's validation records."""
    ts = staged.ts
    facts = staged.facts if report is None else report.publish
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "DELETE FROM core.fact_positioning WHERE ts = ? AND NOT list_contains(?::VARCHAR[], venue || '|' || metric)",
            [ts, kept_pairs(staged)],
        )
        insert_frame(con, "core.fact_positioning", facts)
        upsert_instruments(con, staged.instruments)
        replace_ops(con, staged, run_id)
        if report is not None:
            write_records(con, report, quarantine=True)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return {
        "facts": facts.height,
        "quarantined": 0 if report is None else report.rows_quarantined,
        "instruments": staged.instruments.height,
        "parse_errors": staged.parse_errors.height,
    }


def interval_start_of(manifests: list[Manifest], interval_end: datetime) -> datetime:
    """The run's data-interval start, as the extract tasks recorded it (an hour before the end if absent)."""
    starts = [m.interval_start for m in manifests if m.interval_start]
    return min(starts) if starts else interval_end - timedelta(hours=1)


def audit_and_publish(
    connection: Callable[[], contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]],
    staged: StagedInterval,
    manifests: list[Manifest],
    interval_end: datetime,
    run_id: str,
    *,
    config: QualityConfig,
    docs_dir: Path | None,
    session: GxSession | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, int], GateReport]:
    """audit → publish of one staged interval: the one path of the DAG's load and of the bulk fill.

    The warehouse (``connection()``) is held only to read the previous interval and to publish, not while
    great-expectations validates, during which analysts' sessions and other writers would wait. A blocked
    interval records its validation and the extract log, publishes nothing and raises QualityGateError.
    """
    with connection() as con:
        previous = previous_oi(con, staged.ts)
    window = Window(
        interval_start_of(manifests, interval_end),
        interval_end,
        timedelta(minutes=config.current_value_tolerance_minutes),
    )
    report = audit(
        staged, latest_tries(manifests), window, run_id, previous, config=config, docs_dir=docs_dir, session=session
    )
    if log:
        log(report.text())
    with connection() as con:
        if report.blocked:
            record_blocked_interval(con, staged, report, run_id)
            raise QualityGateError(report.text(), report.summary())
        return publish(con, staged, run_id, report), report


def load_interval(
    interval_end: datetime,
    run_id: str,
    *,
    data: Path | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    log: Callable[[str], None] | None = None,
    config: QualityConfig | None = None,
) -> dict[str, Any]:
    """Parse this run's raw files for the interval, audit them and publish what passed.

    Raises if no venue delivered anything, and :class:`QualityGateError` (after recording the validation) when a
    batch-level expectation failed. The returned ``quality`` entry is the gate's alert summary.
    """
    from positioning import warehouse

    data = data or data_dir()
    config = config or QualityConfig.from_env()
    manifests = ManifestStore(data).run(interval_end, run_id)
    if not manifests:
        raise RuntimeError(
            f"no extract manifests for run {run_id} at {interval_end.isoformat()} under {data}/manifests: "
            "did every extract task fail before writing one?"
        )
    staged = stage(manifests, interval_end, run_id)

    def connection() -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        return contextlib.nullcontext(con) if con is not None else warehouse.writer(data / "warehouse.duckdb", log=log)

    counts, report = audit_and_publish(
        connection, staged, manifests, interval_end, run_id, config=config, docs_dir=data / "exports" / "quality",
        log=log,
    )  # fmt: skip
    venues = {m.venue: m.status for m in latest_tries(manifests)}
    return {"ts": staged.ts.isoformat(), "venues": venues, **counts, "quality": report.summary()}
