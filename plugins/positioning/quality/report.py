"""The gate's outcome as the rest of the pipeline sees it: :class:`GateReport` (what publishes, what is
quarantined, what was recorded) and its alert summary, live (:func:`alert_summary`, the load task's XCom) or read
back from the quality tables (:func:`summary_from_warehouse`, after a failed load whose XCom is empty)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import polars as pl

from positioning.quality.frames import naive_utc


def format_value(value: Any) -> str:
    """A value as the report's lines and the quarantine reasons quote it."""
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@dataclass
class GateReport:
    """The outcome of :func:`~positioning.quality.gate.audit` for one interval: what publishes, what is
    quarantined, what was recorded."""

    ts: datetime
    interval_start: datetime
    run_id: str
    publish: pl.DataFrame  # the staged fact rows that passed
    quarantine: pl.DataFrame  # quality.quarantine rows
    validation_runs: pl.DataFrame  # quality.validation_runs rows
    expectation_results: pl.DataFrame  # quality.expectation_results rows
    coverage: pl.DataFrame
    blocking: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    data_docs_index: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def blocked(self) -> bool:
        return bool(self.blocking)

    @property
    def rows_quarantined(self) -> int:
        return self.quarantine["row_id"].n_unique() if self.quarantine.height else 0

    def summary(self) -> dict[str, Any]:
        """The alert hook: a JSON-serialisable summary (XCom-friendly) with a human-readable ``text``."""
        failed = self.expectation_results.filter(~pl.col("success"))
        return {
            "ts": self.ts.isoformat(),
            "run_id": self.run_id,
            "ok": not (self.blocking or self.warnings or self.quarantined),
            "published": not self.blocked,
            "rows_staged": self.publish.height + self.rows_quarantined,
            "rows_published": 0 if self.blocked else self.publish.height,
            "rows_quarantined": self.rows_quarantined,
            "blocking": list(self.blocking),
            "warnings": list(self.warnings),
            "quarantined": list(self.quarantined),
            "failed_expectations": [
                {k: row[k] for k in ("suite", "expectation", "level", "unexpected_count", "observed_value")}
                for row in failed.iter_rows(named=True)
            ],
            "data_docs": self.data_docs_index,
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "text": self.text(),
        }

    def text(self) -> str:
        stamp = self.ts.strftime("%Y-%m-%d %H:%M UTC")
        if self.blocked:
            head = f"quality gate BLOCKED publication of {stamp} (run {self.run_id})"
        elif self.quarantined or self.warnings:
            head = f"quality gate passed {stamp} with findings (run {self.run_id})"
        else:
            head = f"quality gate passed {stamp}: every expectation met (run {self.run_id})"
        lines = [head]
        lines += [f"  BLOCK {line}" for line in self.blocking]
        lines += [f"  QUARANTINED {line}" for line in self.quarantined]
        lines += [f"  WARNING {line}" for line in self.warnings]
        if self.data_docs_index:
            lines.append(f"  report: {self.data_docs_index}")
        return "\n".join(lines)


def alert_summary(report: GateReport) -> dict[str, Any]:
    """What the alert task needs from a load: ``ok``, ``published``, ``blocking``/``warnings``/``quarantined``
    lines and ``text``. Same as :meth:`GateReport.summary`; kept as a function for the alerting issue."""
    return report.summary()


def summary_from_warehouse(con: duckdb.DuckDBPyConnection, ts: datetime, run_id: str | None = None) -> dict[str, Any]:
    """The latest recorded gate outcome of an interval, from the quality tables (for an alert after a failed load,
    whose XCom is empty)."""
    params: list[Any] = [naive_utc(ts)]
    where = "ts = ?"
    if run_id:
        where += " AND run_id = ?"
        params.append(run_id)
    runs = con.execute(
        f"SELECT run_id, suite, success, blocked, summary, data_docs_path FROM quality.validation_runs WHERE {where} "
        f"AND run_id = (SELECT run_id FROM quality.validation_runs WHERE {where} ORDER BY started_at DESC LIMIT 1)",
        params + params,
    ).fetchall()
    if not runs:
        return {"ts": naive_utc(ts).isoformat(), "ok": None, "text": "no validation recorded for this interval"}
    return {
        "ts": naive_utc(ts).isoformat(),
        "run_id": runs[0][0],
        "ok": all(r[2] for r in runs),
        "published": not any(r[3] for r in runs),
        "text": "\n".join(r[4] for r in runs if r[4]),
        "data_docs": next((r[5] for r in runs if r[5]), None),
    }
