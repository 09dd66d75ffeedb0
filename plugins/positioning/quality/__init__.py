"""The quality gate of the load: write → audit → publish, with great-expectations.

The load stages an interval in memory (polars), then :func:`audit` validates it with three expectation suites and
decides what may be published. Nothing reaches ``core.*`` (and therefore ``marts.*``) before it passed.

The flow, one module each:

``frames``
    the frames the suites validate: the audit frame (staged facts plus one derived column per row check), the raw
    rows of every response, the per-venue coverage; :class:`Window`, when a value may be stamped.
``checks``
    the catalogue: every expectation as one declarative row (suite, level, expectation class, column, bounds,
    description), resolved against :class:`QualityConfig` (``config``: thresholds, suite names).
``gx``
    the great-expectations adapter: :class:`GxSession` (suites built once per session) and result parsing.
``gate``
    :func:`audit`, the verdict: what is quarantined, what blocks, what is a warning.
``report``
    :class:`GateReport` and its alert summary (:func:`alert_summary`, :func:`summary_from_warehouse`).
``records``
    the rows of ``quality.quarantine``, ``quality.expectation_results`` and ``quality.validation_runs``, and
    their writing (:func:`write_records`, :func:`record_blocked`).

Suites (one great-expectations run each, per interval):

``positioning.fact_rows`` (one row per staged fact row)
    Row-level ("quarantine"): a row that breaks one of these goes to ``quality.quarantine`` with the expectation and
    the offending value and is not published; the interval's other rows still publish. Keys not null and the value
    finite; ratios inside (0, 100), shares summing to one, the ratio equal to long share / short share; OI and mark
    price > 0; a venue-reported OI USD equal to OI coins x mark price; long + short OI equal to the total where a
    venue reports the split; ``source_ts`` inside the interval's window; a response repeating a row key repeats
    the same values (``raw_rows_agree``). Warning: a ratio published from its shares because the venue's figure
    was on a x0.01 scale (``ratio_on_shares_scale``). Batch-level ("block"): the fact grain (venue, symbol,
    metric, period) is unique.
``positioning.raw_rows`` (one row per parsed row of every raw response, before any de-duplication)
    Warning: no response repeats a row exactly (the normaliser collapses the repeat; it is recorded, not lost).
``positioning.venue_coverage`` (one row per venue of the run)
    Completeness per venue (warning) and of the best venue (block), below ``completeness_floor``; a venue's total
    OI USD against its previous published interval within ``drift_factor`` (warning).

A batch-level failure records the validation (its own transaction, so the failure is visible), publishes nothing
and raises :class:`QualityGateError` naming what failed. Every run is recorded in ``quality.validation_runs`` and
``quality.expectation_results``, and Data Docs (HTML) are rendered to ``$POSITIONING_DATA_DIR/exports/quality/``.
:meth:`GateReport.summary` (structured + ``text``) is the hook for the alert task; the load task returns it.

Importing the package is cheap: ``great_expectations`` (3-4 s to import) is imported only when a
:class:`GxSession` is created.
"""

from __future__ import annotations

from positioning.periods import period_seconds
from positioning.quality.checks import BLOCK, QUARANTINE, WARNING, Check, checks
from positioning.quality.config import (
    SUITE_FACT_ROWS,
    SUITE_RAW_ROWS,
    SUITE_VENUE_COVERAGE,
    SUITES,
    QualityConfig,
    QualityGateError,
)
from positioning.quality.frames import Window, audit_frame, coverage_frame, previous_oi, raw_row_frame
from positioning.quality.gate import audit
from positioning.quality.gx import GxSession
from positioning.quality.records import record_blocked, write_records
from positioning.quality.report import GateReport, alert_summary, summary_from_warehouse

__all__ = [
    "BLOCK",
    "QUARANTINE",
    "SUITES",
    "SUITE_FACT_ROWS",
    "SUITE_RAW_ROWS",
    "SUITE_VENUE_COVERAGE",
    "WARNING",
    "Check",
    "GateReport",
    "GxSession",
    "QualityConfig",
    "QualityGateError",
    "Window",
    "alert_summary",
    "audit",
    "audit_frame",
    "checks",
    "coverage_frame",
    "period_seconds",
    "previous_oi",
    "raw_row_frame",
    "record_blocked",
    "summary_from_warehouse",
    "write_records",
]
