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
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from positioning.config import data_dir
from positioning.ingest.extract import manifest_path, unavailable_kind
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
from positioning.warehouse.normalize import build_facts, instrument_rows, parse_manifests


def run_manifests(data: Path, interval_end: datetime, run_id: str) -> list[dict[str, Any]]:
    """Every manifest this run wrote for this interval (all tries of every venue), oldest try first."""
    directory = manifest_path(data, "x", interval_end, run_id, 1).parent
    manifests = []
    for path in sorted(directory.glob("venue=*__try=*.json")):
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
        manifest["manifest_path"] = str(path)
        manifests.append(manifest)
    return manifests


def latest_tries(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for manifest in manifests:
        current = latest.get(manifest["venue"])
        if current is None or manifest["attempt"] > current["attempt"]:
            latest[manifest["venue"]] = manifest
    return list(latest.values())


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _ops_frames(manifests: list[dict[str, Any]], ts: datetime) -> dict[str, pl.DataFrame]:
    runs, failures, skipped = [], [], []
    for manifest in manifests:
        failed = [request for request in manifest["requests"] if not request["ok"]]
        runs.append(
            {
                "ts": ts,
                "run_id": manifest["run_id"],
                "venue": manifest["venue"],
                "attempt": manifest["attempt"],
                "status": manifest["status"],
                "error": manifest["fatal"],
                "requests_sent": manifest["requests_sent"],
                "failed_requests": len(failed),
                "symbols_mapped": len(manifest["instruments"]),
                "symbols_skipped": len(manifest["skipped"]),
                "started_at": _naive(datetime.fromisoformat(manifest["started_at"])),
                "finished_at": _naive(datetime.fromisoformat(manifest["finished_at"])),
                "manifest_path": manifest.get("manifest_path"),
            }
        )
        for request in failed:
            failures.append(
                {
                    "ts": ts,
                    "run_id": manifest["run_id"],
                    "venue": manifest["venue"],
                    "attempt": manifest["attempt"],
                    "endpoint": request["endpoint"],
                    "symbol": request["symbol"],
                    "status": request["status"],
                    "attempts": request["attempts"],
                    "retryable": request.get("retryable"),
                    "error": request["error"],
                    "raw_paths": request["raw_paths"],
                }
            )
    unavailable = []
    for manifest in latest_tries(manifests):
        for symbol, reason in manifest["skipped"].items():
            skipped.append({"ts": ts, "venue": manifest["venue"], "symbol": symbol, "reason": reason})
        for metric, reason in manifest.get("unavailable", {}).items():
            unavailable.append(
                {
                    "ts": ts,
                    "venue": manifest["venue"],
                    "metric": metric,
                    "kind": unavailable_kind(reason),
                    "reason": reason,
                    "run_id": manifest["run_id"],
                }
            )
    return {
        "interval_unavailable": pl.DataFrame(
            unavailable,
            schema={
                "ts": pl.Datetime("us"),
                "venue": pl.String,
                "metric": pl.String,
                "kind": pl.String,
                "reason": pl.String,
                "run_id": pl.String,
            },
        ),
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
        "skipped_symbols": pl.DataFrame(
            skipped, schema={"ts": pl.Datetime("us"), "venue": pl.String, "symbol": pl.String, "reason": pl.String}
        ),
    }


def stage(manifests: list[dict[str, Any]], interval_end: datetime, run_id: str) -> dict[str, Any]:
    """Parse and normalise (no DuckDB): the staged frames of one interval."""
    current = latest_tries(manifests)
    parsed = parse_manifests(current)
    ts = _naive(interval_end)
    loaded_at = _naive(datetime.now(UTC))
    facts = build_facts(current, parsed, interval_end).with_columns(
        ts=pl.lit(ts, pl.Datetime("us")), run_id=pl.lit(run_id), loaded_at=pl.lit(loaded_at, pl.Datetime("us"))
    )
    parse_errors = pl.DataFrame(
        [{"ts": ts, "run_id": run_id, **error} for error in parsed.errors],
        schema={
            "ts": pl.Datetime("us"),
            "run_id": pl.String,
            "venue": pl.String,
            "endpoint": pl.String,
            "raw_path": pl.String,
            "error": pl.String,
        },
    )
    return {
        "ts": ts,
        "facts": facts,
        "instruments": instrument_rows(parsed).with_columns(seen=pl.lit(loaded_at, pl.Datetime("us"))),
        "parse_errors": parse_errors,
        "raw_rows": raw_row_frame(parsed.files),  # every parsed row before de-duplication, for the gate
        **_ops_frames(manifests, ts),
    }


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, select: str = "*") -> None:
    if frame.height:
        con.register("_staged", frame)
        try:
            con.execute(f"INSERT INTO {table} BY NAME SELECT {select} FROM _staged")
        finally:
            con.unregister("_staged")


def upsert_instruments(con: duckdb.DuckDBPyConnection, instruments: pl.DataFrame) -> None:
    """Refresh ``core.dim_instrument`` from a run's listings (inside the caller's transaction); first_seen stays."""
    con.register("_instruments", instruments)
    try:
        con.execute(
            """
            INSERT INTO core.dim_instrument BY NAME
            SELECT venue, instrument, symbol, contract_value, quote, status, tradable,
                   seen AS first_seen, seen AS last_seen
            FROM _instruments
            ON CONFLICT (venue, instrument) DO UPDATE SET
                symbol = excluded.symbol, contract_value = excluded.contract_value, quote = excluded.quote,
                status = excluded.status, tradable = excluded.tradable,
                last_seen = greatest(core.dim_instrument.last_seen, excluded.last_seen)
            """
        )
    finally:
        con.unregister("_instruments")


def replace_ops(con: duckdb.DuckDBPyConnection, staged: dict[str, Any], run_id: str) -> None:
    """This run's extract log (inside the caller's transaction): written whether the interval publishes or not."""
    for table in ("extract_runs", "extract_failures", "parse_errors"):
        con.execute(f"DELETE FROM ops.{table} WHERE run_id = ?", [run_id])
        _insert(con, f"ops.{table}", staged[table])
    con.execute("DELETE FROM ops.skipped_symbols WHERE ts = ?", [staged["ts"]])
    _insert(con, "ops.skipped_symbols", staged["skipped_symbols"])
    con.execute("DELETE FROM ops.interval_unavailable WHERE ts = ?", [staged["ts"]])
    _insert(con, "ops.interval_unavailable", staged["interval_unavailable"])


def kept_pairs(staged: dict[str, Any]) -> list[str]:
    """``venue|metric`` pairs this load cannot observe: their existing rows at ts are kept, not replaced."""
    frame = staged["interval_unavailable"]
    return sorted({f"{venue}|{metric}" for venue, metric in frame.select("venue", "metric").iter_rows()})


def publish(
    con: duckdb.DuckDBPyConnection, staged: dict[str, Any], run_id: str, report: GateReport | None = None
) -> dict[str, int]:
    """Replace the interval's core rows and this run's ops rows, in one transaction; with a gate ``report``, only
    the rows that passed it, together with the interval's quarantine and this run's validation records."""
    ts = staged["ts"]
    facts = staged["facts"] if report is None else report.publish
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "DELETE FROM core.fact_positioning WHERE ts = ? AND NOT list_contains(?::VARCHAR[], venue || '|' || metric)",
            [ts, kept_pairs(staged)],
        )
        _insert(con, "core.fact_positioning", facts)
        upsert_instruments(con, staged["instruments"])
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
        "instruments": staged["instruments"].height,
        "parse_errors": staged["parse_errors"].height,
    }


def interval_start_of(manifests: list[dict[str, Any]], interval_end: datetime) -> datetime:
    """The run's data-interval start, as the extract tasks recorded it (an hour before the end if absent)."""
    starts = [m["interval_start"] for m in manifests if m.get("interval_start")]
    return datetime.fromisoformat(min(starts)) if starts else interval_end - timedelta(hours=1)


def _audit(
    staged: dict[str, Any],
    manifests: list[dict[str, Any]],
    interval_end: datetime,
    run_id: str,
    data: Path,
    config: QualityConfig,
    log: Callable[[str], None] | None,
    previous: pl.DataFrame,
    session: GxSession | None = None,
) -> GateReport:
    """The quality gate's verdict on a staged interval; touches no database (``previous``: :func:`previous_oi`)."""
    window = Window(
        interval_start_of(manifests, interval_end),
        interval_end,
        timedelta(minutes=config.current_value_tolerance_minutes),
    )
    report = audit(
        staged,
        latest_tries(manifests),
        window,
        run_id,
        previous,
        config=config,
        docs_dir=data / "exports" / "quality",
        session=session,
    )
    if log:
        log(report.text())
    return report


def _publish_or_block(
    con: duckdb.DuckDBPyConnection, staged: dict[str, Any], run_id: str, report: GateReport
) -> dict[str, int]:
    if report.blocked:
        con.execute("BEGIN TRANSACTION")
        replace_ops(con, staged, run_id)  # which venue and endpoint failed stays visible for a blocked interval
        con.execute("COMMIT")
        record_blocked(con, report)
        raise QualityGateError(report.text(), report.summary())
    return publish(con, staged, run_id, report)


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
    manifests = run_manifests(data, interval_end, run_id)
    if not manifests:
        raise RuntimeError(
            f"no extract manifests for run {run_id} at {interval_end.isoformat()} under {data}/manifests: "
            "did every extract task fail before writing one?"
        )
    staged = stage(manifests, interval_end, run_id)

    def connection() -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        return contextlib.nullcontext(con) if con is not None else warehouse.writer(data / "warehouse.duckdb", log=log)

    # The warehouse's write lock is held only to read the previous interval and to publish: not for the 3-5 s
    # great-expectations takes, during which analysts' sessions and other writers would wait.
    with connection() as own:
        previous = previous_oi(own, staged["ts"])
    report = _audit(staged, manifests, interval_end, run_id, data, config, log, previous)
    with connection() as own:
        counts = _publish_or_block(own, staged, run_id, report)
    venues = {m["venue"]: m["status"] for m in latest_tries(manifests)}
    return {"ts": staged["ts"].isoformat(), "venues": venues, **counts, "quality": report.summary()}
