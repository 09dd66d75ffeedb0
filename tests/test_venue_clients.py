"""Wire tests of each venue's ``extract()``: the real VenueClient against a local HTTP server (tests/wire_fixtures.py).

They check the request plan (batch endpoints, per-symbol calls only where needed, minimum request counts),
skipping of unlisted symbols, retry behaviour on the venues' real error bodies, fatal listing failures, and that
every response is landed as a raw file the parsers can read back.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
from positioning.ingest.http import RateLimit, RetryPolicy, VenueClient
from positioning.ingest.raw import RawLander, read_raw
from positioning.rows import Instrument, LongShortRatio, MarkPrice, OpenInterest
from positioning.venues import binance, bitget, okx, strike
from positioning.venues.base import ExtractRequest, VenueExtract
from wire_fixtures import (
    BITGET_RATE_LIMITED,
    OKX_RATE_LIMITED,
    OKX_UNKNOWN_INSTRUMENT,
    FakeVenue,
    Reply,
    binance_routes,
    bitget_routes,
    okx_routes,
    strike_routes,
)

FAST_RETRY = RetryPolicy(base_delay=0.01, seed=1)
INTERVAL_START = datetime(2024, 1, 15, 13, 0, tzinfo=UTC)
INTERVAL_END = datetime(2024, 1, 15, 14, 0, tzinfo=UTC)
HOUR_MS = 3_600_000

OKX_RATIO_PATH = "/api/v5/rubik/stat/contracts/long-short-account-ratio"
OKX_OI_VOLUME_PATH = "/api/v5/rubik/stat/contracts/open-interest-volume"
BITGET_TICKERS_PATH = "/api/v2/mix/market/tickers"
BITGET_OI_PATH = "/api/v2/mix/market/open-interest"
BITGET_RATIO_PATH = "/api/v2/mix/market/account-long-short"


def request_for(symbols, *, ls_period: str = "1h", oi_change: bool = False) -> ExtractRequest:
    """A request for a current interval: planned at 90 s past its end, whatever the fake venue's Date header says."""
    return ExtractRequest(
        tuple(symbols),
        ls_period,
        INTERVAL_START,
        INTERVAL_END,
        include_oi_change_24h=oi_change,
        now=INTERVAL_END + timedelta(seconds=90),
    )


def unthrottled(module: ModuleType) -> dict[str, RateLimit]:
    """The venue's groups with limits no test reaches: for plan and count tests that must not wait 50 s."""
    return {group: RateLimit(100_000, 1.0, "test") for group in module.LIMITS}


def run(
    module: ModuleType,
    venue: FakeVenue,
    request: ExtractRequest,
    raw_root: Path,
    *,
    limits: dict[str, RateLimit] | None = None,
) -> tuple[VenueExtract, int]:
    lander = RawLander(raw_root, module.VENUE, request.interval_end, "wire-test")

    async def go() -> tuple[VenueExtract, int]:
        async with VenueClient(
            module.VENUE,
            venue.base_url,
            limits=limits or module.LIMITS,
            envelope_error=module.envelope_error,
            lander=lander,
            retry=FAST_RETRY,
        ) as client:
            extract = await module.extract(client, request)
            return extract, client.requests_sent

    return asyncio.run(go())


def landed(extract: VenueExtract) -> list[Path]:
    return [Path(path) for result in extract.results for path in result.raw_paths]


def assert_all_landed(extract: VenueExtract, raw_root: Path, requests_sent: int) -> None:
    """One raw file per attempt, each holding meta + the body verbatim; nothing else under raw/."""
    paths = landed(extract)
    assert len(paths) == requests_sent
    assert sorted(paths) == sorted(raw_root.rglob("*.json"))
    for path in paths:
        record = json.loads(path.read_text())
        assert set(record) == {"meta", "body"}
        assert record["meta"]["venue"] == extract.venue
        assert record["meta"]["status"] is not None
        json.loads(record["body"])  # the fake venue always answers JSON


def parse_landed(module: ModuleType, extract: VenueExtract) -> list:
    """Re-parse every successful landed response as the loader does (params + received time)."""
    rows = []
    for result in extract.results:
        if not result.ok:
            continue
        raw = read_raw(result.raw_paths[-1])
        received_ms = int(datetime.fromisoformat(raw.meta["received_at"]).timestamp() * 1000)
        rows.extend(
            module.PARSERS[raw.meta["endpoint"]](raw.json(), {**raw.meta["params"], "_received_at_ms": received_ms})
        )
    return rows


def endpoint_counts(extract: VenueExtract) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in extract.results:
        counts[result.endpoint] = counts.get(result.endpoint, 0) + 1
    return counts


@pytest.fixture
def venue():
    with FakeVenue() as server:
        yield server


# ================================================================================================== OKX


def test_okx_plan_batch_calls_and_ccy_ratio_per_listed_symbol(venue, tmp_path):
    okx_routes(venue, ["BTC", "ETH"])
    extract, sent = run(okx, venue, request_for(["BTC", "ETH", "NOPE"]), tmp_path)
    assert extract.fatal is None
    assert extract.instruments == {"BTC": "BTC-USDT-SWAP", "ETH": "ETH-USDT-SWAP"}
    assert extract.skipped == {"NOPE": "not listed on okx"}
    assert sent == 4 + 2 * 2 == venue.count()
    assert endpoint_counts(extract) == {
        "instruments": 1,
        "open-interest": 1,
        "mark-price": 1,
        "funding-rate": 1,
        "long-short-account-ratio": 2,
        "taker-volume": 2,
    }
    assert venue.queries("/api/v5/public/funding-rate") == [{"instId": "ANY"}]
    assert venue.queries("/api/v5/public/open-interest") == [{"instType": "SWAP"}]
    ratio_queries = sorted(venue.queries(OKX_RATIO_PATH), key=lambda query: query["ccy"])
    start_ms, end_ms = request_for([]).interval_start_ms, request_for([]).interval_end_ms
    assert ratio_queries == [
        {"ccy": ccy, "period": "1H", "begin": str(start_ms - HOUR_MS), "end": str(end_ms)} for ccy in ("BTC", "ETH")
    ]
    assert_all_landed(extract, tmp_path, sent)
    rows = parse_landed(okx, extract)
    assert {row.instrument for row in rows if isinstance(row, OpenInterest)} == {"BTC-USDT-SWAP", "ETH-USDT-SWAP"}
    ratios = [row for row in rows if isinstance(row, LongShortRatio)]
    assert {(row.key, row.period) for row in ratios} == {("BTC", "1H"), ("ETH", "1H")}


def test_okx_oi_change_adds_hourly_oi_volume_over_25_hours(venue, tmp_path):
    okx_routes(venue, ["BTC", "ETH"])
    extract, sent = run(okx, venue, request_for(["BTC", "ETH"], ls_period="5m", oi_change=True), tmp_path)
    assert sent == 4 + 2 * 3
    end_ms = request_for([]).interval_end_ms
    assert sorted(venue.queries(OKX_OI_VOLUME_PATH), key=lambda query: query["ccy"]) == [
        {"ccy": ccy, "period": "1H", "begin": str(end_ms - 25 * HOUR_MS), "end": str(end_ms)} for ccy in ("BTC", "ETH")
    ]
    assert {query["period"] for query in venue.queries(OKX_RATIO_PATH)} == {"5m"}
    assert_all_landed(extract, tmp_path, sent)


def test_okx_unknown_instrument_with_http_200_is_not_retried(venue, tmp_path):
    okx_routes(venue, ["BTC", "ETH"])
    healthy = Reply({"code": "0", "msg": "", "data": [["1705327200000", "1.25"]]})
    venue.route(OKX_RATIO_PATH, lambda query: Reply(OKX_UNKNOWN_INSTRUMENT) if query["ccy"] == "ETH" else healthy)
    extract, sent = run(okx, venue, request_for(["BTC", "ETH"]), tmp_path)
    (eth,) = [r for r in extract.results if r.symbol == "ETH" and r.endpoint == "long-short-account-ratio"]
    assert not eth.ok and eth.attempts == 1 and eth.statuses == [200]
    assert "51001" in (eth.error or "")
    assert venue.count(OKX_RATIO_PATH) == 2  # one per coin, no retry
    assert extract.fatal is None
    assert_all_landed(extract, tmp_path, sent)


def test_okx_429_with_okx_body_is_retried_then_succeeds(venue, tmp_path):
    okx_routes(venue, ["BTC"])
    venue.route(
        "/api/v5/public/mark-price",
        [
            Reply(OKX_RATE_LIMITED, status=429),
            Reply({"code": "50011", "msg": "Rate limit reached.", "data": []}),  # the same code with HTTP 200
            Reply({"code": "0", "msg": "", "data": [{"instId": "BTC-USDT-SWAP", "markPx": "200", "ts": "1"}]}),
        ],
    )
    extract, sent = run(okx, venue, request_for(["BTC"]), tmp_path)
    (mark,) = [result for result in extract.results if result.endpoint == "mark-price"]
    assert mark.ok and mark.attempts == 3 and mark.statuses == [429, 200, 200]
    assert sent == 4 + 2 + 2  # the batch calls, ratio and taker volume, two retries
    assert_all_landed(extract, tmp_path, sent)


def test_okx_instruments_failure_is_fatal_and_stops(venue, tmp_path):
    okx_routes(venue, ["BTC"])
    venue.route("/api/v5/public/instruments", Reply({"code": "50001", "msg": "Service temporarily unavailable"}, 503))
    extract, sent = run(okx, venue, request_for(["BTC"]), tmp_path)
    assert extract.fatal and "instruments" in extract.fatal
    assert venue.count() == venue.count("/api/v5/public/instruments") == FAST_RETRY.max_attempts == sent
    assert_all_landed(extract, tmp_path, sent)


def test_okx_unparseable_instruments_is_fatal(venue, tmp_path):
    okx_routes(venue, ["BTC"])
    venue.route("/api/v5/public/instruments", Reply({"code": "0", "msg": "", "data": {"not": "a list"}}))
    extract, sent = run(okx, venue, request_for(["BTC"]), tmp_path)
    assert extract.fatal and "okx instruments field 'data'" in extract.fatal
    assert sent == 1


# =============================================================================================== Bitget


def test_bitget_plan_contracts_tickers_and_account_ratio_per_symbol(venue, tmp_path):
    bitget_routes(venue, ["BTC", "ETH"])
    # Real limits: the account-long-short calls are paced at 1 per second.
    extract, sent = run(bitget, venue, request_for(["BTC", "ETH", "NOPE"], ls_period="1d", oi_change=True), tmp_path)
    assert extract.instruments == {"BTC": "BTCUSDT", "ETH": "ETHUSDT"}
    assert extract.skipped == {"NOPE": "not listed on bitget"}
    assert endpoint_counts(extract) == {"contracts": 1, "tickers": 1, "account-long-short": 2}
    assert sent == 4 == venue.count()
    assert sorted(venue.queries(BITGET_RATIO_PATH), key=lambda query: query["symbol"]) == [
        {"symbol": "BTCUSDT", "period": "1d"},
        {"symbol": "ETHUSDT", "period": "1d"},
    ]
    assert venue.queries(BITGET_TICKERS_PATH) == [{"productType": "USDT-FUTURES"}]
    assert_all_landed(extract, tmp_path, sent)
    rows = parse_landed(bitget, extract)
    assert {row.instrument for row in rows if isinstance(row, OpenInterest)} == {"BTCUSDT", "ETHUSDT"}
    assert {row.instrument for row in rows if isinstance(row, MarkPrice)} == {"BTCUSDT", "ETHUSDT"}
    assert {row.instrument for row in rows if isinstance(row, Instrument)} == {"BTCUSDT", "ETHUSDT"}
    assert {(row.key, row.metric) for row in rows if isinstance(row, LongShortRatio)} == {
        ("BTCUSDT", "ls_account"),
        ("ETHUSDT", "ls_account"),
    }


def test_bitget_tickers_failure_falls_back_to_per_symbol_open_interest(venue, tmp_path):
    bitget_routes(venue, ["BTC", "ETH", "SOL"])
    venue.route(BITGET_TICKERS_PATH, Reply(BITGET_RATE_LIMITED, status=429))
    extract, sent = run(bitget, venue, request_for(["BTC", "ETH"]), tmp_path, limits=unthrottled(bitget))
    (tickers,) = [result for result in extract.results if result.endpoint == "tickers"]
    assert not tickers.ok and tickers.attempts == FAST_RETRY.max_attempts
    assert sorted(query["symbol"] for query in venue.queries(BITGET_OI_PATH)) == ["BTCUSDT", "ETHUSDT"]
    assert {query["productType"] for query in venue.queries(BITGET_OI_PATH)} == {"USDT-FUTURES"}
    assert sent == 1 + FAST_RETRY.max_attempts + 2 + 2
    rows = parse_landed(bitget, extract)
    assert {row.instrument for row in rows if isinstance(row, OpenInterest)} == {"BTCUSDT", "ETHUSDT"}
    assert_all_landed(extract, tmp_path, sent)


def test_bitget_unknown_symbol_400_is_not_retried(venue, tmp_path):
    bitget_routes(venue, ["BTC"])
    venue.route(BITGET_RATIO_PATH, Reply({"code": "40034", "msg": "Parameter BTCUSDT does not exist"}, status=400))
    extract, sent = run(bitget, venue, request_for(["BTC"]), tmp_path, limits=unthrottled(bitget))
    (ratio,) = [result for result in extract.results if result.endpoint == "account-long-short"]
    assert not ratio.ok and ratio.attempts == 1 and "40034" in (ratio.error or "")
    assert sent == 3


def test_bitget_contracts_failure_is_fatal(venue, tmp_path):
    bitget_routes(venue, ["BTC"])
    venue.route(
        "/api/v2/mix/market/contracts", Reply({"code": "40808", "msg": "Parameter verification exception"}, 400)
    )
    extract, sent = run(bitget, venue, request_for(["BTC"]), tmp_path)
    assert extract.fatal and "contracts" in extract.fatal
    assert venue.count() == venue.count("/api/v2/mix/market/contracts") == sent == FAST_RETRY.max_attempts
    assert_all_landed(extract, tmp_path, sent)


# =============================================================================================== Strike


def test_strike_markets_with_data_is_one_request(venue, tmp_path):
    strike_routes(venue, symbols_only=False)
    extract, sent = run(strike, venue, request_for(["BTC", "ETH", "DOGE"]), tmp_path)
    assert sent == 1 == venue.count("/markets")
    assert extract.instruments == {"BTC": "BTC-USD", "ETH": "ETH-USD"}
    assert extract.skipped == {"DOGE": "not listed on strike"}
    rows = parse_landed(strike, extract)
    received_ms = int(datetime.fromisoformat(read_raw(landed(extract)[0]).meta["received_at"]).timestamp() * 1000)
    btc = [row for row in rows if isinstance(row, OpenInterest) and row.instrument == "BTC-USD"]
    assert btc == [
        OpenInterest("strike", "BTC-USD", received_ms, usd=2430001.0, long_usd=1250000.75, short_usd=1180000.25)
    ]
    assert_all_landed(extract, tmp_path, sent)


def test_strike_symbols_only_markets_triggers_per_market_calls(venue, tmp_path):
    strike_routes(venue, symbols_only=True)
    extract, sent = run(strike, venue, request_for(["BTC", "HYPE", "DOGE"]), tmp_path)
    assert extract.instruments == {"BTC": "BTC-USD", "HYPE": "HYPE-USD"}
    assert extract.skipped == {"DOGE": "not listed on strike"}
    assert sent == 1 + 2
    assert venue.count("/market/BTC-USD") == venue.count("/market/HYPE-USD") == 1
    rows = parse_landed(strike, extract)
    totals = {row.instrument: row.usd for row in rows if isinstance(row, OpenInterest)}
    assert totals == {"BTC-USD": 4300000.0, "HYPE-USD": 4300000.0}
    assert_all_landed(extract, tmp_path, sent)


def test_strike_markets_failure_is_fatal(venue, tmp_path):
    strike_routes(venue, symbols_only=True)
    venue.route("/markets", Reply({"success": False, "message": "Internal error"}, status=500))
    extract, sent = run(strike, venue, request_for(["BTC"]), tmp_path)
    assert extract.fatal and "markets" in extract.fatal
    assert venue.count() == venue.count("/markets") == sent == FAST_RETRY.max_attempts
    assert_all_landed(extract, tmp_path, sent)


def test_strike_unknown_market_404_is_not_retried(venue, tmp_path):
    strike_routes(venue, symbols_only=True)
    venue.route("/market/BTC-USD", Reply({"error": 404, "message": "Market not found: BTC-USD"}, status=404))
    extract, sent = run(strike, venue, request_for(["BTC"]), tmp_path)
    (market,) = [result for result in extract.results if result.endpoint == "market"]
    assert not market.ok and market.attempts == 1 and extract.fatal is None
    assert sent == 2


# ============================================================================================== Binance


def test_binance_plan_and_unlisted_symbols(venue, tmp_path):
    binance_routes(venue, ["BTC", "ETH"])
    extract, sent = run(binance, venue, request_for(["BTC", "ETH", "NOPE"]), tmp_path)
    assert extract.skipped == {"NOPE": "not listed on binance"}
    assert sent == 3 + 2 * 5  # exchangeInfo, premiumIndex, fundingInfo; OI, 3 ratios, taker ratio per symbol
    assert venue.count("/fapi/v1/premiumIndex") == 1 and venue.count("/fapi/v1/fundingInfo") == 1
    assert_all_landed(extract, tmp_path, sent)
    # instruments, marks, OI, ratios, taker ratios (fundingInfo lists no adjusted symbol)
    assert len(parse_landed(binance, extract)) == 2 + 2 + 2 + 2 * 3 + 2


def test_binance_invalid_symbol_400_not_retried_and_429_retried(venue, tmp_path):
    binance_routes(venue, ["BTC", "ETH"])
    venue.route(
        "/fapi/v1/openInterest",
        lambda query: (
            Reply({"code": -1121, "msg": "Invalid symbol."}, status=400)
            if query["symbol"] == "ETHUSDT"
            else Reply({"openInterest": "1", "symbol": "BTCUSDT", "time": 1})
        ),
    )
    venue.route(
        "/fapi/v1/premiumIndex",
        [Reply({"code": -1003, "msg": "Too many requests"}, status=429, headers={"Retry-After": "0"}), Reply([])],
    )
    extract, sent = run(binance, venue, request_for(["BTC", "ETH"]), tmp_path)
    by_key = {(result.endpoint, result.symbol): result for result in extract.results}
    assert by_key[("openInterest", "ETH")].attempts == 1 and not by_key[("openInterest", "ETH")].ok
    assert by_key[("premiumIndex", None)].ok and by_key[("premiumIndex", None)].attempts == 2
    assert sent == 3 + 2 * 5 + 1


# ======================================================================== request counts for 50 symbols

FIFTY = tuple(f"C{number:02d}" for number in range(50))


@pytest.mark.parametrize(
    ("module", "routes", "oi_change", "expected"),
    [
        (binance, binance_routes, False, 3 + 50 * 5),
        (binance, binance_routes, True, 3 + 50 * 5),
        (okx, okx_routes, False, 4 + 50 * 2),
        (okx, okx_routes, True, 4 + 50 * 3),
        (bitget, bitget_routes, False, 2 + 50),
        (bitget, bitget_routes, True, 2 + 50),
    ],
    ids=["binance", "binance-oi24h", "okx", "okx-oi24h", "bitget", "bitget-oi24h"],
)
def test_request_count_for_50_listed_symbols_is_the_minimum(venue, tmp_path, module, routes, oi_change, expected):
    routes(venue, FIFTY)
    extract, sent = run(module, venue, request_for(FIFTY, oi_change=oi_change), tmp_path, limits=unthrottled(module))
    assert len(extract.instruments) == 50 and not extract.skipped
    assert all(result.ok for result in extract.results)
    assert sent == venue.count() == expected


@pytest.mark.parametrize(("symbols_only", "expected"), [(False, 1), (True, 1 + 6)])
def test_strike_request_count_for_the_50_symbol_universe(venue, tmp_path, symbols_only, expected):
    strike_routes(venue, symbols_only=symbols_only)
    universe = ("BTC", "ETH", "SOL", "BNB", "XRP", "HYPE", *FIFTY[:44])
    extract, sent = run(strike, venue, request_for(universe, oi_change=True), tmp_path)
    assert len(extract.instruments) == 6 and len(extract.skipped) == 44
    assert sent == expected
