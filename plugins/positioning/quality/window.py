"""The gate over many intervals at once: the bulk fill's audit, one great-expectations run per suite per window.

:func:`~positioning.quality.gate.audit` validates one interval with three great-expectations runs (a fraction of a
second, most of it great-expectations' own overhead). A fill of a year has 8,760 intervals, so
:func:`audit_window` validates a window of them with one run per suite and hands every interval its share of
the results: the same expectations, the same per-interval verdicts, quarantine, warnings and records
(``quality.expectation_results`` / ``validation_runs`` per interval) as auditing each alone would give.

How the results are shared:

* ``positioning.fact_rows``: the intervals' audit frames stacked (a global ``_gid`` index); a failing row belongs
  to its interval. The grain check's key gains the interval in the frame given to great-expectations (its
  ``venue`` is prefixed with the interval's position), so equal keys of different intervals are not duplicates.
* ``positioning.raw_rows``: every raw row once (an interval's raw rows are a window of the fill's); a failing row
  counts for every interval whose window holds it.
* ``positioning.venue_coverage``: the intervals' coverage frames stacked. Its drift check compares an interval
  with the previous *published* one, which inside a window is the interval before it when that one publishes, so
  the frames are built in order with that chain (each interval's publishable rows from its share of the row
  checks), then validated, then every interval is judged by :func:`audit` on its shares. An aggregate expectation (``some_venue_complete``: the best venue's completeness) is
  judged on each interval's rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from positioning.quality.checks import BLOCK, MAX_BETWEEN, QUARANTINE, checks
from positioning.quality.config import SUITE_FACT_ROWS, SUITE_RAW_ROWS, SUITE_VENUE_COVERAGE, SUITES, QualityConfig
from positioning.quality.frames import Window, audit_frames, coverage_frame, naive_utc
from positioning.quality.gate import audit
from positioning.quality.gx import GxSession, pandas_frame, result_rows

if TYPE_CHECKING:
    from positioning.ingest.manifests import Manifest
    from positioning.quality.report import GateReport
    from positioning.warehouse.load import StagedInterval

PREFIX = re.compile(r"^\d+\|")


@dataclass
class SharedOutcome:
    """One expectation's result for one interval, shaped like great-expectations' (what the gate reads)."""

    success: bool
    result: dict[str, Any]
    exception_info: dict[str, Any]
    expectation_config: Any


@dataclass
class SharedResult:
    """One suite's results for one interval."""

    results: list[SharedOutcome] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return all(outcome.success for outcome in self.results)


def _unprefixed(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("venue"), str):
        return {**value, "venue": PREFIX.sub("", value["venue"])}
    return value


def share(result: Any, suite_checks: list, frame: pl.DataFrame, index_column: str, count: int) -> list[SharedResult]:
    """``result`` (one run over ``frame``, indexed by ``_gid``, with ``_interval``) as ``count`` per-interval results
    whose unexpected rows are named by ``index_column`` as in a run of their own."""
    shared = [SharedResult() for _ in range(count)]
    places = zip(frame["_interval"].to_list(), frame[index_column].to_list(), strict=True)
    owner = dict(zip(frame["_gid"].to_list(), places, strict=True))
    sizes = dict(frame["_interval"].value_counts().iter_rows())
    for check, outcome in result_rows(result, suite_checks):
        details, info = outcome.result or {}, outcome.exception_info or {}
        raised = bool(info.get("raised_exception"))
        if check.expectation_type == MAX_BETWEEN:
            column, low = check.kwargs["column"], check.kwargs.get("min_value")
            best = dict(frame.group_by("_interval").agg(pl.col(column).max()).iter_rows())
            for i in range(count):
                observed = best.get(i)
                ok = not raised and observed is not None and (low is None or observed >= low)
                shared[i].results.append(SharedOutcome(ok, {"observed_value": observed}, info,
                                                       outcome.expectation_config))  # fmt: skip
            continue
        index_items = details.get("unexpected_index_list") or []
        values = details.get("unexpected_list") or [None] * len(index_items)
        failing: dict[int, list[tuple[Any, Any]]] = {}
        for item, value in zip(index_items, values, strict=False):
            interval, local = owner[int(item["_gid"])]
            failing.setdefault(interval, []).append((local, _unprefixed(value)))
        for i in range(count):
            mine = failing.get(i, [])
            elements = sizes.get(i, 0)
            shared[i].results.append(
                SharedOutcome(
                    success=not raised and not mine,
                    result={
                        "element_count": elements,
                        "unexpected_count": len(mine),
                        "unexpected_percent": 100.0 * len(mine) / elements if elements else 0.0,
                        "unexpected_list": [value for _, value in mine],
                        "partial_unexpected_list": [value for _, value in mine[:20]],
                        "unexpected_index_list": [{index_column: local} for local, _ in mine],
                    },
                    exception_info=info,
                    expectation_config=outcome.expectation_config,
                )
            )
    return shared


def _stacked(frames: list[pl.DataFrame]) -> pl.DataFrame:
    parts = [frame.with_columns(_interval=pl.lit(i, pl.Int64)) for i, frame in enumerate(frames)]
    return pl.concat(parts, how="diagonal_relaxed").with_row_index("_gid").with_columns(pl.col("_gid").cast(pl.Int64))


def _advance(previous: pl.DataFrame, published: pl.DataFrame, ts: Any) -> pl.DataFrame:
    """``previous`` (``frames.previous_oi``) after an interval published ``published``: its venues' OI replaces."""
    oi = published.filter(pl.col("metric") == "oi_usd").select(
        "venue", "symbol", previous_ts=pl.lit(ts, pl.Datetime("us")), previous_oi_usd="value"
    )
    return pl.concat([previous.filter(~pl.col("venue").is_in(oi["venue"].unique().implode())), oi])


def audit_window(
    staged: list[StagedInterval],
    manifests: list[list[Manifest]],
    windows: list[Window],
    run_id: str,
    previous: pl.DataFrame,
    *,
    config: QualityConfig,
    session: GxSession,
) -> list[GateReport]:
    """Every interval's :class:`GateReport`, as :func:`audit` would give it alone (see the module docstring).

    ``previous``: the venues' OI before the window's first interval (``frames.previous_oi``)."""
    count = len(staged)
    if count == 0:
        return []
    by_suite = {suite: [c for c in checks(config) if c.suite == suite] for suite in SUITES}
    run_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{windows[0].end:%Y%m%dT%H%M%SZ}-{windows[-1].end:%H%M%SZ}__{run_id}")

    facts = audit_frames(
        [s.facts for s in staged],
        windows,
        [{m.venue: m.extract_seconds for m in ms} for ms in manifests],
        [s.raw_rows for s in staged],
    )
    facts = facts.with_row_index("_gid").with_columns(pl.col("_gid").cast(pl.Int64))
    by_interval = {key[0]: part for key, part in facts.drop("_gid").partition_by(
        "_interval", as_dict=True, include_key=False, maintain_order=True).items()}  # fmt: skip
    frames = [by_interval.get(i, facts.clear().drop("_gid", "_interval")) for i in range(count)]
    fact_columns = [c.tested_column for c in by_suite[SUITE_FACT_ROWS]]
    for_gx = facts.with_columns(venue=pl.concat_str(pl.col("_interval").cast(pl.String), pl.lit("|"), "venue"))
    fact_result = session.run(SUITE_FACT_ROWS, pandas_frame(for_gx, fact_columns), by_suite[SUITE_FACT_ROWS],
                              "_gid", run_name)  # fmt: skip
    fact_shares = share(fact_result, by_suite[SUITE_FACT_ROWS], facts, "row_id", count)

    raw = pl.concat([s.raw_rows for s in staged], how="vertical_relaxed").unique("row_id", maintain_order=True)
    raw_result = session.run(SUITE_RAW_ROWS, pandas_frame(raw, []), by_suite[SUITE_RAW_ROWS], "row_id", run_name)
    raw_shares = [_raw_share(raw_result, by_suite[SUITE_RAW_ROWS], s.raw_rows) for s in staged]

    # Each interval's coverage frame, in order: what it publishes (its rows failing no row check that quarantines)
    # and the drift chain following what publishes (a block by a fact or raw check, or every venue below the
    # completeness floor, publishes nothing).
    coverage_frames: list[pl.DataFrame] = []
    previous_of: list[pl.DataFrame] = []
    for i in range(count):
        previous_of.append(previous)
        publish = _published(staged[i].facts, fact_shares[i], by_suite[SUITE_FACT_ROWS])
        frame = coverage_frame(manifests[i], staged[i].raw_rows, publish, previous)
        coverage_frames.append(frame)
        blocked = _blocks(fact_shares[i], by_suite[SUITE_FACT_ROWS]) or _blocks(raw_shares[i], by_suite[SUITE_RAW_ROWS])
        best = frame["completeness"].max() if frame.height else None
        if not blocked and best is not None and best >= config.completeness_floor:
            previous = _advance(previous, publish, naive_utc(windows[i].end))

    coverage = _stacked(coverage_frames)
    coverage_columns = ["completeness", "oi_usd_change_factor"]
    coverage_result = session.run(SUITE_VENUE_COVERAGE, pandas_frame(coverage, coverage_columns),
                                  by_suite[SUITE_VENUE_COVERAGE], "_gid", run_name)  # fmt: skip
    coverage_shares = share(coverage_result, by_suite[SUITE_VENUE_COVERAGE], coverage, "venue", count)

    # Pass 2: every interval judged on its share of the three runs.
    reports = []
    for i in range(count):
        shares = {SUITE_FACT_ROWS: fact_shares[i], SUITE_RAW_ROWS: raw_shares[i],
                  SUITE_VENUE_COVERAGE: coverage_shares[i]}  # fmt: skip

        def second_pass(suite: str, frame: pl.DataFrame, index: str, columns: list[str], shares=shares) -> Any:
            return shares[suite]

        reports.append(audit(staged[i], manifests[i], windows[i], run_id, previous_of[i], config=config,
                             session=session, runner=second_pass, frame=frames[i],
                             coverage=coverage_frames[i]))  # fmt: skip
    return reports


def _failing(result: SharedResult, suite_checks: list, level: str) -> list[tuple[Any, SharedOutcome]]:
    return [(c, o) for c, o in result_rows(result, suite_checks) if not o.success and c.level == level]


def _blocks(result: SharedResult, suite_checks: list) -> bool:
    """Whether the gate blocks on this share: a failing blocking check, or an expectation that raised."""
    return bool(_failing(result, suite_checks, BLOCK)) or any(
        (o.exception_info or {}).get("raised_exception") for _, o in result_rows(result, suite_checks)
    )


def _published(facts: pl.DataFrame, result: SharedResult, suite_checks: list) -> pl.DataFrame:
    """The staged facts without the rows a quarantining check failed (what :func:`audit` publishes)."""
    failed = {int(item["row_id"]) for _, o in _failing(result, suite_checks, QUARANTINE)
              for item in o.result.get("unexpected_index_list") or []}  # fmt: skip
    if not failed:
        return facts
    return facts.with_row_index("_row").filter(~pl.col("_row").is_in(sorted(failed))).drop("_row")


def _raw_share(result: Any, suite_checks: list, rows: pl.DataFrame) -> SharedResult:
    """The raw suite's result for one interval: the failing rows among its own raw rows."""
    mine = set(rows["row_id"].to_list()) if rows.height else set()
    shared = SharedResult()
    for _check, outcome in result_rows(result, suite_checks):
        details, info = outcome.result or {}, outcome.exception_info or {}
        items = [item for item in details.get("unexpected_index_list") or [] if int(item["row_id"]) in mine]
        shared.results.append(
            SharedOutcome(
                success=not info.get("raised_exception") and not items,
                result={
                    "element_count": rows.height,
                    "unexpected_count": len(items),
                    "unexpected_percent": 100.0 * len(items) / rows.height if rows.height else 0.0,
                    "unexpected_list": [],
                    "partial_unexpected_list": [],
                    "unexpected_index_list": [{"row_id": int(item["row_id"])} for item in items],
                },
                exception_info=info,
                expectation_config=outcome.expectation_config,
            )
        )
    return shared
