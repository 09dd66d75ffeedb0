"""Bybit v5 and Hyperliquid (issue 16): parsers against the payloads of venues-more.md §1 and §2, the adapters on
the wire against the simulator (limits, errors, paging, the POST body), and a run whose snapshot carries both."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import duckdb
import httpx
import pytest
from conftest import INTERVAL_END, SIM_NOW_MS, run_interval
from positioning import registry
from positioning.ingest.extract import extract_venue
from positioning.ingest.http import RetryPolicy, classify_response
from positioning.rows import FundingInterval, Instrument, LongShortRatio, MarkPrice, OpenInterest, ParseError
from positioning.sim import Limit, VenueSimulator
from positioning.venues import bybit, hyperliquid
from positioning.venues.base import ExtractRequest

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.02, max_delay=0.1, seed=1)
RECEIVED = {"_received_at_ms": 1_780_000_000_000}

# ---------------------------------------------------------------------------------- Bybit payloads (§1)

INSTRUMENTS_DOC = {
    "retCode": 0, "retMsg": "OK",
    "result": {"category": "linear", "list": [
        {"symbol": "BTCUSDT", "symbolId": 5, "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": "BTC",
         "quoteCoin": "USDT", "launchTime": "1585526400000", "deliveryTime": "0", "deliveryFeeRate": "",
         "priceScale": "2", "unifiedMarginTrade": True, "fundingInterval": 480, "settleCoin": "USDT",
         "isPreListing": False, "preListingInfo": None, "symbolType": ""},
        {"symbol": "1000PEPEUSDT", "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": "1000PEPE",
         "quoteCoin": "USDT", "symbolType": ""},
        {"symbol": "SHIB1000USDT", "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": "SHIB1000",
         "quoteCoin": "USDT", "symbolType": ""},
        {"symbol": "1INCHUSDT", "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": "1INCH",
         "quoteCoin": "USDT", "symbolType": ""},
        {"symbol": "BIOUSDT", "contractType": "LinearPerpetual", "status": "PreLaunch", "baseCoin": "BIO",
         "quoteCoin": "USDT", "isPreListing": True, "symbolType": ""},
        {"symbol": "BTCPERP", "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": "BTC",
         "quoteCoin": "USDC", "symbolType": ""},
        {"symbol": "BTCUSDT-26DEC26", "contractType": "LinearFutures", "status": "Trading", "baseCoin": "BTC",
         "quoteCoin": "USDT", "symbolType": ""},
        {"symbol": "TSLAUSDT", "contractType": "LinearPerpetual", "status": "Trading", "baseCoin": "TSLA",
         "quoteCoin": "USDT", "symbolType": "stock"},
    ], "nextPageCursor": "first%3DBIOUSDT%26last%3DBIOUSDT"},
    "retExtInfo": {}, "time": 1735809771618,
}  # fmt: skip
# §1.2 observed linear ticker (2025-11-04, before the single-side fields) and the same with them (2026-06-11 on).
TICKER_BOTH_SIDES_ONLY = {"symbol": "BTCUSDT", "lastPrice": "107089.20", "indexPrice": "107135.27",
    "markPrice": "107084.00", "openInterest": "50923.331", "openInterestValue": "5453073976.80",
    "fundingRate": "0.00001938", "nextFundingTime": "1762243200000", "fundingIntervalHour": "8"}  # fmt: skip
TICKERS_OBSERVED = {"retCode": 0, "retMsg": "OK", "result": {"category": "linear", "list": [
    TICKER_BOTH_SIDES_ONLY,
    {**TICKER_BOTH_SIDES_ONLY, "symbol": "ETHUSDT", "openInterestValue": "4880913901.90",
     "singleOpenInterest": "25461.665", "singleOpenInterestValue": "2440456993.40"},
    {**TICKER_BOTH_SIDES_ONLY, "symbol": "BTCUSDT-26DEC26", "fundingRate": "", "nextFundingTime": ""},
]}, "retExtInfo": {}, "time": 1762220791908}  # fmt: skip
ACCOUNT_RATIO_DOC = {"retCode": 0, "retMsg": "OK", "result": {"list": [
    {"symbol": "BTCUSDT", "buyRatio": "0.49", "sellRatio": "0.51", "timestamp": "1696262400000"},
    {"symbol": "BTCUSDT", "buyRatio": "0.4927", "sellRatio": "0.5073", "timestamp": "1696258800000"},
], "nextPageCursor": "lastid%3D0%26lasttime%3D1696258800"}, "retExtInfo": {}, "time": 1731567491688}  # fmt: skip
OPEN_INTEREST_DOC = {"retCode": 0, "retMsg": "OK", "result": {"symbol": "BTCUSDT", "category": "linear", "list": [
    {"openInterest": "54656.19300000", "singleOpenInterest": "27328.097", "timestamp": "1787248800000"},
    {"openInterest": "63910691.00000000", "timestamp": "1787245200000"},  # before 2026-06-11: no single side
], "nextPageCursor": "lastid%3D19408935%26lasttime%3D1780617600"}, "retExtInfo": {}, "time": 1780994051392}  # fmt: skip


def test_bybit_listing_keeps_usdt_perpetuals_with_their_multipliers_and_follows_the_cursor():
    rows = {row.instrument: row for row in bybit.parse_instruments_info(INSTRUMENTS_DOC)}
    assert set(rows) == {"BTCUSDT", "1000PEPEUSDT", "SHIB1000USDT", "1INCHUSDT", "BIOUSDT"}  # no USDC/futures/stock
    assert (rows["1000PEPEUSDT"].symbol, rows["1000PEPEUSDT"].multiplier) == ("PEPE", 1000.0)
    assert (rows["SHIB1000USDT"].symbol, rows["SHIB1000USDT"].multiplier) == ("SHIB", 1000.0)  # suffix form
    assert (rows["1INCHUSDT"].symbol, rows["1INCHUSDT"].multiplier) == ("1INCH", 1.0)  # a digit is no multiplier
    assert not rows["BIOUSDT"].tradable and rows["BIOUSDT"].status == "PreLaunch"
    # The cursor arrives percent-encoded; it is decoded once so the client's own encoding restores it.
    params = bybit.next_listing_page(INSTRUMENTS_DOC, {"category": "linear", "limit": 1000})
    assert params == {"category": "linear", "limit": 1000, "cursor": "first=BIOUSDT&last=BIOUSDT"}
    last_page = {**INSTRUMENTS_DOC, "result": {**INSTRUMENTS_DOC["result"], "nextPageCursor": ""}}
    assert bybit.next_listing_page(last_page, {}) is None


def test_bybit_tickers_store_one_side_of_the_open_interest():
    rows = bybit.parse_tickers(TICKERS_OBSERVED)
    oi = {row.instrument: row for row in rows if isinstance(row, OpenInterest)}
    marks = {row.instrument: row for row in rows if isinstance(row, MarkPrice)}
    # Without single-side fields: half of the both-sides figures.
    assert oi["BTCUSDT"].coins == pytest.approx(50923.331 / 2) and oi["BTCUSDT"].usd == pytest.approx(5453073976.80 / 2)
    # With them: the single side as sent (2 440 456 993.40 = 4 880 913 901.90 / 2 to 0.00002 %).
    assert oi["ETHUSDT"].usd == 2440456993.40 and oi["ETHUSDT"].coins == 25461.665
    assert all(row.ts_ms == 1762220791908 for row in [*oi.values(), *marks.values()])  # the envelope's time
    intervals = {row.instrument: row.hours for row in rows if isinstance(row, FundingInterval)}
    assert intervals["BTCUSDT"] == 8.0  # fundingIntervalHour "8": the rate is per 8 hours
    assert marks["BTCUSDT"].mark_price == 107084.0 and marks["BTCUSDT"].funding_rate == 0.00001938
    assert marks["BTCUSDT-26DEC26"].funding_rate is None  # "" on dated futures


def test_bybit_account_ratio_is_buy_over_sell_oldest_first_with_string_timestamps():
    rows = bybit.parse_account_ratio(ACCOUNT_RATIO_DOC, {"period": "1h", "symbol": "BTCUSDT"})
    assert [row.ts_ms for row in rows] == [1696258800000, 1696262400000]
    assert rows[1] == LongShortRatio("bybit", "BTCUSDT", "ls_account", "1h", 1696262400000, 0.49 / 0.51, 0.49, 0.51)


def test_bybit_open_interest_history_is_one_side_in_coins():
    rows = bybit.parse_open_interest(OPEN_INTEREST_DOC, {"symbol": "BTCUSDT", "intervalTime": "1h"})
    assert [(row.ts_ms, row.coins, row.usd) for row in rows] == [
        (1787245200000, 63910691.0 / 2, None),
        (1787248800000, 27328.097, None),
    ]
    assert all(row.key == "BTCUSDT" and row.period == "1h" for row in rows)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (
            {
                "retCode": 10001,
                "retMsg": "params error: symbol invalid",
                "result": {"category": "", "list": []},
                "retExtInfo": {},
                "time": 1717486429851,
            },
            "retCode",
        ),
        (
            {
                "retCode": 0,
                "retMsg": "OK",
                "result": {"list": [{"symbol": "BTCUSDT", "sellRatio": "0.5", "timestamp": "1"}]},
                "time": 1,
            },
            "buyRatio",
        ),
        ({"retCode": 0, "retMsg": "OK", "result": {"list": "nope"}, "time": 1}, "list"),
    ],
)
def test_bybit_parse_errors_name_venue_endpoint_and_field(payload, field):
    with pytest.raises(ParseError) as raised:
        bybit.parse_account_ratio(payload, {"period": "1h"})
    assert (raised.value.venue, raised.value.endpoint, raised.value.field) == ("bybit", "account-ratio", field)


@pytest.mark.parametrize(
    ("code", "retryable", "rate_limited"),
    [(10006, True, True), (10016, True, False), (10000, True, False), (10001, False, False), (10029, False, False),
     ("10006", True, True)],  # ccxt's fixtures stringify retCode: accepted too
)  # fmt: skip
def test_bybit_envelope_codes_are_classified(code, retryable, rate_limited):
    error = bybit.envelope_error({"retCode": code, "retMsg": "x", "result": {}, "retExtInfo": {}, "time": 1})
    assert (error.retryable, error.rate_limited) == (retryable, rate_limited)
    assert bybit.envelope_error({"retCode": 0, "retMsg": "OK", "result": {}}) is None


def test_bybit_ip_ban_page_is_not_retried():
    page = b"<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD><H1>403 ERROR</H1></HTML>"
    verdict = classify_response("bybit", 403, httpx.Headers(), page, bybit.envelope_error)
    assert not verdict.ok and not verdict.retryable and "403" in verdict.reason


def test_bybit_periods_and_what_a_past_interval_lacks():
    assert [bybit.account_ratio_period(p) for p in ("5m", "15m", "1h", "2h", "1d")] == ["5min", "15min", "1h", None,
                                                                                         "1d"]  # fmt: skip
    assert bybit.open_interest_period("2h") == "1h"  # OI: the finest reading below
    assert "no 2h period" in bybit.period_unavailable("2h")["ls_account"] and not bybit.period_unavailable("4h")
    assert set(bybit.past_unavailable()) == {"mark_price", "funding_rate", "oi_usd"}


# ------------------------------------------------------------------------------ Hyperliquid payloads (§2)

# §2.1 doc example with the §2.2 delisted LOOM, a kPEPE entry and a HIP-3 name added (aligned contexts).
CONTEXT = {"dayNtlVlm": "1169046.29406", "funding": "0.0000125", "impactPxs": ["14.3047", "14.3444"],
           "markPx": "14.3161", "midPx": "14.314", "openInterest": "688.11", "oraclePx": "14.32",
           "premium": "0.00031774", "prevDayPx": "15.322"}  # fmt: skip
META_AND_ASSET_CTXS = [
    {"universe": [
        {"name": "BTC", "szDecimals": 5, "maxLeverage": 50},
        {"name": "kPEPE", "szDecimals": 0, "maxLeverage": 10},
        {"name": "LOOM", "szDecimals": 1, "maxLeverage": 3, "isDelisted": True, "marginMode": "strictIsolated",
         "onlyIsolated": True},
        {"szDecimals": 4, "name": "xyz:XYZ100", "maxLeverage": 20, "onlyIsolated": True},
    ], "marginTables": [], "collateralToken": 0},
    [CONTEXT, {**CONTEXT, "markPx": "0.0101", "openInterest": "5000000"},
     {**CONTEXT, "openInterest": "0.0", "premium": None, "midPx": None, "impactPxs": None},
     {"funding": "0.0002110251", "openInterest": "0.0854", "markPx": "25451.0", "premium": None, "midPx": None,
      "impactPxs": None, "oraclePx": "25372.0"}],
]  # fmt: skip


def test_hyperliquid_listing_maps_k_names_marks_delisted_and_ignores_hip3():
    rows = {row.instrument: row for row in hyperliquid.parse_listing(META_AND_ASSET_CTXS)}
    assert set(rows) == {"BTC", "kPEPE", "LOOM"}
    assert (rows["kPEPE"].symbol, rows["kPEPE"].multiplier) == ("PEPE", 1000.0)
    assert not rows["LOOM"].tradable and rows["LOOM"].status == "delisted"


def test_hyperliquid_contexts_give_coins_mark_and_hourly_funding_at_the_received_time():
    rows = hyperliquid.parse_meta_and_asset_ctxs(META_AND_ASSET_CTXS, RECEIVED)
    oi = {row.instrument: row for row in rows if isinstance(row, OpenInterest)}
    marks = {row.instrument: row for row in rows if isinstance(row, MarkPrice)}
    assert set(oi) == set(marks) == {"BTC", "kPEPE"}  # delisted and HIP-3 give no values
    assert oi["BTC"] == OpenInterest("hyperliquid", "BTC", RECEIVED["_received_at_ms"], coins=688.11)
    assert oi["BTC"].usd is None  # computed by the loader: coins x mark
    assert marks["BTC"].mark_price == 14.3161 and marks["BTC"].funding_rate == 0.0000125  # hourly, as sent
    assert sum(isinstance(row, Instrument) for row in rows) == 3  # the multipliers reach the loader


@pytest.mark.parametrize(
    ("payload", "params", "field"),
    [
        ([META_AND_ASSET_CTXS[0], META_AND_ASSET_CTXS[1][:2]], RECEIVED, "assetCtxs"),  # arity mismatch
        ([{"universe": [{"name": "BTC"}]}, [{"markPx": "1"}]], RECEIVED, "openInterest"),
        (META_AND_ASSET_CTXS, {}, "_received_at_ms"),  # no time in the payload, none given
        ([{"universe": [{"szDecimals": 5}]}, [CONTEXT]], RECEIVED, "name"),
    ],
)
def test_hyperliquid_parse_errors_name_venue_endpoint_and_field(payload, params, field):
    with pytest.raises(ParseError) as raised:
        hyperliquid.parse_meta_and_asset_ctxs(payload, params)
    assert (raised.value.venue, raised.value.endpoint, raised.value.field) == ("hyperliquid", "metaAndAssetCtxs", field)


def test_hyperliquid_error_object_is_an_envelope_error():
    assert hyperliquid.envelope_error({"code": 400, "msg": "bad", "data": None}).retryable is False
    assert hyperliquid.envelope_error(META_AND_ASSET_CTXS) is None


# ------------------------------------------------------------------------------------------------- the wire


def request_for(end=INTERVAL_END, period="1h", symbols=("BTC", "PEPE", "SHIB", "MKR")) -> ExtractRequest:
    return ExtractRequest(tuple(symbols), period, end - timedelta(hours=1), end)


def extract(venue: str, sim, data: Path, request: ExtractRequest | None = None, **options):
    return asyncio.run(extract_venue(venue, sim.base_url, request or request_for(), data_dir=data, run_id="wire",
                                     retry=FAST_RETRY, **options))  # fmt: skip


@pytest.fixture
def simulator():
    with VenueSimulator(port=0, seed=7, now_ms=SIM_NOW_MS) as sim:
        yield sim


def test_hyperliquid_one_post_per_run_with_its_body_landed(simulator, tmp_path):
    manifest = extract("hyperliquid", simulator, tmp_path)
    assert manifest.status == "ok" and manifest.requests_sent == 1
    assert manifest.instruments == {"BTC": "BTC", "PEPE": "kPEPE", "SHIB": "kSHIB"}
    assert manifest.skipped == {"MKR": "MKR is delisted on hyperliquid, not trading"}
    [logged] = simulator.requests
    assert logged["path"] == "/info" and logged["body"] == {"type": "metaAndAssetCtxs"}
    raw = json.loads(Path(manifest.requests[0].raw_paths[0]).read_text())
    assert raw["meta"]["method"] == "POST" and raw["meta"]["request_body"] == {"type": "metaAndAssetCtxs"}


def test_hyperliquid_sim_rejects_a_body_it_cannot_read_and_serves_hip3_only_on_request(simulator):
    info = f"{simulator.base_url}/info"
    assert httpx.post(info, content=b"{not json").status_code == 422
    assert httpx.post(info, json={"type": "noSuchType"}).text.startswith("Failed to deserialize")
    first = httpx.post(info, json={"type": "metaAndAssetCtxs"}).json()
    assert not any(":" in entry["name"] for entry in first[0]["universe"])
    assert len(first[0]["universe"]) == len(first[1])
    hip3 = httpx.post(info, json={"type": "metaAndAssetCtxs", "dex": "xyz"}).json()
    assert [entry["name"] for entry in hip3[0]["universe"]] == ["xyz:XYZ100"]
    assert hyperliquid.parse_listing(hip3) == []


def test_bybit_current_run_is_listing_tickers_and_one_ratio_call_per_symbol(simulator, tmp_path):
    manifest = extract("bybit", simulator, tmp_path)
    assert manifest.status == "ok"
    assert manifest.instruments == {"BTC": "BTCUSDT", "PEPE": "1000PEPEUSDT", "SHIB": "SHIB1000USDT"}
    assert [r.endpoint for r in manifest.requests] == ["instruments-info", "tickers", *["account-ratio"] * 3]
    listing = simulator.requests[0]["params"]
    assert listing == {"category": "linear", "limit": "1000"}  # beyond the default 500 in one page


def test_bybit_listing_is_followed_page_by_page_when_pages_are_short(simulator, tmp_path, monkeypatch):
    short_pages = bybit.Listing(bybit.INSTRUMENTS_INFO, {"category": "linear", "limit": 200},
                                bybit.parse_instruments_info, bybit.next_listing_page)  # fmt: skip
    monkeypatch.setattr(bybit, "LISTING", short_pages)
    manifest = extract("bybit", simulator, tmp_path)
    listed = [r for r in simulator.requests if r["endpoint"] == "instruments-info"]
    entries = len(simulator.state.instruments("bybit"))
    assert entries > 500 and len(listed) == -(-entries // 200)
    assert "cursor" not in listed[0]["params"] and all("cursor" in r["params"] for r in listed[1:])
    assert manifest.status == "ok" and manifest.instruments["BTC"] == "BTCUSDT"


def test_bybit_sim_refuses_a_cursor_encoded_twice(simulator):
    url = f"{simulator.base_url}/v5/market/instruments-info"
    first = httpx.get(url, params={"category": "linear"}).json()["result"]
    assert len(first["list"]) == 500 and first["nextPageCursor"]  # the default page is 500 of more entries
    twice = httpx.get(url, params={"category": "linear", "cursor": first["nextPageCursor"]}).json()
    assert twice["retCode"] == 10001


def test_bybit_past_run_pages_history_newest_first_and_records_what_is_missing(simulator, tmp_path):
    past = INTERVAL_END - timedelta(days=40)  # beyond Binance's 30 days: Bybit keeps it
    manifest = extract("bybit", simulator, tmp_path, request_for(past, "5m", ("BTC",)))
    assert manifest.history and manifest.status == "ok"
    assert set(manifest.unavailable) == {"mark_price", "funding_rate", "oi_usd"}
    oi_calls = [r for r in simulator.requests if r["endpoint"] == "open-interest"]
    assert [r["params"]["intervalTime"] for r in oi_calls] == ["5min"] and "endTime" in oi_calls[0]["params"]
    raw = json.loads(Path(manifest.requests[-1].raw_paths[0]).read_text())
    stamps = [int(row["timestamp"]) for row in json.loads(raw["body"])["result"]["list"]]
    assert stamps == sorted(stamps, reverse=True)  # newest first on the wire
    two_hours = extract("bybit", simulator, tmp_path / "2h", request_for(period="2h", symbols=("BTC",)))
    assert "no 2h period" in two_hours.unavailable["ls_account"]
    assert not [r for r in simulator.requests if r["endpoint"] == "account-ratio" and r["params"]["period"] == "2h"]


def test_bybit_api_limit_envelope_is_retried_and_a_403_ban_is_not(simulator, tmp_path):
    simulator.add_fault("bybit", "account-ratio", "error_envelope", symbol="BTC", code=10006, msg="Too many visits!",
                        times=1)  # fmt: skip
    manifest = extract("bybit", simulator, tmp_path / "first")
    assert manifest.status == "ok"
    assert sorted(r.attempts for r in manifest.requests if r.endpoint == "account-ratio") == [1, 1, 2]
    simulator.clear_requests()
    simulator.add_fault("bybit", "instruments-info", "status", status=403)
    banned = extract("bybit", simulator, tmp_path / "second")
    assert banned.status == "failed" and "403" in banned.fatal
    assert len(simulator.requests) == 1  # never retried in a loop


def test_bybit_sim_bans_an_ip_that_breaches_its_limit_and_the_client_stays_under_it(tmp_path):
    tight = {"bybit:ip": Limit(3, 5, "test")}
    with VenueSimulator(port=0, seed=7, now_ms=SIM_NOW_MS, rate_limits=tight) as sim:
        url = f"{sim.base_url}/v5/market/tickers"
        statuses = [httpx.get(url, params={"category": "linear"}).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 403, 403]  # banned: even after the window, for 10 minutes
        assert "access too frequent" in httpx.get(url, params={"category": "linear"}).text
    # At the documented limits the client's own ceiling (500 / 5 s) keeps the 600 / 5 s never reached.
    assert bybit.LIMITS["ip"].requests < 600 and bybit.LIMITS["ip"].seconds == 5.0


# ------------------------------------------------------------------------------------ through to the marts


def test_a_run_gives_bybit_and_hyperliquid_oi_one_sided_with_per_coin_marks(simulator, tmp_path, monkeypatch):
    data = tmp_path / "data"
    for venue in registry.names():
        monkeypatch.setenv(f"AIRFLOW_CONN_POSITIONING_{venue.upper()}", simulator.base_url)
    summary = run_interval({"symbols": ["BTC", "PEPE"], "includeBitget": False}, data, "manual__issue16")
    assert summary["quality"]["published"]
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute("SELECT * FROM marts.symbol_snapshot")
        names = [d[0] for d in cursor.description]
        rows = {row["symbol"]: row for row in (dict(zip(names, r, strict=True)) for r in cursor.fetchall())}
        marks = dict(
            con.execute(
                "SELECT venue || ':' || symbol, value FROM core.fact_positioning WHERE metric = 'mark_price'"
            ).fetchall()
        )
    state = simulator.state
    for symbol in ("BTC", "PEPE"):
        row = rows[symbol]
        bybit_truth = state.open_interest("bybit", symbol, SIM_NOW_MS)
        assert row["bybit_oi_usd"] == pytest.approx(bybit_truth["usd"], rel=1e-12)  # singleOpenInterestValue
        assert row["bybit_oi_usd"] == pytest.approx(bybit_truth["both_usd"] / 2, rel=1e-6)  # one side, not doubled
        hyper = state.open_interest("hyperliquid", symbol, SIM_NOW_MS)
        assert row["hyperliquid_oi_usd"] == pytest.approx(hyper["usd"], rel=1e-12)
        venues = ("binance", "okx", "strike", "bybit", "hyperliquid")
        assert row["bybit_ls"] is not None and row["venues_with_oi"] == sum(
            row[f"{v}_oi_usd"] is not None for v in venues
        )
        assert row["total_oi_usd"] == pytest.approx(sum(row[f"{v}_oi_usd"] or 0 for v in venues), rel=1e-12)
        others = [marks[f"{v}:{symbol}"] for v in ("binance", "okx") if f"{v}:{symbol}" in marks]
        for venue in ("bybit", "hyperliquid"):  # per coin, whatever the unit the venue quotes (1000PEPE, kPEPE)
            assert all(abs(marks[f"{venue}:{symbol}"] / other - 1) < 0.01 for other in others), (venue, symbol)
