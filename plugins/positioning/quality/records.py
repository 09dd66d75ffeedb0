"""The rows of the quality tables and their writing.

One audit produces ``quality.quarantine`` rows (the withheld fact rows with their evidence and reason),
``quality.expectation_results`` (one row per expectation) and ``quality.validation_runs`` (one per suite, with a
summary and its Data Docs page). :func:`write_records` replaces them inside the publishing transaction;
:func:`record_blocked` records a blocked interval in a transaction of its own, so the failure stays visible.
"""

from __future__ import annotations

import contextlib
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from positioning.quality.checks import BLOCK, Check
from positioning.quality.config import SUITE_FACT_ROWS, SUITE_RAW_ROWS, SUITE_VENUE_COVERAGE
from positioning.quality.frames import naive_utc
from positioning.quality.gx import exception_message, result_rows
from positioning.quality.report import GateReport, format_value
from positioning.warehouse.connection import insert_frame

QUARANTINE_COLUMNS = [
    "venue",
    "symbol",
    "metric",
    "period",
    "instrument",
    "value",
    "unit",
    "usd_source",
    "long_share",
    "short_share",
    "source_ts",
]
EXPECTATION_RESULTS_SCHEMA = {
    "validation_id": pl.String,
    "ts": pl.Datetime("us"),
    "run_id": pl.String,
    "suite": pl.String,
    "expectation": pl.String,
    "expectation_type": pl.String,
    "column_name": pl.String,
    "level": pl.String,
    "success": pl.Boolean,
    "observed_value": pl.String,
    "element_count": pl.Int64,
    "unexpected_count": pl.Int64,
    "unexpected_percent": pl.Float64,
    "exception": pl.String,
    "description": pl.String,
}


def _validation_id(run_id: str, ts: datetime, suite: str) -> str:
    return f"{run_id}|{ts.isoformat()}|{suite}"


def _jsonable(value: Any) -> Any:
    """``value`` (numpy scalars, non-finite floats, nested containers from a GE result) as plain JSON values."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        with contextlib.suppress(AttributeError, ValueError):
            value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def quarantine_rows(
    facts: pl.DataFrame, failures: pl.DataFrame, ts: datetime, run_id: str, all_checks: list[Check]
) -> pl.DataFrame:
    """``quality.quarantine`` rows (plus ``row_id``) for the (row_id, expectation, tested_column) ``failures`` of
    the audit frame ``facts``: the row, the measured value and the reason in words."""
    if failures.is_empty():  # the rule, and the bulk fill asks thousands of times: no frame work for nothing
        return pl.DataFrame(
            schema={
                "ts": pl.Datetime("us"), "run_id": pl.String, "validation_id": pl.String, "row_id": pl.Int64,
                **{column: facts.schema[column] for column in QUARANTINE_COLUMNS},
                "expectation": pl.String, "tested_column": pl.String, "observed": pl.Float64, "reason": pl.String,
                "quarantined_at": pl.Datetime("us"),
            }
        )  # fmt: skip
    descriptions = {c.name: c.description for c in all_checks}
    joined = failures.join(facts, on="row_id", how="left")
    observed = [
        None if row["tested_column"] not in facts.columns else row[row["tested_column"]]
        for row in joined.iter_rows(named=True)
    ]
    reasons = [
        f"{row['expectation']} failed ({descriptions.get(row['expectation'], '')}): "
        f"{row['metric']} value {format_value(row['value'])}"
        + (
            f", {row['tested_column']} = {format_value(obs)}"
            if row["tested_column"] not in ("finite_value", row["metric"])
            else ""
        )
        + (
            f", window {row['window_low']} .. {row['window_high']}"
            if row["expectation"] == "source_ts_in_window"
            else ""
        )
        for row, obs in zip(joined.iter_rows(named=True), observed, strict=True)
    ]
    observed_values = [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None for v in observed]
    # The finite check's tested column is null for the offending row: its evidence is the value itself.
    return joined.select(
        pl.lit(ts, pl.Datetime("us")).alias("ts"),
        pl.lit(run_id).alias("run_id"),
        pl.lit(_validation_id(run_id, ts, SUITE_FACT_ROWS)).alias("validation_id"),
        "row_id",
        *QUARANTINE_COLUMNS,
        "expectation",
        "tested_column",
        pl.Series("observed", observed_values, dtype=pl.Float64),
        pl.Series("reason", reasons, dtype=pl.String),
        pl.lit(naive_utc(datetime.now(UTC)), pl.Datetime("us")).alias("quarantined_at"),
    ).with_columns(observed=pl.when(pl.col("tested_column") == "finite_value").then("value").otherwise("observed"))


def expectation_records(
    suite_results: dict[str, Any], by_suite: dict[str, list[Check]], ts: datetime, run_id: str
) -> pl.DataFrame:
    """``quality.expectation_results`` rows: one per expectation of every suite that ran."""
    records = []
    for suite, result in suite_results.items():
        for check, outcome in result_rows(result, by_suite[suite]):
            details = outcome.result or {}
            observed = details.get("observed_value")
            if observed is None and "partial_unexpected_list" in details:
                # A map expectation has no observed value: its evidence is the unexpected values (a few).
                observed = (details.get("unexpected_list") or [])[:20]
            records.append(
                {
                    "validation_id": _validation_id(run_id, ts, suite),
                    "ts": ts,
                    "run_id": run_id,
                    "suite": suite,
                    "expectation": check.name,
                    "expectation_type": outcome.expectation_config.type,
                    "column_name": check.tested_column,
                    "level": check.level,
                    "success": bool(outcome.success),
                    "observed_value": json.dumps(_jsonable(observed)),
                    "element_count": details.get("element_count"),
                    "unexpected_count": details.get("unexpected_count"),
                    "unexpected_percent": details.get("unexpected_percent"),
                    "exception": exception_message(outcome),
                    "description": check.description,
                }
            )
    return pl.DataFrame(records, schema=EXPECTATION_RESULTS_SCHEMA)


def validation_records(
    report: GateReport,
    suite_results: dict[str, Any],
    suite_started: dict[str, tuple[datetime, float]],
    facts: pl.DataFrame,
    docs_dir: Path | None,
    run_name: str,
    ge_version: str,
) -> pl.DataFrame:
    """``quality.validation_runs`` rows: one per suite that ran, with a summary naming what failed (the report's
    own lines where it has them) and the suite's Data Docs page. Needs ``report.expectation_results``."""
    results = report.expectation_results
    rows_validated = {
        SUITE_FACT_ROWS: facts.height,
        SUITE_RAW_ROWS: None,  # the raw rows' count is the uniqueness check's element count
        SUITE_VENUE_COVERAGE: report.coverage.height,
    }
    # The report's own lines name the venue, symbol or value ("<venue> 0/2 symbols..."): prefer them.
    detailed = {line.split(":", 1)[0]: line for line in (*report.blocking, *report.warnings, *report.quarantined)}
    records = []
    expectation_rows = results.to_dicts()  # a dozen rows: plain Python beats frame filters here
    for suite, result in suite_results.items():
        mine = [r for r in expectation_rows if r["suite"] == suite]
        failed = [r for r in mine if not r["success"]]
        blocked = any(r["level"] == BLOCK or r["exception"] is not None for r in failed)
        quarantined = report.rows_quarantined if suite == SUITE_FACT_ROWS else 0
        lines = [
            f"{r['level']} "
            + detailed.get(
                r["expectation"],
                f"{r['expectation']}: {r['unexpected_count'] or 0} unexpected, observed {r['observed_value'][:200]}",
            )
            for r in failed
        ]
        counts = [r["element_count"] for r in mine if r["element_count"] is not None]
        began, seconds = suite_started[suite]
        records.append(
            {
                "validation_id": _validation_id(report.run_id, report.ts, suite),
                "ts": report.ts,
                "interval_start": report.interval_start,
                "run_id": report.run_id,
                "suite": suite,
                "success": bool(result.success),
                "blocked": blocked,
                "evaluated_expectations": len(mine),
                "failed_expectations": len(failed),
                "rows_validated": rows_validated[suite]
                if rows_validated[suite] is not None
                else int(max(counts, default=0) or 0),
                "rows_quarantined": quarantined,
                "started_at": naive_utc(began),
                "duration_ms": seconds * 1000,
                "ge_version": ge_version,
                "data_docs_path": docs_page(docs_dir, suite, run_name) if report.data_docs_index else None,
                "summary": f"{suite} {'passed' if result.success else 'failed'} for {report.ts} (run {report.run_id})"
                + "".join(f"\n  {line}" for line in lines),
            }
        )
    return pl.DataFrame(records, infer_schema_length=None).with_columns(
        pl.col("started_at", "ts", "interval_start").cast(pl.Datetime("us")), pl.col("duration_ms").cast(pl.Float64)
    )


def docs_page(docs_dir: Path | None, suite: str, run_name: str) -> str | None:
    """This run's Data Docs page of a suite: GE writes validations/<suite, dots as folders>/<run_name>/<run_time>/
    <batch>.html."""
    if docs_dir is None:
        return None
    folder = docs_dir.joinpath("validations", *suite.split("."), run_name)
    pages = sorted(folder.glob("*/*.html"), key=lambda p: p.stat().st_mtime)
    return str(pages[-1]) if pages else str(docs_dir / "index.html")


def write_records(con: duckdb.DuckDBPyConnection, report: GateReport, *, quarantine: bool) -> None:
    """Replace this run's validation records for the interval (and, when publishing, the interval's quarantine).
    Runs inside the caller's transaction."""
    con.execute("DELETE FROM quality.expectation_results WHERE ts = ? AND run_id = ?", [report.ts, report.run_id])
    con.execute("DELETE FROM quality.validation_runs WHERE ts = ? AND run_id = ?", [report.ts, report.run_id])
    insert_frame(con, "quality.validation_runs", report.validation_runs)
    insert_frame(con, "quality.expectation_results", report.expectation_results)
    if quarantine:
        con.execute("DELETE FROM quality.quarantine WHERE ts = ?", [report.ts])
        insert_frame(con, "quality.quarantine", report.quarantine.drop("row_id"))


def record_blocked(con: duckdb.DuckDBPyConnection, report: GateReport) -> None:
    """A blocked interval: record the validation in its own transaction (the core tables stay as they were)."""
    con.execute("BEGIN TRANSACTION")
    try:
        write_records(con, report, quarantine=False)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
