"""What the real venues send (issue 15): assets listed in multiples, a ratio on a x0.01 scale, repeated rows.

Parsers are fed the shapes seen live; the end-to-end case runs extract → load → marts against the simulator, which
lists PEPE, SHIB and BONK as ``1000PEPEUSDT`` … on Binance (OKX by a large ``ctVal``, Bitget as is) beside
USDC-quoted, BTC-quoted and dated contracts and ``1INCHUSDT``, a real asset whose name starts with a digit.
"""

from __future__ import annotations

import duckdb
import polars as pl
import pytest
from conftest import SIM_NOW_MS, run_interval
from positioning import pipeline, registry
from positioning.rows import Instrument
from positioning.venues import binance
from positioning.venues.base import map_listed
from positioning.warehouse.ratios import on_shares_scale

SYMBOLS = ["BTC", "PEPE", "SHIB", "BONK", "1INCH"]


def exchange_info_entry(symbol: str, base: str, quote: str = "USDT", contract: str = "PERPETUAL") -> dict:
    return {"symbol": symbol, "pair": f"{base}{quote}", "contractType": contract, "deliveryDate": 4133404800000,
            "status": "TRADING", "baseAsset": base, "quoteAsset": quote, "marginAsset": quote}  # fmt: skip


def test_binance_multiplied_assets_map_to_the_asset_and_nothing_is_guessed_from_a_digit():
    payload = {
        "symbols": [
            exchange_info_entry("1000PEPEUSDT", "1000PEPE"),
            exchange_info_entry("1000PEPEUSDC", "1000PEPE", quote="USDC"),
            exchange_info_entry("1MBABYDOGEUSDT", "1MBABYDOGE"),
            exchange_info_entry("1000000MOGUSDT", "1000000MOG"),
            exchange_info_entry("1INCHUSDT", "1INCH"),
            exchange_info_entry("1000XYZUSDT", "1000XYZ"),  # not in the adapter's table: kept as named
            exchange_info_entry("BNBBTC", "BNB", quote="BTC"),
            exchange_info_entry("BTCUSDT_250328", "BTC", contract="CURRENT_QUARTER"),
            exchange_info_entry("BTCUSDT", "BTC"),
        ]
    }
    parsed = {i.instrument: (i.symbol, i.multiplier) for i in binance.parse_exchange_info(payload)}
    assert parsed == {
        "1000PEPEUSDT": ("PEPE", 1000.0),
        "1MBABYDOGEUSDT": ("BABYDOGE", 1_000_000.0),
        "1000000MOGUSDT": ("MOG", 1_000_000.0),
        "1INCHUSDT": ("1INCH", 1.0),
        "1000XYZUSDT": ("1000XYZ", 1.0),
        "BTCUSDT": ("BTC", 1.0),
    }


def test_a_venue_trading_an_asset_singly_and_in_multiples_uses_the_single_one():
    def listed(instrument: str, multiplier: float, tradable: bool = True) -> Instrument:
        return Instrument("v", "PEPE", instrument, None, "USDT", "TRADING", tradable, multiplier)

    mapped, _ = map_listed("v", [listed("1000PEPEUSDT", 1000), listed("PEPEUSDT", 1)], ("PEPE",))
    assert mapped == {"PEPE": "PEPEUSDT"}
    mapped, _ = map_listed("v", [listed("PEPEUSDT", 1, tradable=False), listed("1000PEPEUSDT", 1000)], ("PEPE",))
    assert mapped == {"PEPE": "1000PEPEUSDT"}  # trading beats single


def test_a_ratio_one_hundredth_of_its_shares_quotient_publishes_the_quotient():
    live = {"ratio": 0.0138, "long_share": 0.58, "short_share": 0.42}  # Bitget account-long-short, 2024-10-19
    # A low ratio on that scale with four decimals is off its quotient by more than 1 % only through rounding.
    low = {"ratio": 0.0031, "long_share": 0.2345, "short_share": 0.7655}  # 0.3063 / 100, printed "0.0031"
    frame = pl.DataFrame([live, {**live, "ratio": 1.38}, {**live, "ratio": 138.1}, {**live, "ratio": 4.14},
                          {**live, "long_share": None, "short_share": None}, low,
                          {**low, "ratio": 0.0033}, {**live, "ratio": 0.0}])  # fmt: skip
    result = on_shares_scale(frame, tolerance=0.01).to_dicts()
    sources = ["shares", "venue", "shares", "venue", "venue", "shares", "venue", "venue"]  # a zero ratio: as sent
    assert [r["ratio_source"] for r in result] == sources
    assert result[5]["ratio"] == pytest.approx(0.2345 / 0.7655)
    assert result[0]["ratio"] == pytest.approx(0.58 / 0.42) and result[0]["venue_ratio"] == 0.0138
    assert result[2]["ratio"] == pytest.approx(0.58 / 0.42)  # x100 the other way
    assert result[3]["ratio"] == 4.14  # 3x off: kept as sent, for the gate to quarantine
    assert result[4]["ratio"] == 0.0138  # no shares to check against


def test_pepe_has_every_venues_oi_and_a_per_pepe_mark_price(sim, tmp_path):
    data = tmp_path / "data"
    summary = run_interval({"symbols": SYMBOLS}, data, "manual__multiples")
    assert summary["quality"]["published"] and not summary["quality"]["quarantined"], summary["quality"]
    state = sim.state
    listing = {venue: set(state.listed(venue)) for venue in registry.names()}
    assert state.listed("binance")["PEPE"] == "1000PEPEUSDT" and state.multiplier("binance", "PEPE") == 1000
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        facts = {
            (venue, symbol, metric): value
            for venue, symbol, metric, value in con.execute(
                "SELECT venue, symbol, metric, value FROM core.fact_positioning WHERE period = ''"
            ).fetchall()
        }
        rows = con.execute("SELECT * FROM marts.symbol_snapshot").fetchall()
        names = [d[0] for d in con.description]
        snapshot = {row["symbol"]: row for row in (dict(zip(names, values, strict=True)) for values in rows)}
        dims = {
            (venue, instrument): (symbol, multiplier)
            for venue, instrument, symbol, multiplier in con.execute(
                "SELECT venue, instrument, symbol, multiplier FROM core.dim_instrument"
            ).fetchall()
        }
    assert dims[("binance", "1000PEPEUSDT")] == ("PEPE", 1000.0) and dims[("binance", "1INCHUSDT")] == ("1INCH", 1.0)
    assert ("binance", "1000PEPEUSDC") not in dims and ("binance", "BTCUSDT_260327") not in dims
    when = SIM_NOW_MS
    for symbol in ("PEPE", "SHIB", "BONK", "1INCH", "BTC"):
        row = snapshot[symbol]
        venues = [venue for venue in registry.names() if symbol in listing[venue]]
        assert len(venues) >= 3, venues
        for venue in venues:
            truth = state.open_interest(venue, symbol, when)
            # Coins of the asset (the venue's units x its multiplier); USD as the venue reports or computes it.
            assert facts[(venue, symbol, "oi_usd")] == pytest.approx(truth["usd"], rel=1e-6), (venue, symbol)
            assert row[f"{venue}_oi_usd"] == pytest.approx(truth["usd"], rel=1e-6)
            if truth.get("coins") is not None:
                assert facts[(venue, symbol, "oi_coins")] == pytest.approx(truth["coins"], rel=1e-6), (venue, symbol)
            coin_mark = state.coin_mark_price(venue, symbol, when)
            assert facts[(venue, symbol, "mark_price")] == pytest.approx(coin_mark, rel=1e-9), (venue, symbol)
            assert row["mark_price"] == pytest.approx(coin_mark, rel=0.01), (venue, symbol)
        assert row["venues_with_oi"] == len(venues)
        assert row["total_oi_usd"] == pytest.approx(sum(row[f"{v}_oi_usd"] for v in venues))


def test_past_pepe_oi_from_history_is_in_coins_in_the_dag_load_and_the_bulk_fill(sim, tmp_path):
    from datetime import UTC, datetime, timedelta

    from positioning.backfill import run_fill, window_for

    now = datetime.fromtimestamp(SIM_NOW_MS / 1000, UTC)
    _, end = window_for(0.25, now)
    bucket = int(end.timestamp() * 1000) - 3_600_000  # the 1h bucket that ended at the interval end
    truth = sim.state.binance_oi_hist("PEPE", "1h", bucket)
    assert truth["coins"] == pytest.approx(
        float(sim.state.binance_oi_hist_strings("PEPE", "1h", bucket)["coins"]) * 1000
    )

    dag, bulk = tmp_path / "dag", tmp_path / "bulk"
    for spec in pipeline.plan({"symbols": ["PEPE"], "lsPeriod": "1h"})["binance"]:
        pipeline.extract(spec, end - timedelta(hours=1), end, "manual__past", 1, data=dag)
    assert pipeline.load(end, "manual__past", data=dag)["quality"]["published"]
    run_fill(0.25, ["PEPE"], data=bulk, base_urls={"binance": sim.base_url}, venues=["binance"], now=now,
             log=lambda _: None)  # fmt: skip
    query = (
        "SELECT metric, value FROM core.fact_positioning WHERE venue = 'binance' AND symbol = 'PEPE' AND ts = ? "
        "AND metric IN ('oi_coins', 'oi_usd')"
    )
    for path in (dag, bulk):
        with duckdb.connect(str(path / "warehouse.duckdb"), read_only=True) as con:
            values = dict(con.execute(query, [end.replace(tzinfo=None)]).fetchall())
        assert values["oi_coins"] == pytest.approx(truth["coins"], rel=1e-9), path.name
        assert values["oi_usd"] == pytest.approx(truth["usd"], rel=1e-9), path.name


def test_a_repeated_row_is_one_version_and_a_disagreeing_repeat_names_its_key():
    from positioning.quality.frames import raw_key_versions, raw_row_frame
    from positioning.venues import bitget

    row = {"longAccountRatio": "0.58", "shortAccountRatio": "0.42", "longShortAccountRatio": "1.381",
           "ts": "1729312200000"}  # fmt: skip
    other = {**row, "longShortAccountRatio": "1.2"}

    def parsed(*rows: dict, symbol: str) -> tuple[str, str, str, list]:
        payload = {"code": "00000", "msg": "success", "requestTime": 1729312300000, "data": list(rows)}
        path = f"raw/{symbol}.json"
        return ("bitget", "account-long-short", path, bitget.parse_account_long_short(payload, {"symbol": symbol}))

    raw = raw_row_frame([parsed(row, row, symbol="BTCUSDT"), parsed(row, other, symbol="ETHUSDT")])
    assert raw.height == 4 and raw["row_key"].n_unique() == 2
    exact = raw.filter(pl.col("row_subject") == "BTCUSDT")
    assert exact["row_values"].n_unique() == 1  # an exact repeat: collapsed, a warning
    facts = pl.DataFrame(
        {
            "row_id": [0, 1, 2],
            "venue": ["bitget", "bitget", "bitget"],
            "symbol": ["BTC", "ETH", "ETH"],
            "instrument": ["BTCUSDT", "ETHUSDT", "ETHUSDT"],
            "metric": ["ls_account", "ls_account", "oi_usd"],
        }
    )
    # Only ETH's account ratio came from the disagreeing response; ETH's OI and BTC's ratio stand.
    assert raw_key_versions(raw, facts).to_dicts() == [{"row_id": 1, "raw_key_versions": 2}]
