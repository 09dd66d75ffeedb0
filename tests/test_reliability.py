"""The fault matrix (``tests/reliability_matrix.py``) through the whole DAG against the venue simulator.

CI runs the reduced matrix (every scenario once, venues round-robin: 15 DAG runs); ``make reliability`` sets
``POSITIONING_FULL_MATRIX=1`` for all 60 (4 venues x 15 scenarios). The table (scenario, venue, fault, expected,
observed, ok) is printed at the end of the module, and written to ``$POSITIONING_MATRIX_REPORT`` when set.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import INTERVAL_END, SIM_NOW_MS
from reliability_matrix import (
    SYMBOLS,
    VENUES,
    Result,
    Scenario,
    full_matrix,
    render_table,
    selected_matrix,
)
from test_dag import expected_row

FACT_KEY = ("venue", "symbol", "metric", "period")
RESULTS: list[Result] = []
SELECTED = selected_matrix()


def run_dag(dag) -> Any:
    return dag.test(logical_date=INTERVAL_END, run_conf={"symbols": list(SYMBOLS), "lsPeriod": "1h"})


def query(data: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def published_facts(data: Path) -> dict[tuple, tuple]:
    """(venue, symbol, metric, period) -> the rest of the row, for the one interval these tests publish."""
    rows = query(
        data,
        "SELECT venue, symbol, metric, period, instrument, value, unit, usd_source, long_share, short_share, "
        "source_ts FROM core.fact_positioning ORDER BY ALL",
    )
    facts = {row[:4]: row[4:] for row in rows}
    assert len(facts) == len(rows), "the fact grain must be unique"
    return facts


@pytest.fixture(autouse=True)
def _fast_environment(monkeypatch):
    monkeypatch.setenv("POSITIONING_QUALITY_DATA_DOCS", "0")  # HTML Data Docs are not what is tested here


@pytest.fixture(scope="module")
def golden(positioning_dag, tmp_path_factory) -> Iterator[dict[tuple, tuple]]:
    """The facts a fault-free run publishes, checked against the simulator's own state."""
    from positioning.sim import VenueSimulator

    data = tmp_path_factory.mktemp("golden") / "data"
    with pytest.MonkeyPatch.context() as patch, VenueSimulator(port=0, seed=7, now_ms=SIM_NOW_MS) as sim:
        for venue in VENUES:
            patch.setenv(f"AIRFLOW_CONN_POSITIONING_{venue.upper()}", sim.base_url)
        patch.setenv("POSITIONING_DATA_DIR", str(data))
        patch.setenv("POSITIONING_QUALITY_DATA_DOCS", "0")
        assert run_dag(positioning_dag).state == "success"
        facts = published_facts(data)
        # Every venue publishes both symbols, and the values are the simulator's (as tests/test_dag.py computes).
        for venue in VENUES:
            for symbol in SYMBOLS:
                assert (venue, symbol, "oi_usd", "") in facts, (venue, symbol)
                usd = sim.state.open_interest(venue, symbol, SIM_NOW_MS)["usd"]
                assert facts[(venue, symbol, "oi_usd", "")][1] == pytest.approx(usd, rel=1e-9)
        cursor_rows = query(data, "SELECT * FROM marts.symbol_snapshot ORDER BY symbol")
        names = [r[0] for r in query(data, "SELECT column_name FROM (DESCRIBE marts.symbol_snapshot)")]
        for row in cursor_rows:
            snapshot = dict(zip(names, row, strict=True))
            for column, value in expected_row(sim.state, snapshot["symbol"]).items():
                if value is None:
                    assert snapshot[column] is None, column
                else:
                    assert snapshot[column] == pytest.approx(value, rel=1e-9), column
        assert query(data, "SELECT count(*) FROM quality.quarantine") == [(0,)]
        yield facts


def latest_manifest(data: Path, venue: str) -> dict:
    paths = sorted((data / "manifests").rglob(f"venue={venue}__try=*.json"))
    assert paths, f"no manifest for {venue}"
    return json.loads(paths[-1].read_text())


def visible_raw_files(data: Path, venue: str) -> list[Path]:
    return [p for p in (data / "raw" / f"venue={venue}").rglob("*.json") if not p.name.startswith(".tmp-")]


def completeness_warned(data: Path) -> bool:
    """A failed ``venue_completeness`` (warning level) for one venue. The quality tables do not name the venue
    (see test_completeness_warning_names_the_venue); only the faulty venue can be below the floor here."""
    rows = query(
        data,
        "SELECT level, unexpected_count FROM quality.expectation_results "
        "WHERE expectation = 'venue_completeness' AND NOT success",
    )
    return rows == [("warning", 1)]


def absent_allowed(scenario: Scenario, key: tuple) -> bool:
    venue, symbol, metric, _period = key
    expect = scenario.expect
    if venue != scenario.venue:
        return False
    if (symbol, metric) in expect.absent_extra:
        return True
    if expect.absent_symbol is not None and symbol != expect.absent_symbol:
        return False
    return expect.absent_metrics is None or metric in expect.absent_metrics


def check_scenario(scenario: Scenario, dag_run, sim, data: Path, golden: dict) -> tuple[str, list[str]]:
    """Compare one run with the scenario's expectation: (what was observed, the problems)."""
    expect, venue = scenario.expect, scenario.venue
    problems: list[str] = []
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    want_states = {f"{v}.extract": (expect.extract_state if v == venue else "success") for v in VENUES}
    want_states.update(load="success", build_marts="success")
    for task_id, state in want_states.items():
        if str(states.get(task_id)) != state:
            problems.append(f"{task_id} {states.get(task_id)} (expected {state})")

    # Landing: one raw file per request the simulator saw, for every venue.
    for v in VENUES:
        seen, landed = len([r for r in sim.requests if r["venue"] == v]), len(visible_raw_files(data, v))
        if seen != landed:
            problems.append(f"{v}: {seen} requests but {landed} raw files")
    venue_requests = [r for r in sim.requests if r["venue"] == venue]
    if expect.max_requests is not None and len(venue_requests) > expect.max_requests:
        problems.append(f"{len(venue_requests)} requests to {venue} (at most {expect.max_requests})")

    # Ops tables.
    runs = dict(query(data, "SELECT venue, status FROM ops.extract_runs"))
    want_runs = {v: (expect.venue_status if v == venue else "ok") for v in VENUES}
    if runs != want_runs:
        problems.append(f"ops.extract_runs {runs}")
    failures = query(
        data, "SELECT venue, endpoint, symbol, status, attempts, retryable FROM ops.extract_failures ORDER BY ALL"
    )
    want_failures = [(venue, *expect.failure)] if expect.failure else []
    if failures != want_failures:
        problems.append(f"ops.extract_failures {failures} (expected {want_failures})")
    parse_errors = query(data, "SELECT venue, endpoint FROM ops.parse_errors ORDER BY ALL")
    want_parse = [(venue, expect.parse_error_endpoint)] if expect.parse_error_endpoint else []
    if parse_errors != want_parse:
        problems.append(f"ops.parse_errors {parse_errors} (expected {want_parse})")

    # Retries, as the manifest and the simulator's log saw them.
    manifest = latest_manifest(data, venue)
    retried = [r for r in manifest["requests"] if r["attempts"] > 1]
    if expect.retried_endpoint:
        shape = [(r["endpoint"], r["attempts"], r["ok"]) for r in retried]
        if shape != [(expect.retried_endpoint, 2, True)]:
            problems.append(f"retries {shape} (expected one {expect.retried_endpoint} retried once and ok)")
    elif retried:
        problems.append(f"unexpected retries {[(r['endpoint'], r['attempts']) for r in retried]}")
    if expect.min_retry_gap_s is not None:
        gap = retry_gap(venue_requests, expect.retried_endpoint)
        if gap is None or gap < expect.min_retry_gap_s:
            problems.append(f"Retry-After not honoured: retry after {gap} s (< {expect.min_retry_gap_s} s)")

    # Quality records.
    warned = completeness_warned(data)
    if warned != expect.completeness_warning:
        problems.append(f"completeness warning {'recorded' if warned else 'missing'}")
    quarantined = query(data, "SELECT count(*) FROM quality.quarantine")[0][0]
    if quarantined:
        problems.append(f"{quarantined} rows quarantined")

    # Warehouse correctness: published = a subset of the fault-free facts, value for value; only allowed gaps.
    facts = published_facts(data)
    wrong = [key for key, row in facts.items() if key not in golden or not same_row(row, golden[key])]
    if wrong:
        problems.append(f"{len(wrong)} published facts differ from a fault-free run, e.g. {wrong[:3]}")
    absent = sorted(set(golden) - set(facts))
    not_allowed = [key for key in absent if not absent_allowed(scenario, key)]
    if not_allowed:
        problems.append(f"{len(not_allowed)} facts missing that the fault cannot explain, e.g. {not_allowed[:3]}")
    if expect.absent_required and not absent:
        problems.append("the facts the fault takes away were published anyway")
    if not expect.absent_required and absent:
        problems.append(f"{len(absent)} facts missing, e.g. {absent[:3]}")

    observed = (
        f"{venue}.extract {states.get(f'{venue}.extract')}, load {states.get('load')}; "
        f"status {runs.get(venue)}; {len(venue_requests)} req"
        + (f", retried {retried[0]['endpoint']}" if retried else "")
        + (f"; failure {failures[0][1:]}" if failures else "")
        + (f"; parse error {parse_errors[0][1]}" if parse_errors else "")
        + (f"; {len(absent)} facts absent" if absent else "; all facts")
        + ("; completeness warning" if warned else "")
        + (f"; {len(facts) - len(wrong)}/{len(facts)} published facts correct")
    )
    return observed, problems


def same_row(row: tuple, reference: tuple) -> bool:
    for value, expected in zip(row, reference, strict=True):
        if isinstance(value, float) and isinstance(expected, float):
            if value != pytest.approx(expected, rel=1e-12, abs=1e-15):
                return False
        elif value != expected:
            return False
    return True


def retry_gap(requests: list[dict], endpoint: str | None) -> float | None:
    """Seconds between the first failed request to ``endpoint`` and the next one with the same params."""
    for index, first in enumerate(requests):
        if first["endpoint"] == endpoint and first["status"] not in (200,):
            for later in requests[index + 1 :]:
                if later["endpoint"] == endpoint and later["params"] == first["params"]:
                    return round(later["ts"] - first["ts"], 3)
    return None


@pytest.mark.parametrize("scenario", SELECTED, ids=[s.id for s in SELECTED])
def test_fault_scenario_through_the_dag(positioning_dag, golden, sim, data_dir, monkeypatch, scenario: Scenario):
    from positioning import pipeline

    for fault in scenario.fault:
        sim.add_fault(
            scenario.venue, fault.endpoint, fault.kind, symbol=fault.symbol, times=fault.times, **fault.options
        )
    if scenario.http_timeout is not None:
        # pipeline reads POSITIONING_HTTP_TIMEOUT once, at import: set the value it uses.
        monkeypatch.setattr(pipeline, "EXTRACT_TIMEOUT_SECONDS", scenario.http_timeout)
    started = time.monotonic()
    dag_run = run_dag(positioning_dag)
    seconds = time.monotonic() - started
    observed, problems = check_scenario(scenario, dag_run, sim, data_dir, golden)
    RESULTS.append(Result(scenario, observed, problems, seconds))
    assert not problems, f"{scenario.id}: {observed}: {problems}"


def test_completeness_warning_names_the_venue_in_the_quality_tables(tmp_path, monkeypatch):
    import asyncio
    from datetime import timedelta

    from positioning.ingest.extract import extract_venue
    from positioning.ingest.http import RetryPolicy
    from positioning.sim import Limit, VenueSimulator
    from positioning.venues.base import ExtractRequest
    from positioning.warehouse.load import load_interval

    data = tmp_path / "data"
    request = ExtractRequest(SYMBOLS, "1h", INTERVAL_END - timedelta(hours=1), INTERVAL_END)
    relaxed = {"bitget:account-long-short": Limit(50, 1, "test")}
    with VenueSimulator(port=0, seed=7, now_ms=SIM_NOW_MS, rate_limits=relaxed) as sim:
        sim.add_fault("strike", "markets", "status", status=451)

        async def main():
            await asyncio.gather(
                *(
                    extract_venue(v, sim.base_url, request, data_dir=data, run_id="r", retry=RetryPolicy(seed=1))
                    for v in VENUES
                )
            )

        asyncio.run(main())
    load_interval(INTERVAL_END, "r", data=data)
    recorded = query(
        data,
        "SELECT coalesce(e.observed_value, '') || ' ' || coalesce(r.summary, '') FROM quality.expectation_results e "
        "JOIN quality.validation_runs r USING (validation_id) WHERE e.expectation = 'venue_completeness' "
        "AND NOT e.success",
    )
    assert recorded and all("strike" in text for (text,) in recorded), recorded


def test_strike_internal_error_envelope_without_code_is_retryable():
    from positioning.venues import strike

    assert strike.envelope_error({"success": False, "message": "INTERNAL_ERROR"}).retryable


def test_print_the_matrix(capsys):
    """Last in the module: the table, and 100 % of the selected scenarios as expected."""
    if not RESULTS:
        pytest.skip("no scenario ran (deselected)")
    table = render_table(RESULTS)
    with capsys.disabled():
        print("\n\nReliability fault matrix (" + ("full" if len(SELECTED) == len(full_matrix()) else "reduced") + ")")
        print(table)
    report = os.environ.get("POSITIONING_MATRIX_REPORT")
    if report:
        Path(report).write_text(table + "\n", encoding="utf-8")
    assert all(r.ok for r in RESULTS), table
