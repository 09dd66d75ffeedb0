"""Backfill and history (issue #7): past-interval plans, retention gaps, the resumable bulk fill, and DAG runs
over past intervals giving the same facts as the bulk fill.

Every test runs against the venue simulator with its clock frozen (``SIM_NOW_MS``); the extract decides "past"
on the venue's clock (its ``Date`` header), so the frozen simulator makes these intervals past or current.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import INTERVAL_END, SIM_NOW_MS
from positioning import VENUES
from positioning.backfill import BulkInterrupted, run_fill, window_for
from positioning.ingest.extract import extract_venue
from positioning.ingest.http import RateLimit, RetryPolicy
from positioning.ingest.manifests import Manifest
from positioning.quality import QualityConfig
from positioning.sim import Limit, VenueSimulator
from positioning.venues.base import ExtractRequest
from positioning.warehouse.load import load_interval

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.02, max_delay=0.1, seed=1)
RELAXED_CLIENT = {
    "bitget": {"account-long-short": RateLimit(50, 1.0, "test")},
    "okx": {"long-short-account-ratio": RateLimit(50, 1.0, "test")},
}
RELAXED_SIM = {"bitget:account-long-short": Limit(50, 1, "test"), "okx:long-short-account-ratio": Limit(50, 1, "test")}
SYMBOLS = ("BTC", "ETH", "HYPE")  # HYPE is not listed on OKX in the simulator
SIM_NOW = datetime.fromtimestamp(SIM_NOW_MS / 1000, UTC)
NO_DOCS = QualityConfig(data_docs=0)
FACT_QUERY = "SELECT * EXCLUDE (run_id, loaded_at) FROM core.fact_positioning {where} ORDER BY ALL"


@pytest.fixture
def relaxed_sim():
    with VenueSimulator(port=0, seed=7, now_ms=SIM_NOW_MS, rate_limits=RELAXED_SIM) as simulator:
        yield simulator


def extract_all(sim, data: Path, end: datetime, run_id: str, ls_period: str = "1h") -> dict[str, dict]:
    request = ExtractRequest(SYMBOLS, ls_period, end - timedelta(hours=1), end)

    async def main():
        return await asyncio.gather(
            *(
                extract_venue(
                    venue,
                    sim.base_url,
                    request,
                    data_dir=data,
                    run_id=run_id,
                    retry=FAST_RETRY,
                    limits=RELAXED_CLIENT.get(venue),
                )
                for venue in VENUES
            )
        )

    return {m.venue: m for m in asyncio.run(main())}


def endpoints(manifest: Manifest) -> set[str]:
    return {request.endpoint for request in manifest.requests}


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


# ------------------------------------------------------------------------------------------ request plans


def test_a_current_interval_keeps_the_snapshot_plan(relaxed_sim, tmp_path):
    manifests = extract_all(relaxed_sim, tmp_path, INTERVAL_END, "live")
    assert not any(m.history for m in manifests.values())
    assert {"premiumIndex", "openInterest"} <= endpoints(manifests["binance"])
    assert "openInterestHist" not in endpoints(manifests["binance"])
    assert {"open-interest", "mark-price", "funding-rate"} <= endpoints(manifests["okx"])
    assert all(m.unavailable == {} for m in manifests.values())


def test_a_past_interval_asks_only_history_endpoints_and_records_the_rest_as_unavailable(relaxed_sim, tmp_path):
    manifests = extract_all(relaxed_sim, tmp_path, INTERVAL_END - timedelta(hours=5), "past")
    assert all(m.history and m.status == "ok" for m in manifests.values())
    assert endpoints(manifests["binance"]) == {
        "exchangeInfo",
        "openInterestHist",
        "topLongShortPositionRatio",
        "topLongShortAccountRatio",
        "globalLongShortAccountRatio",
        "takerlongshortRatio",
    }
    hist = [r for r in relaxed_sim.requests if r.get("endpoint") == "openInterestHist"]
    assert hist and all({"startTime", "endTime", "period"} <= set(r["params"]) for r in hist)
    assert endpoints(manifests["okx"]) == {"instruments", "long-short-account-ratio", "taker-volume"}
    assert endpoints(manifests["bitget"]) == {"contracts"}
    assert endpoints(manifests["strike"]) == {"markets"}
    assert set(manifests["binance"].unavailable) == {"mark_price", "funding_rate"}
    assert {"oi_usd", "mark_price", "funding_rate"} <= set(manifests["okx"].unavailable)
    assert set(manifests["bitget"].unavailable) == {"oi_coins", "oi_usd", "mark_price", "funding_rate", "ls_account"}
    assert set(manifests["strike"].unavailable) == {"oi_usd", "ls_oi", "mark_price"}
    assert all("not available for this interval" in r for r in manifests["strike"].unavailable.values())


def test_an_interval_beyond_retention_is_a_gap_not_a_request(relaxed_sim, tmp_path):
    manifests = extract_all(relaxed_sim, tmp_path, INTERVAL_END - timedelta(days=31), "old")
    assert endpoints(manifests["binance"]) == {"exchangeInfo"}
    assert manifests["binance"].unavailable["oi_usd"].startswith("outside retention")
    assert endpoints(manifests["okx"]) == {"instruments"}
    assert manifests["okx"].unavailable["ls_account"].startswith("outside retention")
    # OKX keeps 5m buckets for 2 days only: lsPeriod 15m (-> rubik 5m) three days back is a gap there alone.
    manifests = extract_all(relaxed_sim, tmp_path, INTERVAL_END - timedelta(days=3), "okx5m", ls_period="15m")
    assert manifests["okx"].unavailable["ls_account"].startswith("outside retention")
    assert "openInterestHist" in endpoints(manifests["binance"])


def test_past_interval_loads_history_facts_and_a_gap_loads_nothing_without_failing(relaxed_sim, tmp_path):
    past = INTERVAL_END - timedelta(hours=5)
    extract_all(relaxed_sim, tmp_path, past, "past")
    summary = load_interval(past, "past", data=tmp_path, config=NO_DOCS)
    assert summary["quality"]["published"]
    warehouse = tmp_path / "warehouse.duckdb"
    pairs = set(query(warehouse, "SELECT DISTINCT venue, metric FROM core.fact_positioning"))
    assert pairs == {
        ("binance", m)
        for m in ("oi_coins", "oi_usd", "ls_top_position", "ls_top_account", "ls_global_account", "taker_buy_sell")
    } | {
        ("okx", "ls_account"),
        ("okx", "taker_buy_sell"),
        ("bybit", "oi_coins"),
        ("bybit", "ls_account"),
    }  # Bybit's OI history: coins only
    # Values are the buckets that ended at the interval end, stamped with their start.
    assert set(query(warehouse, "SELECT DISTINCT source_ts FROM core.fact_positioning")) == {
        (past.replace(tzinfo=None) - timedelta(hours=1),)
    }
    usd = query(warehouse, "SELECT DISTINCT usd_source, period FROM core.fact_positioning WHERE metric = 'oi_usd'")
    assert usd == [("venue", "1h")]
    unavailable = query(warehouse, "SELECT venue, metric, kind FROM ops.interval_unavailable ORDER BY ALL")
    assert ("bitget", "oi_usd", "snapshot_only") in unavailable and ("strike", "ls_oi", "snapshot_only") in unavailable

    old = INTERVAL_END - timedelta(days=31)
    extract_all(relaxed_sim, tmp_path, old, "old")
    # Only Bybit keeps history back to each symbol's launch: 3 symbols x (oi_coins, ls_account); nothing else.
    assert load_interval(old, "old", data=tmp_path, config=NO_DOCS)["facts"] == 6
    old_venues = query(
        warehouse, "SELECT DISTINCT venue FROM core.fact_positioning WHERE ts = ?", [old.replace(tzinfo=None)]
    )
    assert old_venues == [("bybit",)]
    kinds = query(
        warehouse, "SELECT DISTINCT kind FROM ops.interval_unavailable WHERE ts = ?", [old.replace(tzinfo=None)]
    )
    assert ("retention",) in kinds
    coverage = query(
        warehouse,
        "SELECT status, count(*) FROM marts.coverage_intervals WHERE venue = 'binance' AND metric = 'oi_usd' "
        "GROUP BY ALL ORDER BY ALL",
    )
    statuses = dict(coverage)
    assert statuses["present"] == 1 and statuses["not_available"] == 1 and statuses["missing"] > 0


def test_backfilling_an_hour_a_live_run_collected_keeps_its_current_values(relaxed_sim, tmp_path):
    extract_all(relaxed_sim, tmp_path, INTERVAL_END, "live")
    load_interval(INTERVAL_END, "live", data=tmp_path, config=NO_DOCS)
    warehouse = tmp_path / "warehouse.duckdb"
    live_marks = query(warehouse, "SELECT venue, symbol, value FROM core.fact_positioning WHERE metric = 'mark_price'")
    relaxed_sim.set_now(SIM_NOW_MS + 6 * 3_600_000)  # the same hour, re-run six hours later: now a past interval
    manifests = extract_all(relaxed_sim, tmp_path, INTERVAL_END, "rerun")
    assert manifests["binance"].history
    load_interval(INTERVAL_END, "rerun", data=tmp_path, config=NO_DOCS)
    assert query(warehouse, "SELECT venue, symbol, value FROM core.fact_positioning WHERE metric = 'mark_price'") == (
        live_marks
    )
    binance_oi = query(
        warehouse,
        "SELECT DISTINCT period, run_id FROM core.fact_positioning WHERE venue = 'binance' AND metric = 'oi_usd'",
    )
    assert binance_oi == [("1h", "rerun")]  # what history can give is replaced, once
    duplicates = query(
        warehouse, "SELECT count(*) - count(DISTINCT (ts, venue, symbol, metric, period)) FROM core.fact_positioning"
    )
    assert duplicates == [(0,)]


# ---------------------------------------------------------------------------------------------- bulk fill


def fill(sim, data: Path, **hooks):
    return run_fill(
        0.5,
        SYMBOLS,
        data=data,
        base_urls={v: sim.base_url for v in VENUES},
        now=SIM_NOW,
        retry=FAST_RETRY,
        limits=RELAXED_CLIENT,
        log=lambda line: None,
        **hooks,
    )


def warehouse_dump(data: Path) -> dict[str, list[tuple]]:
    path = data / "warehouse.duckdb"
    return {
        "facts": query(path, FACT_QUERY.format(where="")),
        "unavailable": query(path, "SELECT * EXCLUDE (run_id) FROM ops.interval_unavailable ORDER BY ALL"),
        "snapshot": query(path, "SELECT * FROM marts.symbol_snapshot ORDER BY ALL"),
        "coverage": query(path, "SELECT * FROM marts.coverage ORDER BY ALL"),
    }


def test_bulk_fill_killed_twice_and_restarted_gives_the_same_warehouse(relaxed_sim, tmp_path):
    whole = fill(relaxed_sim, tmp_path / "whole")
    assert whole["complete"] and whole["published"] == 12 and whole["rate_limited"] == 0
    # Binance: listing + 4 endpoints x 3 symbols, one page each; OKX: listing + one call per listed coin;
    # Bybit: listing + OI history and account ratio x 3 symbols, one page each.
    assert whole["requests_sent"] == {"binance": 16, "okx": 5, "bybit": 7}  # listing + one page per series

    interrupted = tmp_path / "interrupted"
    with pytest.raises(BulkInterrupted):
        fill(relaxed_sim, interrupted, stop_after_chunks=3)  # killed while fetching
    with pytest.raises(BulkInterrupted):
        fill(relaxed_sim, interrupted, stop_after_intervals=5)  # killed while loading
    resumed = fill(relaxed_sim, interrupted)
    assert resumed["complete"] and resumed["skipped"] == 5 and resumed["published"] == 7
    assert sum(resumed["requests_sent"].values()) == 0  # every chunk was already on disk
    assert resumed["run_id"] == whole["run_id"]
    expected, actual = warehouse_dump(tmp_path / "whole"), warehouse_dump(interrupted)
    assert expected["facts"] and expected["coverage"]
    for table in expected:
        assert actual[table] == expected[table], table


def test_bulk_window_ends_at_the_last_past_hour():
    first, last = window_for(30, datetime(2026, 11, 21, 8, 25, tzinfo=UTC))
    assert last == datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
    assert first == last - timedelta(hours=719)


# ------------------------------------------------------------------------------ DAG runs == the bulk fill


def test_dag_runs_over_past_intervals_equal_the_bulk_fill(positioning_dag, sim, data_dir, tmp_path):
    _, last = window_for(0.5, SIM_NOW)
    ends = [last - timedelta(hours=h) for h in range(3)]
    for end in ends:  # dag.test puts the logical date at the interval end
        dag_run = positioning_dag.test(logical_date=end, run_conf={"symbols": list(SYMBOLS), "lsPeriod": "1h"})
        states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
        assert states["load"] == "success", states
    bulk = tmp_path / "bulk"
    run_fill(0.5, SYMBOLS, data=bulk, base_urls={v: sim.base_url for v in VENUES}, now=SIM_NOW, log=lambda _: None)
    where = "WHERE ts IN ({})".format(", ".join(f"TIMESTAMP '{e:%Y-%m-%d %H:%M:%S}'" for e in ends))
    dag_facts = query(data_dir / "warehouse.duckdb", FACT_QUERY.format(where=where))
    bulk_facts = query(bulk / "warehouse.duckdb", FACT_QUERY.format(where=where))
    # 3 symbols x (6 Binance + 2 Bybit metrics) + 2 OKX coins x 2 ratios, in each of the 3 hours
    assert len(dag_facts) == 3 * (3 * 8 + 2 * 2)
    assert dag_facts == bulk_facts
