"""Tests of the venue simulator: wire shapes per venues.md, determinism, consistency, rate limits, faults."""

from __future__ import annotations

import itertools
import json
import threading
import time
from decimal import Decimal
from typing import ClassVar

import httpx
import pytest
from positioning.sim import RATE_LIMITS, Limit, SimState, VenueSimulator, venues
from positioning.sim.state import TOP50, UNLISTED, bucket_start, period_ms
from positioning.sim.venues import Instrument, Reply, Request, SimVenue

NOW = 1_767_225_600_000 + 123_456  # 2026-01-01 00:02:03.456 UTC, frozen
FIVE_MIN = 300_000


@pytest.fixture(scope="module")
def sim():
    """A shared simulator without rate limits for shape tests."""
    with VenueSimulator(seed=7, now_ms=NOW, enforce_rate_limits=False) as simulator:
        yield simulator


@pytest.fixture
def client(sim):
    sim.clear_faults()
    with httpx.Client(base_url=sim.base_url, timeout=5) as http:
        yield http
    sim.clear_faults()


@pytest.fixture
def limited():
    """A fresh simulator with rate limits enforced (counters are per simulator)."""
    with VenueSimulator(seed=7, now_ms=NOW) as simulator, httpx.Client(base_url=simulator.base_url) as http:
        yield simulator, http


def is_decimal_string(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        Decimal(value)
    except ArithmeticError:
        return False
    return True


# ---------------------------------------------------------------------------------------------- Binance
def test_binance_exchange_info_lists_perps_settling_and_delivery(client, sim):
    body = client.get("/fapi/v1/exchangeInfo").json()
    assert {"interval": "MINUTE", "intervalNum": 1, "limit": 2400, "rateLimitType": "REQUEST_WEIGHT"} in body[
        "rateLimits"
    ]
    by_symbol = {s["symbol"]: s for s in body["symbols"]}
    assert by_symbol["BTCUSDT"]["contractType"] == "PERPETUAL"
    assert by_symbol["BTCUSDT"]["deliveryDate"] == 4133404800000
    assert by_symbol["BTCUSDT_260327"]["contractType"] == "CURRENT_QUARTER"
    assert by_symbol["FTMUSDT"]["status"] == "SETTLING"
    for row in body["symbols"]:
        assert {"baseAsset", "quoteAsset", "marginAsset", "status", "contractType", "deliveryDate"} <= row.keys()
    tradable = {
        s["baseAsset"]: s["symbol"]
        for s in body["symbols"]
        if s["contractType"] == "PERPETUAL" and s["status"] == "TRADING" and s["quoteAsset"] == "USDT"
    }
    # PEPE, SHIB and BONK are listed in thousands (base asset 1000PEPE), as on the real venue; 1INCH is an asset.
    multiplied = {f"1000{base}": base for base in ("PEPE", "SHIB", "BONK")}
    assert {multiplied.get(base, base): symbol for base, symbol in tradable.items()} == sim.state.listed("binance")
    assert tradable["1000PEPE"] == "1000PEPEUSDT" and "PEPE" not in tradable and tradable["1INCH"] == "1INCHUSDT"
    quotes = {s["quoteAsset"] for s in body["symbols"]}
    assert {"USDT", "USDC", "BTC"} <= quotes and "1000PEPEUSDC" in by_symbol and len(body["symbols"]) > 250
    assert "MKR" not in tradable and "KAS" not in tradable


def test_binance_premium_index_all_and_one(client, sim):
    rows = client.get("/fapi/v1/premiumIndex").json()
    assert isinstance(rows, list)
    by_symbol = {r["symbol"]: r for r in rows}
    btc = by_symbol["BTCUSDT"]
    assert is_decimal_string(btc["markPrice"]) and is_decimal_string(btc["lastFundingRate"])
    assert isinstance(btc["nextFundingTime"], int) and btc["time"] == NOW
    assert float(btc["markPrice"]) == sim.state.mark_price("binance", "BTC", NOW)
    assert float(btc["lastFundingRate"]) == sim.state.funding_rate("binance", "BTC", NOW)
    for odd in ("BTCUSDT_260327", "FTMUSDT"):
        assert by_symbol[odd]["lastFundingRate"] == "" and by_symbol[odd]["nextFundingTime"] == 0
    one = client.get("/fapi/v1/premiumIndex", params={"symbol": "ETHUSDT"}).json()
    assert isinstance(one, dict) and one == by_symbol["ETHUSDT"]


def test_binance_open_interest_and_errors(client, sim):
    body = client.get("/fapi/v1/openInterest", params={"symbol": "BTCUSDT"}).json()
    assert body == {"openInterest": body["openInterest"], "symbol": "BTCUSDT", "time": NOW}
    assert float(body["openInterest"]) == sim.state.open_interest("binance", "BTC", NOW)["coins"]
    unknown = client.get("/fapi/v1/openInterest", params={"symbol": "MKRUSDT"})
    assert unknown.status_code == 400 and unknown.json() == {"code": -1121, "msg": "Invalid symbol."}
    missing = client.get("/fapi/v1/openInterest")
    assert missing.status_code == 400 and missing.json()["code"] == -1102


@pytest.mark.parametrize(
    "endpoint", ["topLongShortPositionRatio", "topLongShortAccountRatio", "globalLongShortAccountRatio"]
)
def test_binance_ratio_history_shape_and_values(client, sim, endpoint):
    rows = client.get(f"/futures/data/{endpoint}", params={"symbol": "SOLUSDT", "period": "5m"}).json()
    assert len(rows) == 30  # default limit
    stamps = [r["timestamp"] for r in rows]
    assert all(isinstance(ts, int) for ts in stamps) and stamps == sorted(stamps)
    assert stamps[-1] == bucket_start("5m", NOW) - FIVE_MIN  # newest fully ended bucket
    assert all(b - a == FIVE_MIN for a, b in itertools.pairwise(stamps))
    for row in rows:
        assert set(row) == {"symbol", "longShortRatio", "longAccount", "shortAccount", "timestamp"}
        long_share, short_share = Decimal(row["longAccount"]), Decimal(row["shortAccount"])
        assert long_share + short_share == 1
        assert float(row["longShortRatio"]) == pytest.approx(float(long_share / short_share), rel=1e-3)
        expected = sim.state.ratio("binance", endpoint, "SOL", "5m", row["timestamp"])
        assert float(row["longShortRatio"]) == expected["ratio"]
        assert float(row["longAccount"]) == expected["long_share"]


def test_binance_history_windows_and_limits(client, sim):
    params = {"symbol": "BTCUSDT", "period": "1h"}
    start = bucket_start("1h", NOW) - 10 * 3_600_000
    rows = client.get("/futures/data/openInterestHist", params={**params, "startTime": start, "limit": 3}).json()
    assert [r["timestamp"] for r in rows] == [start, start + 3_600_000, start + 7_200_000]
    row = rows[0]
    assert float(row["sumOpenInterest"]) == sim.state.binance_oi_hist("BTC", "1h", start)["coins"]
    assert Decimal(row["sumOpenInterestValue"]) == pytest.approx(
        Decimal(row["sumOpenInterest"]) * Decimal(str(sim.state.mark_price("binance", "BTC", start))),
        rel=Decimal("1e-9"),
    )
    end_rows = client.get("/futures/data/openInterestHist", params={**params, "endTime": start, "limit": 2}).json()
    assert [r["timestamp"] for r in end_rows] == [start - 3_600_000, start]
    assert len(client.get("/futures/data/openInterestHist", params={**params, "limit": 500}).json()) == 500
    too_many = client.get("/futures/data/openInterestHist", params={**params, "limit": 501})
    assert too_many.status_code == 400 and too_many.json()["code"] == -1130
    too_old = client.get("/futures/data/openInterestHist", params={**params, "startTime": NOW - 31 * 86_400_000})
    assert too_old.status_code == 400
    assert too_old.json() == {"code": -1130, "msg": "Data sent for parameter 'startTime' is not valid."}
    bad_period = client.get("/futures/data/openInterestHist", params={**params, "period": "1H"})
    assert bad_period.status_code == 400 and bad_period.json()["code"] == -1120


# ---------------------------------------------------------------------------------------------- OKX
def all_strings(rows: list[dict]) -> bool:
    return all(isinstance(value, str) for row in rows for value in row.values())


def test_okx_instruments_and_listing(client, sim):
    body = client.get("/api/v5/public/instruments", params={"instType": "SWAP"}).json()
    assert body["code"] == "0" and body["msg"] == ""
    rows = body["data"]
    assert all_strings(rows)
    by_id = {r["instId"]: r for r in rows}
    assert by_id["BTC-USDT-SWAP"]["ctVal"] == "0.01" and by_id["ETH-USDT-SWAP"]["ctVal"] == "0.1"
    assert by_id["SOL-USDT-SWAP"]["ctVal"] == "1"
    assert by_id["BTC-USD-SWAP"]["ctType"] == "inverse" and by_id["BTC-USD-SWAP"]["settleCcy"] == "BTC"
    assert by_id["BTC-USDC-SWAP"]["settleCcy"] == "USDC"
    assert by_id["FTM-USDT-SWAP"]["state"] == "suspend"
    live_usdt = {
        r["ctValCcy"]: r["instId"]
        for r in rows
        if r["settleCcy"] == "USDT" and r["ctType"] == "linear" and r["state"] == "live"
    }
    assert live_usdt == sim.state.listed("okx")
    assert {"TAO", "HYPE"} <= set(TOP50) - set(live_usdt)
    for r in rows:
        assert {"ctValCcy", "ctType", "settleCcy", "instFamily", "uly", "state", "listTime"} <= r.keys()


def test_okx_open_interest_consistency(client, sim):
    rows = client.get("/api/v5/public/open-interest", params={"instType": "SWAP"}).json()["data"]
    marks = {
        r["instId"]: Decimal(r["markPx"])
        for r in client.get("/api/v5/public/mark-price", params={"instType": "SWAP"}).json()["data"]
    }
    ct_vals = {
        r["instId"]: Decimal(r["ctVal"])
        for r in client.get("/api/v5/public/instruments", params={"instType": "SWAP"}).json()["data"]
    }
    assert all_strings(rows) and {r["instId"] for r in rows} == set(ct_vals)
    for row in rows:
        if row["instId"] == "BTC-USD-SWAP":
            continue
        oi, oi_ccy, oi_usd = Decimal(row["oi"]), Decimal(row["oiCcy"]), Decimal(row["oiUsd"])
        assert oi * ct_vals[row["instId"]] == oi_ccy
        assert oi_usd == pytest.approx(oi_ccy * marks[row["instId"]], rel=Decimal("1e-9"), abs=Decimal("0.0001"))
        assert row["ts"] == str(NOW)
    btc = next(r for r in rows if r["instId"] == "BTC-USDT-SWAP")
    expected = sim.state.open_interest("okx", "BTC", NOW)
    assert (float(btc["oi"]), float(btc["oiCcy"]), float(btc["oiUsd"])) == (
        expected["contracts"],
        expected["coins"],
        expected["usd"],
    )
    assert sim.state.contract_value("PEPE") >= 1000


def test_okx_funding_any_and_single(client, sim):
    every = client.get("/api/v5/public/funding-rate", params={"instId": "ANY"}).json()["data"]
    assert len(every) == len(sim.state.instruments("okx")) and all_strings(every)
    one = client.get("/api/v5/public/funding-rate", params={"instId": "ETH-USDT-SWAP"}).json()["data"]
    assert one == [r for r in every if r["instId"] == "ETH-USDT-SWAP"]
    assert float(one[0]["fundingRate"]) == sim.state.funding_rate("okx", "ETH", NOW)
    unknown = client.get("/api/v5/public/funding-rate", params={"instId": "TAO-USDT-SWAP"})
    assert unknown.status_code == 200
    assert unknown.json() == {
        "code": "51001",
        "msg": "Instrument ID, Instrument ID code, or Spread ID doesn't exist.",
        "data": [],
    }
    empty = client.get("/api/v5/public/funding-rate")
    assert empty.status_code == 400 and empty.json()["code"] == "50014"


def test_okx_rubik_periods_windows_and_order(client, sim):
    path = "/api/v5/rubik/stat/contracts/long-short-account-ratio"
    rows = client.get(path, params={"ccy": "BTC", "period": "5m"}).json()["data"]
    stamps = [int(r[0]) for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    assert stamps[0] == bucket_start("5m", NOW) - FIVE_MIN
    assert float(rows[0][1]) == sim.state.ratio("okx", "long-short-account-ratio", "BTC", "5m", stamps[0])["ratio"]
    for period, length, window in (("5m", FIVE_MIN, 2), ("1H", 3_600_000, 30), ("1D", 86_400_000, 180)):
        oldest = int(client.get(path, params={"ccy": "BTC", "period": period}).json()["data"][-1][0])
        assert oldest >= NOW - window * 86_400_000 > oldest - length  # older buckets silently dropped
    begin = stamps[0] - 3 * FIVE_MIN
    windowed = client.get(path, params={"ccy": "BTC", "begin": begin, "end": stamps[0] - FIVE_MIN}).json()
    assert [int(r[0]) for r in windowed["data"]] == [stamps[0] - FIVE_MIN, stamps[0] - 2 * FIVE_MIN, begin]
    wrong = client.get(path, params={"ccy": "BTC", "period": "1h"})
    assert wrong.status_code == 400
    assert wrong.json() == {"code": "51000", "msg": "Parameter period error", "data": []}
    volume = client.get(
        "/api/v5/rubik/stat/contracts/open-interest-volume", params={"ccy": "ETH", "period": "1D"}
    ).json()["data"]
    assert all(len(r) == 3 and all(isinstance(v, str) for v in r) for r in volume)
    expected = sim.state.okx_oi_volume("ETH", "1D", int(volume[0][0]))
    assert (float(volume[0][1]), float(volume[0][2])) == (expected["oi_usd"], expected["volume_usd"])


# ---------------------------------------------------------------------------------------------- Bitget
def test_bitget_contracts_tickers_open_interest(client, sim):
    contracts = client.get("/api/v2/mix/market/contracts", params={"productType": "USDT-FUTURES"}).json()
    assert contracts["code"] == "00000" and contracts["msg"] == "success"
    assert isinstance(contracts["requestTime"], int)
    normal = {
        r["baseCoin"]: r["symbol"]
        for r in contracts["data"]
        if r["symbolType"] == "perpetual" and r["symbolStatus"] == "normal"
    }
    assert normal == sim.state.listed("bitget")
    assert any(r["symbolStatus"] == "off" for r in contracts["data"])
    assert {"MKR", "ORDI"} <= set(TOP50) - set(normal)
    tickers = client.get("/api/v2/mix/market/tickers", params={"productType": "USDT-FUTURES"}).json()["data"]
    btc = next(r for r in tickers if r["symbol"] == "BTCUSDT")
    assert btc["deliveryStartTime"] is None and btc["deliveryTime"] is None
    for name in ("holdingAmount", "markPrice", "indexPrice", "fundingRate", "ts"):
        assert is_decimal_string(btc[name])
    assert float(btc["holdingAmount"]) == sim.state.open_interest("bitget", "BTC", NOW)["coins"]
    oi = client.get(
        "/api/v2/mix/market/open-interest", params={"symbol": "BTCUSDT", "productType": "USDT-FUTURES"}
    ).json()["data"]
    assert oi == {"openInterestList": [{"symbol": "BTCUSDT", "size": btc["holdingAmount"]}], "ts": str(NOW)}
    unknown = client.get("/api/v2/mix/market/open-interest", params={"symbol": "XUSDT", "productType": "USDT-FUTURES"})
    assert unknown.status_code == 400
    assert unknown.json() == {
        "code": "40034",
        "msg": "Parameter XUSDT does not exist",
        "requestTime": NOW,
        "data": None,
    }


@pytest.mark.parametrize(
    ("endpoint", "period", "fields"),
    [
        ("account-long-short", "1h", ("longAccountRatio", "shortAccountRatio", "longShortAccountRatio")),
        ("position-long-short", "5m", ("longPositionRatio", "shortPositionRatio", "longShortPositionRatio")),
        ("long-short", "1Dutc", ("longRatio", "shortRatio", "longShortRatio")),
    ],
)
def test_bitget_long_short_rows(client, sim, endpoint, period, fields):
    body = client.get(f"/api/v2/mix/market/{endpoint}", params={"symbol": "ETHUSDT", "period": period}).json()
    rows = body["data"]
    assert len(rows) == 30 and all(set(r) == {*fields, "ts"} for r in rows) and all_strings(rows)
    long_name, short_name, ratio_name = fields
    newest = rows[-1]
    assert Decimal(newest[long_name]) + Decimal(newest[short_name]) == 1
    expected = sim.state.ratio("bitget", endpoint, "ETH", period, int(newest["ts"]))
    assert float(newest[ratio_name]) == expected["ratio"]
    assert int(newest["ts"]) + period_ms(period) <= NOW < int(newest["ts"]) + 2 * period_ms(period)


def test_bitget_long_short_rejects_1d_but_ratio_endpoints_accept_it(client):
    bad = client.get("/api/v2/mix/market/long-short", params={"symbol": "BTCUSDT", "period": "1d"})
    assert bad.status_code == 400 and bad.json()["code"] == "40808"
    good = client.get("/api/v2/mix/market/account-long-short", params={"symbol": "BTCUSDT", "period": "1d"})
    assert good.status_code == 200


# ---------------------------------------------------------------------------------------------- Strike
def test_strike_markets_and_market_shapes(client, sim):
    markets = client.get("/markets").json()["markets"]
    assert [m["symbol"] for m in markets] == ["BTC-USD", "ETH-USD", "SOL-USD", "BNB-USD", "XRP-USD", "HYPE-USD"]
    for market in markets:
        long_oi, short_oi, total = (Decimal(market[k]) for k in ("longOi", "shortOi", "totalOi"))
        assert long_oi + short_oi == total
        assert float(market["skew"]) == pytest.approx(float((long_oi - short_oi) / total), abs=6e-5)
    flat = client.get("/market/BTC-USD").json()
    assert flat["total_oi"] == markets[0]["totalOi"] and "volumeUsd24h" in flat
    assert Decimal(flat["long_funding_rate_annual"]) == Decimal(flat["long_funding_rate_hourly"]) * 8760
    expected = sim.state.open_interest("strike", "BTC", NOW)
    assert float(flat["long_oi"]) == expected["long_usd"] and float(flat["total_oi"]) == expected["usd"]
    missing = client.get("/market/ABC-USD")
    assert missing.status_code == 404 and missing.json() == {"error": 404, "message": "Market not found: ABC-USD"}


def test_strike_constructor_shapes():
    with (
        VenueSimulator(now_ms=NOW, strike_markets_shape="symbols_only", strike_market_shape="wrapped") as other,
        httpx.Client(base_url=other.base_url) as http,
    ):
        markets = http.get("/markets").json()
        assert markets == {"markets": [{"symbol": s} for s in other.state.listed("strike").values()], "count": 6}
        wrapped = http.get("/market/ETH-USD").json()
        assert wrapped["success"] is True
        assert set(wrapped["data"]["open_interest"]) == {"long_oi", "short_oi", "total_oi", "skew"}


# ---------------------------------------------------------------------------------------------- state
def test_listing_coverage_varies():
    state = SimState(7)
    assert len(state.symbols) >= 60 and set(TOP50) <= set(state.symbols)
    for venue, missing in UNLISTED.items():
        listed = state.listed(venue)
        assert not missing & set(listed)
        assert 2 <= len(set(state.symbols) - set(listed)) <= 7
    assert len(state.listed("strike")) == 6
    unlisted_top50 = {v: set(TOP50) - set(state.listed(v)) for v in ("binance", "okx", "bitget")}
    assert all(unlisted_top50.values()) and len(set.union(*unlisted_top50.values())) >= 4


def test_ratios_cover_skew_labels_and_stay_in_range():
    state = SimState(7)
    averages = []
    for symbol in state.listed("binance"):
        if symbol not in state.listed("okx"):
            continue
        values = [state.ratio("binance", m, symbol, "5m", NOW // FIVE_MIN * FIVE_MIN)["ratio"]
                  for m in ("topLongShortPositionRatio", "globalLongShortAccountRatio")]  # fmt: skip
        values.append(state.ratio("okx", "long-short-account-ratio", symbol, "5m", NOW // FIVE_MIN * FIVE_MIN)["ratio"])
        assert all(0.29 <= v <= 4.01 for v in values)
        averages.append(sum(values) / 3)
    assert any(a >= 2.5 for a in averages) and any(a <= 0.4 for a in averages)
    assert any(0.8 < a < 1.25 for a in averages)


def test_state_is_a_pure_function_of_seed():
    one, two, other = SimState(7), SimState(7), SimState(8)
    args = ("binance", "topLongShortAccountRatio", "BTC", "1h", 1_767_222_000_000)
    assert one.ratio(*args) == two.ratio(*args) != other.ratio(*args)
    assert one.mark_price("okx", "ETH", NOW) == two.mark_price("okx", "ETH", NOW)
    assert abs(one.mark_price("okx", "ETH", NOW) / one.index_price("ETH", NOW) - 1) <= 0.0005
    assert 50_000 < one.index_price("BTC", NOW) < 150_000 and one.index_price("PEPE", NOW) < 0.0001


def test_same_request_same_body_across_simulators(client):
    paths = [
        "/futures/data/globalLongShortAccountRatio?symbol=BTCUSDT&period=15m&limit=50",
        "/api/v5/public/open-interest?instType=SWAP",
        "/api/v2/mix/market/tickers?productType=USDT-FUTURES",
        "/markets",
    ]
    first = [client.get(p).content for p in paths]
    assert first == [client.get(p).content for p in paths]
    with VenueSimulator(seed=7, now_ms=NOW) as twin, httpx.Client(base_url=twin.base_url) as http:
        assert first == [http.get(p).content for p in paths]
    with VenueSimulator(seed=8, now_ms=NOW) as other, httpx.Client(base_url=other.base_url) as http:
        assert first[0] != http.get(paths[0]).content


def test_clock_moves_current_values(sim, client):
    before = client.get("/fapi/v1/openInterest", params={"symbol": "BTCUSDT"}).json()
    sim.set_now(NOW + 3_600_000)
    try:
        after = client.get("/fapi/v1/openInterest", params={"symbol": "BTCUSDT"}).json()
    finally:
        sim.set_now(NOW)
    assert after["time"] == NOW + 3_600_000 and after["openInterest"] != before["openInterest"]
    assert sim.now_ms() == NOW


# ---------------------------------------------------------------------------------------------- rate limits
def test_okx_rubik_bucket_is_five_per_two_seconds(limited):
    sim, http = limited
    path = "/api/v5/rubik/stat/contracts/long-short-account-ratio"
    statuses = [http.get(path, params={"ccy": "BTC", "period": "1D"}).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    assert http.get(path, params={"ccy": "BTC", "period": "1D"}).json() == {"msg": "Too Many Requests", "code": "50011"}
    # the other ccy endpoint has its own bucket
    assert http.get("/api/v5/rubik/stat/contracts/open-interest-volume", params={"ccy": "BTC"}).status_code == 200
    assert [r["status"] for r in sim.requests if r["endpoint"] == "long-short-account-ratio"][-2:] == [429, 429]


def test_bitget_long_short_one_per_second_independent(limited):
    _sim, http = limited
    params = {"symbol": "BTCUSDT", "period": "5m"}
    assert http.get("/api/v2/mix/market/account-long-short", params=params).status_code == 200
    second = http.get("/api/v2/mix/market/account-long-short", params=params)
    assert second.status_code == 429
    assert second.json() == {"code": "429", "msg": "Too Many Requests", "requestTime": NOW, "data": None}
    assert http.get("/api/v2/mix/market/position-long-short", params=params).status_code == 200


def test_binance_429_then_ban_418():
    limits = {"binance:weight": Limit(3, 60, "test: tiny weight budget")}
    with (
        VenueSimulator(now_ms=NOW, rate_limits=limits, ban_seconds=90) as sim,
        httpx.Client(base_url=sim.base_url) as http,
    ):
        statuses = [http.get("/fapi/v1/openInterest", params={"symbol": "BTCUSDT"}) for _ in range(10)]
        codes = [r.status_code for r in statuses]
        assert codes[:3] == [200, 200, 200] and codes[3:8] == [429] * 5 and codes[8:] == [418, 418]
        too_many = statuses[3]
        assert too_many.json()["code"] == -1003 and "current limit of IP(127.0.0.1) is 2400" in too_many.json()["msg"]
        assert 1 <= int(too_many.headers["Retry-After"]) <= 60
        banned = statuses[8]
        assert banned.json()["msg"].startswith("Way too many requests; IP(127.0.0.1) banned until ")
        assert int(banned.headers["Retry-After"]) == 90
        assert http.get("/fapi/v1/exchangeInfo").status_code == 418  # a ban covers every endpoint
        sim.reset_rate_limits()
        assert http.get("/fapi/v1/exchangeInfo").status_code == 200
    assert RATE_LIMITS["binance:weight"].capacity == 2400


def test_premium_index_without_symbol_weighs_ten(limited):
    _sim, http = limited
    http.get("/fapi/v1/premiumIndex")
    response = http.get("/fapi/v1/premiumIndex", params={"symbol": "BTCUSDT"})
    assert response.headers["x-mbx-used-weight-1m"] == "11"


# ---------------------------------------------------------------------------------------------- faults
def test_fault_status_defaults_and_times(client, sim):
    sim.add_fault("binance", kind="status", status=451, times=2)
    for _ in range(2):
        blocked = client.get("/fapi/v1/exchangeInfo")
        assert blocked.status_code == 451 and blocked.json()["code"] == 0
        assert "restricted location" in blocked.json()["msg"]
    assert client.get("/fapi/v1/exchangeInfo").status_code == 200  # expired after 2
    sim.add_fault("okx", "open-interest", kind="status", status=429, times=1)
    limited = client.get("/api/v5/public/open-interest", params={"instType": "SWAP"})
    assert limited.status_code == 429 and limited.json()["code"] == "50011"
    assert limited.headers["retry-after"] == "1"
    sim.add_fault("bitget", kind="status", status=503, body={"custom": True}, retry_after=None)
    custom = client.get("/api/v2/mix/market/tickers", params={"productType": "USDT-FUTURES"})
    assert custom.status_code == 503 and custom.json() == {"custom": True} and "retry-after" not in custom.headers


def test_fault_symbol_scoping(client, sim):
    sim.add_fault("binance", "openInterest", kind="status", status=500, symbol="ETH")
    assert client.get("/fapi/v1/openInterest", params={"symbol": "ETHUSDT"}).status_code == 500
    assert client.get("/fapi/v1/openInterest", params={"symbol": "BTCUSDT"}).status_code == 200


def test_fault_latency_and_timeout(client, sim):
    sim.add_fault("strike", "markets", kind="latency", seconds=0.3, times=1)
    started = time.monotonic()
    assert client.get("/markets").status_code == 200
    assert time.monotonic() - started >= 0.3
    sim.add_fault("strike", "market", kind="timeout", seconds=2, times=1)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/market/BTC-USD", timeout=0.3)


def test_fault_connection_reset(client, sim):
    sim.add_fault("okx", "mark-price", kind="connection_reset", times=1)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
        client.get("/api/v5/public/mark-price", params={"instType": "SWAP"})
    assert client.get("/api/v5/public/mark-price", params={"instType": "SWAP"}).status_code == 200
    assert sim.requests[-2]["status"] == 0


def test_fault_malformed_json_and_html(client, sim):
    sim.add_fault("bitget", "contracts", kind="malformed_json", times=1)
    broken = client.get("/api/v2/mix/market/contracts", params={"productType": "USDT-FUTURES"})
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.text)
    sim.add_fault("binance", "premiumIndex", kind="html_error", times=1)
    page = client.get("/fapi/v1/premiumIndex")
    assert page.status_code == 502 and page.headers["content-type"].startswith("text/html")
    assert "<html>" in page.text


def test_fault_missing_and_renamed_fields(client, sim):
    sim.add_fault("okx", "open-interest", kind="missing_field", field="oiUsd", times=1)
    rows = client.get("/api/v5/public/open-interest", params={"instType": "SWAP"}).json()["data"]
    assert rows and all("oiUsd" not in r for r in rows)
    sim.add_fault("binance", "topLongShortPositionRatio", kind="rename_field", field="longAccount",
                  to="longPosition", times=1)  # fmt: skip
    rows = client.get("/futures/data/topLongShortPositionRatio", params={"symbol": "BTCUSDT", "period": "5m"}).json()
    assert all("longPosition" in r and "longAccount" not in r for r in rows)
    sim.add_fault("bitget", "open-interest", kind="missing_field", field="size", times=1)
    body = client.get("/api/v2/mix/market/open-interest", params={"symbol": "BTCUSDT", "productType": "USDT-FUTURES"})
    assert body.json()["data"]["openInterestList"] == [{"symbol": "BTCUSDT"}]


def test_fault_empty_data_per_envelope(client, sim):
    for venue in ("binance", "okx", "bitget", "strike"):
        sim.add_fault(venue, kind="empty_data", times=1)
    assert client.get("/fapi/v1/premiumIndex").json() == []
    assert client.get("/api/v5/public/instruments", params={"instType": "SWAP"}).json() == {
        "code": "0",
        "msg": "",
        "data": [],
    }
    bitget = client.get("/api/v2/mix/market/tickers", params={"productType": "USDT-FUTURES"}).json()
    assert bitget["code"] == "00000" and bitget["data"] == []
    assert client.get("/markets").json() == {"markets": []}


def test_fault_error_envelope(client, sim):
    sim.add_fault("okx", "funding-rate", kind="error_envelope", code="50011", times=1)
    body = client.get("/api/v5/public/funding-rate", params={"instId": "ANY"})
    assert body.status_code == 200 and body.json()["code"] == "50011" and body.json()["data"] == []
    sim.add_fault("bitget", "tickers", kind="error_envelope", code="40808", msg="Parameter verification exception")
    body = client.get("/api/v2/mix/market/tickers", params={"productType": "USDT-FUTURES"})
    assert body.status_code == 200
    assert body.json() == {
        "code": "40808",
        "msg": "Parameter verification exception",
        "requestTime": NOW,
        "data": None,
    }


def test_fault_override_rows_by_field_symbol_and_index(client, sim):
    sim.add_fault("okx", "open-interest", kind="override", symbol="ETH", field="oi", value="-5", times=1)
    rows = client.get("/api/v5/public/open-interest", params={"instType": "SWAP"}).json()["data"]
    assert [r["instId"] for r in rows if r["oi"] == "-5"] == ["ETH-USDT-SWAP"]
    sim.add_fault("okx", "long-short-account-ratio", kind="override", index=1, value="0", times=1)
    rows = client.get("/api/v5/rubik/stat/contracts/long-short-account-ratio", params={"ccy": "BTC"}).json()["data"]
    assert {r[1] for r in rows} == {"0"}
    sim.add_fault("strike", "market", kind="override", field="total_oi", value="NaN", times=1)
    assert client.get("/market/SOL-USD").json()["total_oi"] == "NaN"


def test_fault_duplicate_rows(client, sim):
    plain = client.get("/futures/data/openInterestHist", params={"symbol": "BTCUSDT", "period": "5m"}).json()
    sim.add_fault("binance", "openInterestHist", kind="duplicate_rows", times=1)
    doubled = client.get("/futures/data/openInterestHist", params={"symbol": "BTCUSDT", "period": "5m"}).json()
    assert doubled == plain + plain


def test_fault_strike_shape(client, sim):
    sim.add_fault("strike", "market", kind="strike_shape", shape="camel", times=1)
    camel = client.get("/market/XRP-USD").json()
    assert {"longOi", "shortOi", "totalOi"} <= camel.keys()
    sim.add_fault("strike", kind="strike_shape", shape="symbols_only", times=1)
    assert client.get("/markets").json()["count"] == 6
    assert "long_oi" in client.get("/market/XRP-USD").json()  # expired: back to flat


def test_add_fault_validates(sim):
    with pytest.raises(ValueError):
        sim.add_fault("binance", kind="explode")
    with pytest.raises(ValueError):
        sim.add_fault("okx", "no-such-endpoint", kind="empty_data")
    with pytest.raises(ValueError):
        sim.add_fault("bitget", kind="status")


# ---------------------------------------------------------------------------------------------- log, control
def test_request_log_records_requests(client, sim):
    sim.clear_requests()
    client.get("/api/v2/mix/market/account-long-short", params={"symbol": "BTCUSDT", "period": "5m"})
    client.get("/fapi/v1/openInterest", params={"symbol": "NOPEUSDT"})
    log = sim.requests
    assert [(r["venue"], r["endpoint"], r["status"]) for r in log] == [
        ("bitget", "account-long-short", 200),
        ("binance", "openInterest", 400),
    ]
    assert log[0]["params"] == {"symbol": "BTCUSDT", "period": "5m"}
    assert log[0]["path"] == "/api/v2/mix/market/account-long-short" and log[0]["client"] == "127.0.0.1"
    assert log[0]["ts"] <= log[1]["ts"]
    log[0]["params"]["symbol"] = "mutated"
    assert sim.requests[0]["params"]["symbol"] == "BTCUSDT"


def test_control_api_over_http(client, sim):
    assert client.get("/__sim/health").json()["ok"] is True
    created = client.post("/__sim/faults", json={"venue": "strike", "endpoint": "markets", "kind": "status",
                                                 "status": 503, "times": 1})  # fmt: skip
    assert created.status_code == 200 and isinstance(created.json()["id"], int)
    assert client.get("/__sim/faults").json()["faults"][0]["kind"] == "status"
    assert client.get("/markets").status_code == 503
    client.post("/__sim/faults", json={"venue": "strike", "kind": "empty_data"})
    assert client.delete("/__sim/faults").status_code == 200
    assert client.get("/markets").json()["markets"]
    assert client.post("/__sim/faults", json={"venue": "nowhere", "kind": "status"}).status_code == 400
    client.delete("/__sim/requests")
    client.get("/markets")
    logged = client.get("/__sim/requests").json()["requests"]
    assert [r["endpoint"] for r in logged] == ["markets"]
    assert client.get("/__sim/listed", params={"venue": "strike"}).json()["strike"]["BTC"] == "BTC-USD"


def test_stop_is_prompt_with_pending_timeout():
    simulator = VenueSimulator(now_ms=NOW).start()
    simulator.add_fault("binance", kind="timeout", seconds=30)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.get(f"{simulator.base_url}/fapi/v1/exchangeInfo", timeout=10)
        except httpx.HTTPError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.2)
    started = time.monotonic()
    simulator.stop()
    assert time.monotonic() - started < 2
    caller.join(timeout=5)
    assert not caller.is_alive() and errors  # the client saw the connection close, not a 30 s wait


def test_global_latency(sim, client):
    sim.set_latency(0.2)
    try:
        started = time.monotonic()
        client.get("/markets")
        assert time.monotonic() - started >= 0.2
    finally:
        sim.set_latency(0)


# ---------------------------------------------------------------------------------------------- registry
class FifthVenue(SimVenue):
    """A test-only venue: a listing and a markets endpoint under its own prefix, BTC and ETH only."""

    name = "fifth"
    routes: ClassVar[dict[str, str]] = {"/fifth/api/listing": "listing", "/fifth/api/markets": "markets"}
    limits: ClassVar[dict[str, Limit]] = {"markets": Limit(2, 1, "test: two per second")}

    def instruments(self, state: SimState) -> list[Instrument]:
        return [Instrument(self.name, f"{base}-PERP", base) for base in ("BTC", "ETH")]

    def do_listing(self, request: Request, state: SimState) -> Reply:
        return Reply(200, {"data": [i.instrument_id for i in state.instruments(self.name)]})

    def do_markets(self, request: Request, state: SimState) -> Reply:
        now = request.now_ms
        rows = [{"symbol": i.instrument_id,
                 "openInterest": state.open_interest_strings(self.name, i.instrument_id, now)["coins"],
                 "markPrice": state.mark_price_string(self.name, i.instrument_id, now),
                 "fundingRate": state.funding_rate_string(self.name, i.instrument_id, now)}
                for i in state.instruments(self.name)]  # fmt: skip
        return Reply(200, {"data": rows})


def test_a_test_venue_registers_and_is_served_priced_limited_and_faulted():
    venues.register(FifthVenue())
    try:
        with pytest.raises(ValueError):
            venues.register(FifthVenue())  # one venue per name
        with VenueSimulator(seed=7, now_ms=NOW) as sim, httpx.Client(base_url=sim.base_url) as http:
            assert http.get("/fifth/api/listing").json() == {"data": ["BTC-PERP", "ETH-PERP"]}
            rows = {row["symbol"]: row for row in http.get("/fifth/api/markets").json()["data"]}
            state = sim.state
            for base in ("BTC", "ETH"):
                row, oi = rows[f"{base}-PERP"], state.open_interest("fifth", base, NOW)
                assert float(row["openInterest"]) == oi["coins"]
                assert float(row["markPrice"]) == state.mark_price("fifth", base, NOW)
                assert oi["usd"] == oi["coins"] * state.mark_price("fifth", base, NOW)
                assert float(row["fundingRate"]) == state.funding_rate("fifth", base, NOW)
                assert 0 < oi["coins"] < state.open_interest("binance", base, NOW)["coins"]  # default scale < 1.0
            assert SimState(7).open_interest("fifth", "BTC", NOW) == state.open_interest("fifth", "BTC", NOW)
            ratio = state.ratio("fifth", "long-short", "ETH", "1h", bucket_start("1h", NOW))
            assert 0.29 <= ratio["ratio"] <= 4.01 and ratio["long_share"] + ratio["short_share"] == pytest.approx(1)
            assert state.listed("fifth") == {"BTC": "BTC-PERP", "ETH": "ETH-PERP"}
            assert http.get("/__sim/listed", params={"venue": "fifth"}).json() == {"fifth": state.listed("fifth")}

            sim.reset_rate_limits()  # its own limit: 2 markets requests per second
            statuses = [http.get("/fifth/api/markets").status_code for _ in range(3)]
            assert statuses == [200, 200, 429] and http.get("/fifth/api/listing").status_code == 200
            sim.add_fault("fifth", "markets", kind="status", status=503, times=1)
            sim.reset_rate_limits()
            failed = http.get("/fifth/api/markets")
            assert failed.status_code == 503 and failed.json() == {"error": 503, "message": "Service Unavailable"}
            assert [r["venue"] for r in sim.requests] == ["fifth"] * len(sim.requests)
            with pytest.raises(ValueError):
                sim.add_fault("fifth", "no-such-endpoint")
            with pytest.raises(ValueError):
                sim.add_fault("nowhere", kind="status", status=500)
            with pytest.raises(ValueError):
                sim.add_fault("fifth", kind="strike_shape", shape="flat")  # another venue's fault kind
    finally:
        venues.unregister("fifth")
    assert venues.names() == venues.VENUES == ("binance", "okx", "bitget", "strike", "bybit", "hyperliquid")
    with VenueSimulator(now_ms=NOW) as sim:
        assert httpx.get(f"{sim.base_url}/fifth/api/listing").status_code == 404
        with pytest.raises(ValueError):
            sim.add_fault("fifth")
