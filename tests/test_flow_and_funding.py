"""Taker flow and funding on one scale (issue 16, points 3 and 4).

Parsers get the documented payloads; the end-to-end case runs extract → load → marts against the simulator, where
funding intervals differ by venue and instrument (Binance adjusts WIF and SUI to 4 h and lists them in fundingInfo,
Bybit pays WIF every 4 h and ORDI every hour, Bitget SUI every 4 h and DOGE every 2 h, OKX WIF every 4 h,
Hyperliquid every hour), so a mart that forgot an interval is visibly off.
"""

from __future__ import annotations

import math

import duckdb
import pytest
from conftest import INTERVAL_END, SIM_NOW_MS, run_interval
from positioning import registry
from positioning.rows import FundingInterval, FundingRate, LongShortRatio
from positioning.sim.common import fmt
from positioning.venues import binance, bitget, bybit, okx

SYMBOLS = ["BTC", "ETH", "WIF", "SUI", "DOGE", "ORDI"]
HOUR_MS = 3_600_000


# ------------------------------------------------------------------------------------------------ parsers
def test_binance_taker_ratio_rows_name_no_symbol_so_the_request_does():
    # venues-more.md §3.5, the doc example (its trailing comma removed; timestamp as a string and as a number).
    payload = [
        {"buySellRatio": "1.5586", "buyVol": "387.3300", "sellVol": "248.5030", "timestamp": "1585614900000"},
        {"buySellRatio": "1.3104", "buyVol": "343.9290", "sellVol": "248.5030", "timestamp": 1583139900000},
    ]
    rows = binance.parse_taker_ratio(payload, {"symbol": "BTCUSDT", "period": "5m"})
    assert rows == [
        LongShortRatio("binance", "BTCUSDT", "taker_buy_sell", "5m", 1585614900000, 1.5586),
        # The doc's second row does not divide to its ratio (343.929 / 248.503 = 1.384): the ratio is as sent.
        LongShortRatio("binance", "BTCUSDT", "taker_buy_sell", "5m", 1583139900000, 1.3104),
    ]
    with pytest.raises(ValueError, match="symbol"):
        binance.parse_taker_ratio(payload, {"period": "5m"})


def test_okx_taker_volume_is_sell_then_buy_and_a_bucket_without_sells_has_no_ratio():
    # venues-more.md §4.1, the taker-volume doc example, plus a bucket with no sells.
    payload = {"code": "0", "msg": "", "data": [["1630425600000", "7596.2651", "7149.4855"],
                                                ["1630339200000", "5312.7876", "7002.7541"],
                                                ["1630252800000", "0", "12.5"]]}  # fmt: skip
    rows = okx.parse_taker_volume(payload, {"ccy": "btc", "period": "1D", "instType": "CONTRACTS"})
    assert [(r.key, r.metric, r.period, r.ts_ms) for r in rows] == [
        ("BTC", "taker_buy_sell", "1D", 1630339200000),
        ("BTC", "taker_buy_sell", "1D", 1630425600000),
    ]  # oldest first
    assert rows[0].ratio == pytest.approx(7002.7541 / 5312.7876)
    assert rows[1].ratio == pytest.approx(7149.4855 / 7596.2651)


def test_funding_intervals_come_from_each_venues_own_fields():
    # Binance §1.6 fundingInfo: only adjusted symbols are listed.
    info = [{"symbol": "WIFUSDT", "adjustedFundingRateCap": "0.02", "adjustedFundingRateFloor": "-0.02",
             "fundingIntervalHours": 4, "disclaimer": False}]  # fmt: skip
    assert binance.parse_funding_info(info) == [FundingInterval("binance", "WIFUSDT", 4.0)]
    assert binance.SPEC.funding_interval_hours == 8.0  # every symbol fundingInfo does not list
    # OKX §2.4 doc example: the interval is nextFundingTime - fundingTime.
    funding = {"code": "0", "msg": "", "data": [{
        "instId": "BTC-USDT-SWAP", "instType": "SWAP", "fundingRate": "0.0000792386885340",
        "fundingTime": "1743609600000", "nextFundingTime": "1743638400000", "ts": "1743588686291"}]}  # fmt: skip
    assert okx.parse_funding_rate(funding) == [
        FundingRate("okx", "BTC-USDT-SWAP", 1743588686291, 0.0000792386885340, 1743638400000),
        FundingInterval("okx", "BTC-USDT-SWAP", 8.0),
    ]
    # Bybit tickers: fundingIntervalHour (a string, "only supports whole hours").
    ticker = {"retCode": 0, "retMsg": "OK", "time": 1762220791908, "result": {"category": "linear", "list": [
        {"symbol": "WIFUSDT", "markPrice": "0.8", "openInterest": "10", "openInterestValue": "8",
         "fundingRate": "0.0001", "fundingIntervalHour": "4"}]}}  # fmt: skip
    assert [r for r in bybit.parse_tickers(ticker) if isinstance(r, FundingInterval)] == [
        FundingInterval("bybit", "WIFUSDT", 4.0)
    ]
    # Bitget §3.5 contracts: fundInterval hours; the plan's listing parser still gives instruments only.
    contract = {"symbol": "SUIUSDT", "baseCoin": "SUI", "quoteCoin": "USDT", "symbolType": "perpetual",
                "symbolStatus": "normal", "fundInterval": "4"}  # fmt: skip
    payload = {"code": "00000", "msg": "success", "requestTime": 1, "data": [contract]}
    assert bitget.PARSERS["contracts"](payload)[-1] == FundingInterval("bitget", "SUIUSDT", 4.0)
    assert all(r.__class__.__name__ == "Instrument" for r in bitget.LISTING.parse(payload))


# ------------------------------------------------------------------------------------------------ end to end
def query(path, sql: str) -> list[dict]:
    with duckdb.connect(str(path), read_only=True) as con:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_taker_flow_and_oi_weighted_funding_equal_the_simulators_market(sim, tmp_path):
    data = tmp_path / "data"
    summary = run_interval({"symbols": SYMBOLS, "lsPeriod": "1h"}, data, "manual__flow")
    assert summary["quality"]["published"] and not summary["quality"]["quarantined"], summary["quality"]
    state, warehouse = sim.state, data / "warehouse.duckdb"

    # Taker flow: the 1h bucket that ended at the interval end, per venue, as each venue serves it.
    bucket = int(INTERVAL_END.timestamp() * 1000) - HOUR_MS
    flow = {(r["symbol"], r["venue"]): r for r in query(warehouse, "SELECT * FROM marts.taker_flow")}
    for symbol in SYMBOLS:
        expected = {}
        if symbol in state.listed("binance"):
            buy, sell = state.taker_volumes("binance", symbol, "1h", bucket)
            expected["binance"] = float(fmt(buy / sell, 4))
        if symbol in state.listed("okx"):
            buy, sell = state.taker_volumes("okx", symbol, "1H", bucket)
            expected["okx"] = float(fmt(buy, 4)) / float(fmt(sell, 4))
        assert len(expected) == 2, symbol  # every symbol here is listed on both
        consensus = math.exp(sum(math.log(r) for r in expected.values()) / len(expected))
        for venue, ratio in expected.items():
            row = flow[(symbol, venue)]
            assert row["taker_buy_sell_ratio"] == pytest.approx(ratio, rel=1e-9), (symbol, venue)
            assert row["taker_buy_share"] == pytest.approx(ratio / (1 + ratio))
            assert row["consensus_taker_ratio"] == pytest.approx(consensus) and row["venues_with_taker"] == 2
    assert {venue for _, venue in flow} == {"binance", "okx"}  # no other venue publishes taker volume for free

    # Funding on an 8-hour scale, weighted by each venue's OI.
    funding = {r["symbol"]: r for r in query(warehouse, "SELECT * FROM marts.funding")}
    intervals = {
        (r["venue"], r["symbol"]): r["value"]
        for r in query(warehouse, "SELECT venue, symbol, value FROM core.fact_positioning "
                                  "WHERE metric = 'funding_interval_hours'")
    }  # fmt: skip
    adjusted = 0
    for symbol in SYMBOLS:
        row, weighted, oi_total = funding[symbol], 0.0, 0.0
        venues = [v for v in registry.names() if v != "strike" and symbol in state.listed(v)]
        for venue in venues:
            hours = state.funding_interval_hours(venue, symbol)
            adjusted += hours != 8
            assert intervals[(venue, symbol)] == hours, (venue, symbol)
            rate_8h = state.funding_rate_8h(venue, symbol, SIM_NOW_MS)
            assert row[f"{venue}_funding_8h"] == pytest.approx(rate_8h, rel=1e-9, abs=1e-15), (venue, symbol)
            oi_usd = state.open_interest(venue, symbol, SIM_NOW_MS)["usd"]
            weighted, oi_total = weighted + rate_8h * oi_usd, oi_total + oi_usd
        assert row["strike_funding_8h"] is None  # asymmetric long/short rates: not mapped
        assert row["venues_with_funding"] == len(venues)
        assert row["funding_oi_usd"] == pytest.approx(oi_total, rel=1e-6)
        assert row["oi_weighted_funding_8h"] == pytest.approx(weighted / oi_total, rel=1e-6)
        assert row["oi_weighted_funding_apr_pct"] == pytest.approx(weighted / oi_total * 3 * 365 * 100, rel=1e-6)
    assert adjusted >= 8  # Hyperliquid's hourly rates and the venues' adjusted symbols were all exercised


def test_a_past_interval_has_taker_flow_from_history_and_no_funding(sim, tmp_path):
    from datetime import timedelta

    end = INTERVAL_END - timedelta(days=3)
    data = tmp_path / "data"
    summary = run_interval({"symbols": ["BTC"], "lsPeriod": "1h"}, data, "manual__past_flow", end, ("binance", "okx"))
    assert summary["quality"]["published"]
    warehouse = data / "warehouse.duckdb"
    flow = query(warehouse, "SELECT venue, taker_buy_sell_ratio FROM marts.taker_flow ORDER BY venue")
    bucket = int(end.timestamp() * 1000) - HOUR_MS
    buy, sell = sim.state.taker_volumes("binance", "BTC", "1h", bucket)
    assert [r["venue"] for r in flow] == ["binance", "okx"]
    assert flow[0]["taker_buy_sell_ratio"] == pytest.approx(float(fmt(buy / sell, 4)))
    assert query(warehouse, "SELECT * FROM marts.funding") == []  # funding is current-only at every venue
