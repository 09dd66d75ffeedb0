"""The bodies of the DAG's tasks, as plain functions of plain arguments (the DAG file only wires them).

plan → extract (one per enabled venue) → load (the single DuckDB writer) → marts (+ exports).
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from positioning import registry
from positioning.params import RunConfig

log = logging.getLogger("positioning")

EXTRACT_TIMEOUT_SECONDS = float(os.environ.get("POSITIONING_HTTP_TIMEOUT", "10"))


class VenueExtractFailed(RuntimeError):
    """A venue delivered nothing usable for this interval (the other venues still load).

    ``retryable`` says whether trying again later can help (a 503 can, a 451 geo-block cannot).
    """

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


def plan(params: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise the run's params; one extract spec per enabled venue (``[]`` when disabled)."""
    config = RunConfig.from_params(params)
    spec = {
        "symbols": list(config.symbols),
        "ls_period": config.ls_period,
        "include_oi_change_24h": config.include_oi_change_24h,
    }
    result: dict[str, Any] = {
        venue: ([{"venue": venue, **spec}] if venue in config.venues else []) for venue in registry.names()
    }
    result["symbols"] = list(config.symbols)
    result["sort_by"] = config.sort_by
    log.info(
        "plan: %d symbols, venues %s, lsPeriod %s, sortBy %s",
        len(config.symbols),
        ", ".join(config.venues),
        config.ls_period,
        config.sort_by,
    )
    return result


def interval_from_context(context: dict[str, Any]) -> tuple[datetime, datetime]:
    """The run's data interval; a run without one (REST trigger with logical_date null) gets the hour before
    its run_after."""
    try:
        start, end = context["data_interval_start"], context["data_interval_end"]
    except KeyError:
        start = end = None
    if start is None or end is None:
        run_after = context["dag_run"].run_after
        end = run_after.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(hours=1)
    return start.astimezone(UTC), end.astimezone(UTC)


def extract(
    spec: dict[str, Any],
    interval_start: datetime,
    interval_end: datetime,
    run_id: str,
    attempt: int,
    *,
    data: Path | None = None,
) -> dict[str, Any]:
    """Extract one venue; write raw files and the manifest; return a small summary for XCom.

    Raises :class:`VenueExtractFailed` when the venue delivered nothing usable, after the manifest is written.
    """
    from positioning import connections
    from positioning.config import data_dir
    from positioning.ingest.extract import run_extract
    from positioning.venues.base import ExtractRequest

    venue = spec["venue"]
    request = ExtractRequest(
        symbols=tuple(spec["symbols"]),
        ls_period=spec["ls_period"],
        interval_start=interval_start,
        interval_end=interval_end,
        include_oi_change_24h=spec["include_oi_change_24h"],
    )
    base = connections.base_url(venue)
    log.info(
        "extract %s from %s for %s..%s (%d symbols)", venue, base, interval_start, interval_end, len(request.symbols)
    )
    manifest = run_extract(
        venue,
        base,
        request,
        data_dir=data or data_dir(),
        run_id=run_id,
        attempt=attempt,
        timeout=EXTRACT_TIMEOUT_SECONDS,
        log=log.info,
    )
    failed = manifest.failed_requests
    summary = {
        "venue": venue,
        "status": manifest.status,
        "manifest_path": str(manifest.path),
        "requests_sent": manifest.requests_sent,
        "status_counts": manifest.status_counts,
        "symbols_mapped": len(manifest.instruments),
        "skipped": manifest.skipped,
        "failed_requests": len(failed),
        "errors": [f"{r.endpoint} {r.symbol or ''}: {r.error}" for r in failed[:5]],
        "history": manifest.history,
        "unavailable": manifest.unavailable,
    }
    log.info(
        "extract %s: %s, %d requests sent, %d symbols mapped, %d skipped (not listed), %d failed requests",
        venue,
        manifest.status,
        manifest.requests_sent,
        len(manifest.instruments),
        len(manifest.skipped),
        len(failed),
    )
    for line in summary["errors"]:
        log.warning("extract %s failure: %s", venue, line)
    if summary["history"]:
        log.info("extract %s: past interval, history endpoints only (venue clock %s)", venue, manifest.as_of)
    for metric, reason in summary["unavailable"].items():
        # Not an error: recorded in ops.interval_unavailable and shown by marts.coverage.
        log.info("extract %s: %s %s", venue, metric, reason)
    if manifest.status == "failed":
        raise VenueExtractFailed(f"{venue}: {manifest.fatal}", retryable=any(r.retryable for r in failed) or not failed)
    return summary


def load(interval_end: datetime, run_id: str, *, data: Path | None = None) -> dict[str, Any]:
    """write → audit → publish one interval. The returned ``quality`` entry (also in XCom) is the gate's alert
    summary; a batch-level failure raises ``QualityGateError`` naming what failed, after recording it."""
    from positioning.warehouse.load import load_interval

    summary = load_interval(interval_end, run_id, data=data, log=log.info)
    quality = summary["quality"]
    log.info(
        "load %s: %d facts published, %d quarantined; venues %s; validation %.2f s (+ %.2f s Data Docs), report %s",
        interval_end.isoformat(),
        summary["facts"],
        summary["quarantined"],
        summary["venues"],
        quality["timings_s"].get("validate", 0.0),
        quality["timings_s"].get("data_docs", 0.0),
        quality["data_docs"],
    )
    return summary


def build_marts(interval_end: datetime, sort_by: str, *, data: Path | None = None) -> dict[str, Any]:
    """Refresh the SQL models for this interval (and the later intervals whose windows contain it), then export:
    the interval's snapshot in ``sort_by`` order, and every ``marts.*`` table to ``exports/marts/*.parquet``."""
    import time

    from positioning import warehouse
    from positioning.config import data_dir
    from positioning.dashboard import write_dashboard
    from positioning.warehouse.marts import export_marts, export_snapshot, refresh

    data = data or data_dir()
    with warehouse.writer(data / "warehouse.duckdb", log=log.info) as con:
        started = time.monotonic()
        con.execute("BEGIN TRANSACTION")
        written = refresh(con, [interval_end], log=log.info)
        con.execute("COMMIT")
        refreshed = time.monotonic()
        exported = export_snapshot(con, interval_end, sort_by, data / "exports")
        mart_exports = export_marts(con, data / "exports")
        top = con.execute(
            "SELECT symbol, total_oi_usd, avg_ls_ratio, skew_label FROM marts.symbol_snapshot WHERE ts = ? "
            "ORDER BY total_oi_usd DESC NULLS LAST LIMIT 5",
            [interval_end.astimezone(UTC).replace(tzinfo=None)],
        ).fetchall()
        signals = con.execute(
            "SELECT symbol, top_signal, top_score FROM marts.positioning_signals WHERE ts = ? AND signal_count > 0 "
            "ORDER BY top_score DESC, symbol LIMIT 5",
            [interval_end.astimezone(UTC).replace(tzinfo=None)],
        ).fetchall()
    log.info(
        "marts: %s in %.2f s; exports in %.2f s: snapshot %s, %d marts under %s",
        written,
        refreshed - started,
        time.monotonic() - refreshed,
        exported["parquet"],
        len(mart_exports),
        data / "exports" / "marts",
    )
    for symbol, oi, ratio, label in top:
        log.info(
            "  %-8s OI %s  L/S %s  %s", symbol, f"{oi:,.0f}" if oi else "-", f"{ratio:.3f}" if ratio else "-", label
        )
    for symbol, signal, score in signals:
        log.info("  signal %-8s %s (score %.2f)", symbol, signal, score)
    # The HTML dashboard reads the Parquet exports just written (not the warehouse): exports/dashboard/index.html
    dashboard = write_dashboard(data / "exports")
    return {"written": written, "exports": exported, "mart_exports": mart_exports, "dashboard": str(dashboard)}
