"""Load one interval: this run's raw files → staging → publish into the core tables, in one transaction.

Re-running an interval replaces that interval's core rows (delete + insert by ``ts``) and never touches
other intervals. The ops tables are a log keyed by run: re-loading the same run replaces its ops rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from positioning.config import data_dir
from positioning.extract import manifest_path
from positioning.normalize import ParsedRows, build_facts, instrument_rows, parse_manifest


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
    for manifest in latest_tries(manifests):
        for symbol, reason in manifest["skipped"].items():
            skipped.append({"ts": ts, "venue": manifest["venue"], "symbol": symbol, "reason": reason})
    return {
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
    parsed = ParsedRows()
    for manifest in current:
        parse_manifest(manifest, parsed)
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
        **_ops_frames(manifests, ts),
    }


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, select: str = "*") -> None:
    if frame.height:
        con.register("_staged", frame)
        try:
            con.execute(f"INSERT INTO {table} BY NAME SELECT {select} FROM _staged")
        finally:
            con.unregister("_staged")


def publish(con: duckdb.DuckDBPyConnection, staged: dict[str, Any], run_id: str) -> dict[str, int]:
    """Replace the interval's core rows and this run's ops rows, in one transaction."""
    ts = staged["ts"]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM core.fact_positioning WHERE ts = ?", [ts])
        _insert(con, "core.fact_positioning", staged["facts"])
        con.register("_instruments", staged["instruments"])
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
        con.unregister("_instruments")
        for table in ("extract_runs", "extract_failures", "parse_errors"):
            con.execute(f"DELETE FROM ops.{table} WHERE run_id = ?", [run_id])
            _insert(con, f"ops.{table}", staged[table])
        con.execute("DELETE FROM ops.skipped_symbols WHERE ts = ?", [ts])
        _insert(con, "ops.skipped_symbols", staged["skipped_symbols"])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return {
        "facts": staged["facts"].height,
        "instruments": staged["instruments"].height,
        "parse_errors": staged["parse_errors"].height,
    }


def load_interval(
    interval_end: datetime,
    run_id: str,
    *,
    data: Path | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Parse this run's raw files for the interval and publish them. Raises if no venue delivered anything."""
    from positioning import warehouse

    data = data or data_dir()
    manifests = run_manifests(data, interval_end, run_id)
    if not manifests:
        raise RuntimeError(
            f"no extract manifests for run {run_id} at {interval_end.isoformat()} under {data}/manifests: "
            "did every extract task fail before writing one?"
        )
    staged = stage(manifests, interval_end, run_id)
    if con is None:
        with warehouse.writer(data / "warehouse.duckdb", log=log) as own:
            counts = publish(own, staged, run_id)
    else:
        counts = publish(con, staged, run_id)
    venues = {m["venue"]: m["status"] for m in latest_tries(manifests)}
    return {"ts": staged["ts"].isoformat(), "venues": venues, **counts}
