"""The positioning DAG through Airflow (``dag.test()``) against the venue simulator."""

from __future__ import annotations

import json

import duckdb
import pytest
from conftest import INTERVAL_END, SIM_NOW_MS
from positioning.sim.venues.bitget import HUNDREDTH_RATIO_SYMBOLS

SYMBOLS = ["btc", "ETH", "SOL", "HYPE", "MKR", "PEPE", "ORDI"]  # lower case on purpose: normalised
VENUES = ("binance", "okx", "bitget", "strike", "bybit", "hyperliquid")
HOUR_MS = 3_600_000


def run(dag, conf: dict):
    return dag.test(logical_date=INTERVAL_END, run_conf=conf)


def snapshot(data_dir) -> dict[str, dict]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute("SELECT * FROM marts.symbol_snapshot ORDER BY symbol")
        names = [d[0] for d in cursor.description]
        return {
            row[0 if names[0] == "symbol" else names.index("symbol")]: dict(zip(names, row, strict=True))
            for row in cursor.fetchall()
        }


def table_dump(data_dir, table: str, order: str) -> list[tuple]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(f"SELECT * EXCLUDE (run_id, loaded_at) FROM {table} ORDER BY {order}").fetchall()


def expected_row(state, symbol: str) -> dict:
    """The snapshot row computed independently from the simulator's own state."""
    now, bucket = SIM_NOW_MS, int(INTERVAL_END.timestamp() * 1000) - HOUR_MS  # latest 1h bucket ended by ts
    listed = {venue: state.listed(venue) for venue in VENUES}
    oi = {
        venue: state.open_interest(venue, symbol, now)["usd"] if symbol in listed[venue] else None for venue in listed
    }
    marks = [state.coin_mark_price(venue, symbol, now) for venue in listed if symbol in listed[venue]]

    def ratio(venue, metric, period="1h"):
        if symbol not in listed[venue]:
            return None
        served = state.ratio(venue, metric, symbol, period, bucket)
        if venue == "bitget" and metric == "account-long-short" and symbol in HUNDREDTH_RATIO_SYMBOLS:
            return served["long_share"] / served["short_share"]  # sent on a x0.01 scale: its shares' quotient
        if venue == "bybit":
            return served["long_share"] / served["short_share"]  # buyRatio / sellRatio: Bybit sends no ratio
        return served["ratio"]

    top = ratio("binance", "topLongShortPositionRatio")
    glob = ratio("binance", "globalLongShortAccountRatio")
    okx = ratio("okx", "long-short-account-ratio", "1H")
    averaged = [r for r in (top, glob, okx) if r is not None]
    avg = sum(averaged) / len(averaged) if averaged else None
    strike = state.open_interest("strike", symbol, now) if symbol in listed["strike"] else None
    return {
        "mark_price": sorted(marks)[len(marks) // 2]
        if len(marks) % 2
        else sum(sorted(marks)[len(marks) // 2 - 1 : len(marks) // 2 + 1]) / 2,
        "binance_oi_usd": oi["binance"],
        "okx_oi_usd": oi["okx"],
        "bitget_oi_usd": oi["bitget"],
        "strike_oi_usd": oi["strike"],
        "bybit_oi_usd": oi["bybit"],  # one side: singleOpenInterestValue (the simulator's "usd")
        "hyperliquid_oi_usd": oi["hyperliquid"],  # coins x mark
        "total_oi_usd": sum(v for v in oi.values() if v is not None),
        "venues_with_oi": sum(v is not None for v in oi.values()),
        "binance_top_trader_ls": top,
        "binance_top_account_ls": ratio("binance", "topLongShortAccountRatio"),
        "binance_global_account_ls": glob,
        "okx_ls": okx,
        "bitget_ls": ratio("bitget", "account-long-short"),
        "strike_ls": strike["long_usd"] / strike["short_usd"] if strike else None,
        "bybit_ls": ratio("bybit", "account-ratio"),  # buyRatio / sellRatio (not in the seed average)
        "avg_ls_ratio": avg,
        "ls_metrics_count": len(averaged),
        "imbalance_pct": (avg - 1) / (avg + 1) * 100 if avg else None,
    }


def skew_label(avg):
    if avg is None:
        return "NO_DATA"
    if avg >= 2.5:
        return "EXTREME_LONG"
    if avg >= 1.25:
        return "LONG_SKEWED"
    if avg <= 0.4:
        return "EXTREME_SHORT"
    if avg <= 0.8:
        return "SHORT_SKEWED"
    return "NEUTRAL"


def test_dag_imports_and_uses_an_interval_timetable(positioning_dag):
    from airflow.sdk import CronDataIntervalTimetable

    assert isinstance(positioning_dag.timetable, CronDataIntervalTimetable)
    assert positioning_dag.catchup is False
    assert positioning_dag.max_consecutive_failed_dag_runs > 0
    assert positioning_dag.doc_md and "positioning" in positioning_dag.doc_md
    extracts = [t for t in positioning_dag.tasks if t.task_id.endswith(".extract")]
    assert {t.pool for t in extracts} == {f"positioning_{v}" for v in VENUES}
    assert all(t.retry_exponential_backoff for t in extracts)
    assert positioning_dag.get_task("load").pool == "positioning_warehouse"


def test_params_have_titles_descriptions_and_sections(positioning_dag):
    params = positioning_dag.params
    expected = {
        "symbols",
        "includeBinance",
        "includeOkx",
        "includeBitget",
        "includeStrike",
        "includeOiChange24h",
        "lsPeriod",
        "sortBy",
        "alertLsThreshold",
    }
    assert expected <= set(params.keys())
    for name in expected:
        param = params.get_param(name)
        assert param.schema.get("title") and param.description and param.schema.get("section"), name
    assert params.get_param("lsPeriod").schema["enum"] == ["5m", "15m", "30m", "1h", "2h", "4h", "1d"]
    assert set(params.get_param("sortBy").schema["enum"]) == {
        "oi_desc",
        "ls_long_extreme_desc",
        "ls_short_extreme_desc",
        "symbol_asc",
    }


@pytest.mark.parametrize(
    "conf, field",
    [
        ({"symbols": ["../x"]}, "symbols"),
        ({"symbols": ["'; drop table core.fact_positioning; --"]}, "symbols"),
        ({"symbols": [f"S{i}" for i in range(10_000)]}, "symbols"),
        ({"lsPeriod": "3m"}, "lsPeriod"),
        ({"lsPeriod": "1H"}, "lsPeriod"),
        ({"sortBy": "random"}, "sortBy"),
        ({"alertLsThreshold": -1}, "alertLsThreshold"),
        ({"includeOkx": "yes"}, "includeOkx"),
    ],
)
def test_invalid_conf_is_rejected_before_the_run_starts(positioning_dag, data_dir, conf, field):
    from airflow.sdk.definitions.param import ParamValidationError

    with pytest.raises(ParamValidationError) as error:
        run(positioning_dag, conf)
    assert field in str(error.value)
    assert not (data_dir / "raw").exists(), "nothing may be written for a rejected conf"


def test_snapshot_equals_values_computed_from_the_simulator_state(positioning_dag, sim, data_dir):
    dag_run = run(positioning_dag, {"symbols": SYMBOLS, "lsPeriod": "1h", "sortBy": "ls_long_extreme_desc"})
    assert dag_run.state == "success"
    rows = snapshot(data_dir)
    assert sorted(rows) == sorted(s.upper() for s in SYMBOLS)
    for symbol, row in rows.items():
        assert row["ts"] == INTERVAL_END.replace(tzinfo=None)
        expected = expected_row(sim.state, symbol)
        for column, value in expected.items():
            if value is None:
                assert row[column] is None, (symbol, column)
            else:
                assert row[column] == pytest.approx(value, rel=1e-9), (symbol, column)
        assert row["skew_label"] == skew_label(expected["avg_ls_ratio"]), symbol
        assert row["okx_oi_24h_change_pct"] is None  # includeOiChange24h is off
    labels = {row["skew_label"] for row in rows.values()}
    assert {"EXTREME_LONG", "EXTREME_SHORT"} <= labels  # PEPE and ORDI sit at the extremes in the simulator
    # The export is the interval's snapshot in sortBy order.
    exported = json.loads((data_dir / "exports" / "snapshots" / "symbol_snapshot_20261120T120000Z.json").read_text())
    ratios = [r["avg_ls_ratio"] for r in exported]
    assert ratios == sorted(ratios, reverse=True)
    assert (data_dir / "exports" / "snapshots" / "symbol_snapshot_20261120T120000Z.parquet").stat().st_size > 0


def test_okx_24h_oi_change_when_asked(positioning_dag, sim, data_dir):
    assert run(positioning_dag, {"symbols": ["BTC", "ETH"], "includeOiChange24h": True}).state == "success"
    end_ms = int(INTERVAL_END.timestamp() * 1000)
    for symbol, row in snapshot(data_dir).items():
        now = sim.state.okx_oi_volume(symbol, "1H", end_ms - HOUR_MS)["oi_usd"]
        then = sim.state.okx_oi_volume(symbol, "1H", end_ms - HOUR_MS - 24 * HOUR_MS)["oi_usd"]
        assert row["okx_oi_24h_change_pct"] == pytest.approx((now - then) / then * 100, rel=1e-9)


def test_rerunning_an_interval_three_times_leaves_identical_tables(positioning_dag, sim, data_dir):
    conf = {"symbols": ["BTC", "ETH", "SOL", "MKR"]}
    dumps = []
    for _ in range(3):
        assert run(positioning_dag, conf).state == "success"
        dumps.append(
            (
                table_dump(data_dir, "core.fact_positioning", "venue, symbol, metric, period"),
                snapshot(data_dir),
            )
        )
    assert dumps[0] == dumps[1] == dumps[2]
    facts = dumps[0][0]
    keys = [(row[0], row[1], row[2], row[3], row[4]) for row in facts]
    assert len(keys) == len(set(keys)), "the fact grain (ts, venue, symbol, metric, period) must be unique"
    # Every run landed its own raw files; none was overwritten.
    per_run: dict[str, set[str]] = {}
    for manifest_file in (data_dir / "manifests").rglob("venue=*.json"):
        manifest = json.loads(manifest_file.read_text())
        paths = {p for request in manifest["requests"] for p in request["raw_paths"]}
        per_run.setdefault(manifest["run_id"], set()).update(paths)
    assert len(per_run) == 3
    first, second, third = per_run.values()
    assert not (first & second or second & third or first & third)
    assert len(list((data_dir / "raw").rglob("*.json"))) == len(first | second | third)
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(DISTINCT run_id) FROM ops.extract_runs").fetchone()[0] == 3


def test_binance_geo_block_leaves_other_venues_loaded_and_is_recorded(positioning_dag, sim, data_dir):
    sim.add_fault("binance", kind="status", status=451)
    dag_run = run(positioning_dag, {"symbols": ["BTC", "ETH", "HYPE"]})
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["binance.extract"] == "failed"
    assert all(states[f"{venue}.extract"] == "success" for venue in VENUES if venue != "binance")
    assert states["load"] == states["build_marts"] == "success"
    rows = snapshot(data_dir)
    assert rows["BTC"]["binance_oi_usd"] is None and rows["BTC"]["binance_top_trader_ls"] is None
    # OKX, Bitget, Strike, Bybit, Hyperliquid
    assert rows["BTC"]["venues_with_oi"] == 5 and rows["BTC"]["ls_metrics_count"] == 1  # okx_ls only
    assert rows["BTC"]["okx_oi_usd"] > 0 and rows["BTC"]["bitget_oi_usd"] > 0 and rows["BTC"]["strike_oi_usd"] > 0
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        run_status = con.execute("SELECT venue, status, error FROM ops.extract_runs ORDER BY venue").fetchall()
        failures = con.execute("SELECT venue, endpoint, status, error FROM ops.extract_failures").fetchall()
    assert run_status[0][:2] == ("binance", "failed") and "451" in run_status[0][2]
    assert [r[:3] for r in failures] == [("binance", "exchangeInfo", 451)]
    assert "restricted location" in failures[0][3]
    # Only one request was made to Binance: a geo-block is not retried.
    assert [r["endpoint"] for r in sim.requests if r["venue"] == "binance"] == ["exchangeInfo"]
    # The 451 response itself was landed.
    landed = list((data_dir / "raw" / "venue=binance").rglob("*.json"))
    assert len(landed) == 1 and '"status":451' in landed[0].read_text()
