"""The verdict: :func:`audit` validates one staged interval with the three suites and decides what publishes.

1. ``positioning.fact_rows`` on the audit frame: a row failing a row check is quarantined, the interval's other
   rows still publish; a failing batch check (or an expectation that could not be evaluated) blocks.
2. ``positioning.raw_rows``: a response repeating a row exactly is a warning (the repeat is collapsed); one that
   repeats a key with other values quarantines the facts of that key (``raw_rows_agree``, in step 1).
3. ``positioning.venue_coverage`` on what would publish: completeness and drift are warnings, every venue below
   the completeness floor blocks.

The lines of :class:`~positioning.quality.report.GateReport` (``blocking``, ``warnings``, ``quarantined``) name
what failed with its venue, symbol and value. Nothing is written to DuckDB here (see
:mod:`positioning.quality.records`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from positioning import registry
from positioning.quality.checks import BLOCK, WARNING, Check, checks
from positioning.quality.config import SUITE_FACT_ROWS, SUITE_RAW_ROWS, SUITE_VENUE_COVERAGE, SUITES, QualityConfig
from positioning.quality.frames import Window, audit_frame, coverage_frame, naive_utc
from positioning.quality.gx import GxSession, exception_message, failed_indices, pandas_frame, result_rows
from positioning.quality.records import expectation_records, quarantine_rows, validation_records
from positioning.quality.report import GateReport, format_value

if TYPE_CHECKING:
    from positioning.ingest.manifests import Manifest
    from positioning.warehouse.load import StagedInterval

FAILURE_SCHEMA = {"row_id": pl.Int64, "expectation": pl.String, "tested_column": pl.String}


def audit(
    staged: StagedInterval,
    manifests: list[Manifest],
    window: Window,
    run_id: str,
    previous: pl.DataFrame,
    *,
    config: QualityConfig | None = None,
    docs_dir: Path | None = None,
    session: GxSession | None = None,
    runner: Callable[[str, pl.DataFrame, str, list[str]], Any] | None = None,
    frame: pl.DataFrame | None = None,
    coverage: pl.DataFrame | None = None,
) -> GateReport:
    """Validate one staged interval (``load.stage``; its latest manifest per venue) and decide what publishes.
    Writes nothing to DuckDB.

    ``session``: a :class:`GxSession` to reuse across intervals (its Data Docs setting wins over ``docs_dir``).
    ``runner(suite, frame, index_column, check_columns)``: the suite results of this interval instead of a
    great-expectations run of its own (``positioning.quality.window`` validates many intervals at once and hands
    each its share), with ``frame`` its audit frame and ``coverage`` its coverage frame already built.
    """
    config = config or QualityConfig.from_env()
    started = time.perf_counter()
    session = session or GxSession(docs_dir if config.data_docs else None)
    imported = time.perf_counter()
    ts = naive_utc(window.end)
    all_checks = checks(config)
    by_suite = {suite: [c for c in all_checks if c.suite == suite] for suite in SUITES}
    run_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{window.end.strftime('%Y%m%dT%H%M%SZ')}__{run_id}")
    extract_seconds = {m.venue: m.extract_seconds for m in manifests}

    facts = frame if frame is not None else audit_frame(staged.facts, window, extract_seconds, staged.raw_rows)
    fact_checks = by_suite[SUITE_FACT_ROWS]
    check_columns = [c.tested_column for c in fact_checks]
    suite_results: dict[str, Any] = {}
    suite_started: dict[str, tuple[datetime, float]] = {}

    def run(suite: str, frame: pl.DataFrame, index_column: str, columns: list[str]) -> Any:
        began = (datetime.now(UTC), time.perf_counter())
        if runner is not None:
            suite_results[suite] = runner(suite, frame, index_column, columns)
        else:
            frame_for_gx = pandas_frame(frame, columns)
            suite_results[suite] = session.run(suite, frame_for_gx, by_suite[suite], index_column, run_name)
        suite_started[suite] = (began[0], time.perf_counter() - began[1])
        return suite_results[suite]

    # 1. Row checks on the staged facts; failing rows are quarantined, the rest is what may publish.
    fact_result = run(SUITE_FACT_ROWS, facts, "row_id", check_columns)
    quarantine_parts, blocking, warnings, quarantined_lines = [], [], [], []
    for check, outcome in result_rows(fact_result, fact_checks):
        if outcome.success:
            continue
        error = exception_message(outcome)
        if error or check.level == BLOCK:
            # An expectation that could not be evaluated cannot tell good rows from bad: block, to be safe.
            blocking.append(_fact_block_line(check, outcome, facts, error))
            continue
        ids = failed_indices(outcome, "row_id")
        if check.level == WARNING:
            warnings.append(_fact_warning_line(check, ids, facts))
            continue
        quarantine_parts.append(
            pl.DataFrame(
                {"row_id": ids, "expectation": check.name, "tested_column": check.tested_column},
                schema=FAILURE_SCHEMA,
            )
        )
    failures = pl.concat(quarantine_parts) if quarantine_parts else pl.DataFrame(schema=FAILURE_SCHEMA)
    quarantine = quarantine_rows(facts, failures, ts, run_id, all_checks)
    for (expectation,), group in quarantine.group_by(["expectation"], maintain_order=True) if quarantine.height else ():
        examples = "; ".join(
            f"{r['venue']} {r['symbol']} {r['metric']}{'/' + r['period'] if r['period'] else ''} "
            f"value={format_value(r['value'])} ({r['tested_column']}={format_value(r['observed'])})"
            for r in group.head(3).iter_rows(named=True)
        )
        more = f" and {group.height - 3} more" if group.height > 3 else ""
        quarantined_lines.append(f"{expectation}: {group.height} row(s): {examples}{more}")
    failed_ids = failures["row_id"].unique().implode()
    publish = (
        staged.facts.with_row_index("row_id").filter(~pl.col("row_id").cast(pl.Int64).is_in(failed_ids)).drop("row_id")
    )

    # 2. Duplicate rows inside a venue response (before the normaliser collapsed them).
    raw_rows = staged.raw_rows
    raw_result = run(SUITE_RAW_ROWS, raw_rows, "row_id", [])
    for check, outcome in result_rows(raw_result, by_suite[SUITE_RAW_ROWS]):
        if not outcome.success:
            line = _raw_duplicates_line(check, outcome, raw_rows)
            (blocking if check.level == BLOCK or exception_message(outcome) else warnings).append(line)

    # 3. Completeness per venue (on what publishes) and drift against the previous published interval.
    if coverage is None:
        coverage = coverage_frame(manifests, raw_rows, publish, previous)
    coverage_result = run(SUITE_VENUE_COVERAGE, coverage, "venue", ["completeness", "oi_usd_change_factor"])
    for check, outcome in result_rows(coverage_result, by_suite[SUITE_VENUE_COVERAGE]):
        if outcome.success:
            continue
        line = _coverage_line(check, outcome, coverage, config)
        (blocking if check.level == BLOCK or exception_message(outcome) else warnings).append(line)

    validated = time.perf_counter()
    data_docs = None
    try:
        data_docs = session.build_docs()
    except Exception as exc:  # the report is a convenience; never let it fail the load
        warnings.append(f"data_docs: could not render Data Docs to {docs_dir}: {exc}")
    finished = time.perf_counter()

    report = GateReport(
        ts=ts,
        interval_start=naive_utc(window.start),
        run_id=run_id,
        publish=publish,
        quarantine=quarantine,
        validation_runs=pl.DataFrame(),
        expectation_results=pl.DataFrame(),
        coverage=coverage,
        blocking=blocking,
        warnings=warnings,
        quarantined=quarantined_lines,
        data_docs_index=data_docs,
        timings={
            "import_and_context": imported - started,
            "validate": validated - imported,
            "data_docs": finished - validated,
            "total": finished - started,
        },
    )
    report.expectation_results = expectation_records(suite_results, by_suite, ts, run_id)
    report.validation_runs = validation_records(
        report, suite_results, suite_started, facts, docs_dir, run_name, session.version
    )
    return report


def _fact_block_line(check: Check, outcome: Any, facts: pl.DataFrame, error: str | None) -> str:
    """A blocking fact-row failure: the fact grain's duplicates, or why the expectation could not run."""
    if error:
        return f"{check.name} could not be evaluated: {error}"
    ids = failed_indices(outcome, "row_id")
    duplicated = facts.filter(pl.col("row_id").is_in(ids)).select("venue", "symbol", "metric", "period").unique()
    examples = ", ".join("/".join(filter(None, row)) for row in duplicated.head(5).iter_rows())
    return f"{check.name}: {len(ids)} staged rows share their (venue, symbol, metric, period) key: {examples}"


def _fact_warning_line(check: Check, ids: list[int], facts: pl.DataFrame) -> str:
    """A fact-row warning (a ratio published from its shares), naming venue, endpoint, symbol and the factor
    between the venue's figure and the published one."""
    rows = facts.filter(pl.col("row_id").is_in(ids)).sort("venue", "symbol", "metric")

    def endpoint(venue: str, metric: str) -> str:
        try:
            return registry.get(venue).endpoint_of(metric)
        except registry.UnknownVenueError:
            return metric

    examples = [
        f"{r['venue']} {endpoint(r['venue'], r['metric'])} {r['symbol']} {r['metric']}"
        f"{'/' + r['period'] if r['period'] else ''}: the venue sent {format_value(r['venue_ratio'])}, its shares "
        f"give {format_value(r['value'])} (x{_factor(r[check.tested_column])}), published"
        for r in rows.head(5).iter_rows(named=True)
    ]
    more = f" and {rows.height - 5} more" if rows.height > 5 else ""
    return f"{check.name}: {rows.height} ratio(s) on another scale than their shares: {'; '.join(examples)}{more}"


def _factor(observed: float | None) -> str:
    """100 or 0.01 for a figure on a x0.01 or x100 scale (what the observed quotient is near), else the figure."""
    if observed is None:
        return "?"
    from positioning.warehouse.ratios import SCALE_FACTORS

    for factor in SCALE_FACTORS:
        if abs(observed / factor - 1) < 0.05:
            return f"{factor:g}"
    return format_value(observed)


def _raw_duplicates_line(check: Check, outcome: Any, raw_rows: pl.DataFrame) -> str:
    """A failing raw-row check: which venue endpoints repeat rows, in how many responses."""
    error = exception_message(outcome)
    if error:
        return f"{check.name} could not be evaluated: {error}"
    ids = failed_indices(outcome, "row_id")
    offenders = (
        raw_rows.filter(pl.col("row_id").is_in(ids))
        .group_by("venue", "endpoint")
        .agg(rows=pl.len(), files=pl.col("raw_path").n_unique())
        .sort("venue", "endpoint")
    )
    parts = [
        f"{r['venue']} {r['endpoint']} ({r['rows']} rows in {r['files']} responses)"
        for r in offenders.iter_rows(named=True)
    ]
    collapsed = " (exact repeats, collapsed into one)" if check.level == WARNING else ""
    return f"{check.name}: venue responses repeat rows{collapsed}: {', '.join(parts)}"


def _coverage_line(check: Check, outcome: Any, coverage: pl.DataFrame, config: QualityConfig) -> str:
    """A failing coverage check, naming each venue with its completeness (and missing symbols) or its drift."""
    error = exception_message(outcome)
    if error:
        return f"{check.name} could not be evaluated: {error}"
    if check.name == "some_venue_complete":
        venues = ", ".join(f"{r['venue']} {r['completeness']:.0%}" for r in coverage.iter_rows(named=True))
        return f"{check.name}: every venue is below the completeness floor {config.completeness_floor:.0%}: {venues}"
    failed = set(map(str, (item["venue"] for item in outcome.result.get("unexpected_index_list") or [])))
    rows = coverage.filter(pl.col("venue").is_in(sorted(failed)))
    if check.name == "venue_completeness":
        details = [
            f"{r['venue']} {r['present_symbols']}/{r['expected_symbols']} symbols ({r['completeness']:.0%}"
            f"{', extract ' + r['extract_status'] if r['extract_status'] != 'ok' else ''}"
            f"{', missing ' + r['missing_symbols'] if r['missing_symbols'] else ''})"
            for r in rows.iter_rows(named=True)
        ]
        return f"{check.name}: below the floor {config.completeness_floor:.0%}: {'; '.join(details)}"
    details = [
        f"{r['venue']} total OI USD x{r['oi_usd_change_factor']:.2f} vs {r['previous_ts']} "
        f"({r['compared_symbols']} symbols)"
        for r in rows.iter_rows(named=True)
    ]
    return f"{check.name}: moved more than {config.drift_factor:g}x: {'; '.join(details)}"
