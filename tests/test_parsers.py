"""Pure parser and error-envelope tests: every payload example of venues.md, no network.

Payloads are copied from /work/shared/venues.md (section numbers in the test names) and kept as JSON text so
``null``, string numbers and number timestamps stay exactly as documented.
"""

from __future__ import annotations

import json

import pytest
from positioning.rows import (
    FundingInterval,
    FundingRate,
    Instrument,
    LongShortRatio,
    MarkPrice,
    OpenInterest,
    OpenInterestHistory,
    ParseError,
)
from positioning.venues import binance, bitget, okx, strike


def doc(text: str):
    return json.loads(text)


def of_type(rows, kind):
    return [row for row in rows if isinstance(row, kind)]


# =========================================================================================== Binance §1

BINANCE_OPEN_INTEREST = """
{
  "openInterest": "10659.509",
  "symbol": "BTCUSDT",
  "time": 1589437530011
}
"""

BINANCE_OI_HIST = """
[
  {
    "symbol":"BTCUSDT",
    "sumOpenInterest":"20403.63700000",
    "sumOpenInterestValue": "150570784.07809979",
    "CMCCirculatingSupply": "165880.538",
    "timestamp":"1583127900000"
  },
  {
    "symbol":"BTCUSDT",
    "sumOpenInterest":"20401.36700000",
    "sumOpenInterestValue":"149940752.14464448",
    "CMCCirculatingSupply": "165900.14853",
    "timestamp":"1583128200000"
  }
]
"""

BINANCE_TOP_POSITION = """
[
  {
    "symbol":"BTCUSDT",
    "longShortRatio":"1.4342",
    "longAccount": "0.5891",
    "shortAccount":"0.4108",
    "timestamp":"1583139600000"
  },
  {
    "symbol":"BTCUSDT",
    "longShortRatio":"1.4337",
    "longAccount": "0.3583",
    "shortAccount":"0.6417",
    "timestamp":"1583139900000"
  }
]
"""

BINANCE_TOP_ACCOUNT = """
[
  {
    "symbol":"BTCUSDT",
    "longShortRatio":"1.8105",
    "longAccount": "0.6442",
    "shortAccount":"0.3558",
    "timestamp":"1583139600000"
  },
  {
    "symbol":"BTCUSDT",
    "longShortRatio":"0.5576",
    "longAccount": "0.3580",
    "shortAccount":"0.6420",
    "timestamp":"1583139900000"
  }
]
"""

BINANCE_GLOBAL_ACCOUNT = """
[
  {
    "symbol":"BTCUSDT",
    "longShortRatio":"0.1960",
    "longAccount": "0.6622",
    "shortAccount":"0.3378",
    "timestamp":"1583139600000"
  },
  {
    "symbol":"BTCUSDT",
    "longShortRatio":"1.9559",
    "longAccount": "0.6617",
    "shortAccount":"0.3382",
    "timestamp":"1583139900000"
  }
]
"""

BINANCE_PREMIUM_INDEX = """
{
  "symbol": "BTCUSDT",
  "markPrice": "11793.63104562",
  "indexPrice": "11781.80495970",
  "estimatedSettlePrice": "11781.16138815",
  "lastFundingRate": "0.00038246",
  "interestRate": "0.00010000",
  "nextFundingTime": 1597392000000,
  "time": 1597370495002
}
"""

BINANCE_EXCHANGE_INFO = """
{
  "exchangeFilters": [],
  "rateLimits": [
    {"interval": "MINUTE", "intervalNum": 1, "limit": 2400, "rateLimitType": "REQUEST_WEIGHT"},
    {"interval": "MINUTE", "intervalNum": 1, "limit": 1200, "rateLimitType": "ORDERS"}
  ],
  "serverTime": 1565613908500,
  "assets": [{"asset": "USDT", "marginAvailable": true, "autoAssetExchange": 0}],
  "symbols": [
    {
      "symbol": "BLZUSDT",
      "pair": "BLZUSDT",
      "contractType": "PERPETUAL",
      "deliveryDate": 4133404800000,
      "onboardDate": 1598252400000,
      "status": "TRADING",
      "baseAsset": "BLZ",
      "quoteAsset": "USDT",
      "marginAsset": "USDT",
      "pricePrecision": 5,
      "quantityPrecision": 0,
      "underlyingType": "COIN",
      "underlyingSubType": ["STORAGE"]
    }
  ],
  "timezone": "UTC"
}
"""


def test_binance_open_interest_1_1():
    assert binance.parse_open_interest(doc(BINANCE_OPEN_INTEREST)) == [
        OpenInterest("binance", "BTCUSDT", 1589437530011, coins=10659.509)
    ]


def test_binance_oi_hist_1_2_timestamp_string_or_number_and_optional_supply():
    rows = binance.parse_open_interest_hist(doc(BINANCE_OI_HIST), {"period": "5m"})
    assert rows[0] == OpenInterestHistory("binance", "BTCUSDT", "5m", 1583127900000, 20403.637, 150570784.07809979)
    assert rows[1].ts_ms == 1583128200000
    live = doc(BINANCE_OI_HIST)
    for row in live:
        row["timestamp"] = int(row["timestamp"])  # the live payload sends a number (§1.2 gotcha)
        del row["CMCCirculatingSupply"]  # older responses lack it
    assert binance.parse_open_interest_hist(live, {"period": "5m"}) == rows


@pytest.mark.parametrize(
    ("endpoint", "payload", "metric", "first"),
    [
        ("topLongShortPositionRatio", BINANCE_TOP_POSITION, "ls_top_position", (1.4342, 0.5891, 0.4108)),
        ("topLongShortAccountRatio", BINANCE_TOP_ACCOUNT, "ls_top_account", (1.8105, 0.6442, 0.3558)),
        ("globalLongShortAccountRatio", BINANCE_GLOBAL_ACCOUNT, "ls_global_account", (0.1960, 0.6622, 0.3378)),
    ],
)
def test_binance_ratios_1_3_to_1_5(endpoint, payload, metric, first):
    rows = binance.PARSERS[endpoint](doc(payload), {"period": "1h"})
    assert len(rows) == 2
    ratio, long_share, short_share = first
    assert rows[0] == LongShortRatio("binance", "BTCUSDT", metric, "1h", 1583139600000, ratio, long_share, short_share)
    live = doc(payload)
    live[1]["timestamp"] = 1583139900000  # number in practice
    assert binance.PARSERS[endpoint](live, {"period": "1h"})[1].ts_ms == 1583139900000


def test_binance_premium_index_1_6_object_and_array():
    single = binance.parse_premium_index(doc(BINANCE_PREMIUM_INDEX))
    assert single == [MarkPrice("binance", "BTCUSDT", 1597370495002, 11793.63104562, 0.00038246)]
    assert binance.parse_premium_index([doc(BINANCE_PREMIUM_INDEX)]) == single


def test_binance_premium_index_1_6_empty_funding_is_missing_not_zero():
    delivery = {
        **doc(BINANCE_PREMIUM_INDEX),
        "symbol": "BTCUSDT_250328",
        "lastFundingRate": "",
        "interestRate": "",
        "estimatedSettlePrice": "",
        "nextFundingTime": 0,
    }
    rows = binance.parse_premium_index([doc(BINANCE_PREMIUM_INDEX), delivery])
    assert rows[1].funding_rate is None
    assert rows[1].mark_price == 11793.63104562


def test_binance_exchange_info_1_7_filters_perpetual_usdt():
    payload = doc(BINANCE_EXCHANGE_INFO)
    blz = payload["symbols"][0]
    payload["symbols"] += [
        {**blz, "symbol": "OLDUSDT", "baseAsset": "OLD", "status": "SETTLING"},
        {**blz, "symbol": "TSLAUSDT", "baseAsset": "TSLA", "contractType": "TRADIFI_PERPETUAL"},
        {**blz, "symbol": "BTCUSDT_250328", "baseAsset": "BTC", "contractType": "CURRENT_QUARTER"},
        {**blz, "symbol": "BTCUSDC", "baseAsset": "BTC", "quoteAsset": "USDC", "marginAsset": "USDC"},
    ]
    rows = binance.parse_exchange_info(payload)
    assert rows == [
        Instrument("binance", "BLZ", "BLZUSDT", None, "USDT", "TRADING", True),
        Instrument("binance", "OLD", "OLDUSDT", None, "USDT", "SETTLING", False),
    ]


def test_binance_exchange_info_without_contract_type_does_not_fail_the_listing():
    """Older exchangeInfo payloads have no contractType: the deliveryDate marker (§1.7) or the delivery suffix
    decides, and the listing still parses."""
    payload = doc(BINANCE_EXCHANGE_INFO)
    blz = {key: value for key, value in payload["symbols"][0].items() if key != "contractType"}
    payload["symbols"] = [
        {**blz, "deliveryDate": 4133404800000},
        {**blz, "symbol": "ETHUSDT", "baseAsset": "ETH", "deliveryDate": 1774598400000},
        {**{k: v for k, v in blz.items() if k != "deliveryDate"}, "symbol": "SOLUSDT", "baseAsset": "SOL"},
        {**{k: v for k, v in blz.items() if k != "deliveryDate"}, "symbol": "BTCUSDT_250328", "baseAsset": "BTC"},
    ]
    assert [(row.symbol, row.instrument) for row in binance.parse_exchange_info(payload)] == [
        ("BLZ", "BLZUSDT"),
        ("SOL", "SOLUSDT"),
    ]


# ============================================================================================== OKX §2


def okx_envelope(data) -> dict:
    return {"code": "0", "msg": "", "data": data}


OKX_SWAP_INSTRUMENT = """
{
  "alias": "", "auctionEndTime": "", "baseCcy": "", "category": "1", "ctMult": "1", "ctType": "linear",
  "ctVal": "0.01", "ctValCcy": "BTC", "expTime": "", "instFamily": "BTC-USDT", "instId": "BTC-USDT-SWAP",
  "instType": "SWAP", "lever": "100", "listTime": "1573557408000", "lotSz": "0.1",
  "maxIcebergSz": "100000000.0000000000000000", "maxLmtAmt": "20000000", "maxLmtSz": "100000000", "maxMktAmt": "",
  "maxMktSz": "12000", "maxStopSz": "12000", "maxTriggerSz": "100000000.0000000000000000",
  "maxTwapSz": "100000000.0000000000000000", "minSz": "0.1", "optType": "", "quoteCcy": "", "ruleType": "normal",
  "settleCcy": "USDT", "state": "live", "stk": "", "tickSz": "0.1", "uly": "BTC-USDT"
}
"""
OKX_INVERSE_INSTRUMENT = (
    '{"instId":"BTC-USD-SWAP","ctVal":"100","ctValCcy":"USD","settleCcy":"BTC","ctType":"inverse","state":"live"}'
)

OKX_OPEN_INTEREST = """
{
  "code":"0",
  "msg":"",
  "data":[
    {
      "instType":"SWAP",
      "instId":"BTC-USDT-SWAP",
      "oi":"5000",
      "oiCcy":"555.55",
      "oiUsd": "50000",
      "ts":"1597026383085"
    }
  ]
}
"""
OKX_OI_REALISTIC = (
    '{"instId":"BTC-USDT-SWAP","instType":"SWAP","oi":"2216113.01000000309","oiCcy":"22161.1301000000309",'
    '"oiUsd":"1939251795.54769270396321","ts":"1743041250440"}'
)

OKX_MARK_PRICE = """
{
  "code":"0",
  "msg":"",
  "data":[
    {
      "instType":"SWAP",
      "instId":"BTC-USDT-SWAP",
      "markPx":"200",
      "ts":"1597026383085"
    }
  ]
}
"""

OKX_FUNDING_RATE = """
{
  "code": "0",
  "data": [
    {
      "formulaType": "noRate",
      "fundingRate": "0.0000182221218054",
      "fundingTime": "1743609600000",
      "impactValue": "",
      "instId": "BTC-USDT-SWAP",
      "instType": "SWAP",
      "interestRate": "",
      "maxFundingRate": "0.00375",
      "method": "current_period",
      "minFundingRate": "-0.00375",
      "nextFundingRate": "",
      "nextFundingTime": "1743638400000",
      "premium": "0.0000910113652644",
      "settFundingRate": "0.0000145824401745",
      "settState": "settled",
      "ts": "1743588686291"
    }
  ],
  "msg": ""
}
"""

OKX_LS_ACCOUNT_RATIO = """
{
  "code": "0",
  "data": [
    [
      "1630502100000",
      "1.25"
    ]
  ],
  "msg": ""
}
"""

OKX_OI_VOLUME = """
{
  "code": "0",
  "data": [
    [
      "1630502400000",
      "1713028741.6898",
      "39800873.554"
    ]
  ],
  "msg": ""
}
"""

# §2.6 instrument-based ratio example (newest first, same [ts, ratio] shape; the doc's trailing comma removed).
OKX_RUBIK_RATIO_2_6 = """
{
    "code":"0",
    "msg":"",
    "data":[
        ["1701417600000", "1.1739"],
        ["1701417600000", "0.1236"]
    ]
}
"""


def test_okx_instruments_2_1_swap_kept_inverse_filtered():
    payload = okx_envelope([doc(OKX_SWAP_INSTRUMENT), doc(OKX_INVERSE_INSTRUMENT)])
    assert okx.parse_instruments(payload) == [Instrument("okx", "BTC", "BTC-USDT-SWAP", 0.01, "USDT", "live", True)]


def test_okx_instruments_symbol_from_uly_or_inst_id_and_state():
    entry = doc(OKX_SWAP_INSTRUMENT)
    suspended = {**entry, "instId": "ETH-USDT-SWAP", "instFamily": "", "uly": "ETH-USDT", "ctVal": "0.1"}
    suspended["state"] = "suspend"
    bare = {key: value for key, value in entry.items() if key not in ("instFamily", "uly")}
    bare["instId"] = "SOL-USDT-SWAP"
    usdc = {**entry, "instId": "BTC-USDC-SWAP", "settleCcy": "USDC", "instFamily": "BTC-USDC"}
    rows = okx.parse_instruments(okx_envelope([suspended, bare, usdc]))
    assert [(row.symbol, row.instrument, row.contract_value, row.tradable) for row in rows] == [
        ("ETH", "ETH-USDT-SWAP", 0.1, False),
        ("SOL", "SOL-USDT-SWAP", 0.01, True),
    ]


def test_okx_instruments_ignore_unknown_fields_of_any_type():
    """Live instruments carry numbers, booleans and lists among their fields (instIdCode, futureSettlement...)."""
    entry = {**doc(OKX_SWAP_INSTRUMENT), "instIdCode": 10001, "futureSettlement": False, "tradeQuoteCcyList": ["USDT"]}
    entry["auctionEndTime"], entry["openType"] = None, {"kind": "fix_price"}
    assert okx.parse_instruments(okx_envelope([entry])) == [
        Instrument("okx", "BTC", "BTC-USDT-SWAP", 0.01, "USDT", "live", True)
    ]


def test_okx_open_interest_2_2_doc_example():
    assert okx.parse_open_interest(doc(OKX_OPEN_INTEREST)) == [
        OpenInterest("okx", "BTC-USDT-SWAP", 1597026383085, contracts=5000.0, coins=555.55, usd=50000.0)
    ]


def test_okx_open_interest_2_2_realistic_values_other_margins_filtered_and_oi_usd_optional():
    old_api = {"instType": "SWAP", "instId": "ETH-USDT-SWAP", "oi": "10", "oiCcy": "1", "ts": "1597026383085"}
    inverse = {**old_api, "instId": "BTC-USD-SWAP"}
    usdc = {**old_api, "instId": "BTC-USDC-SWAP"}
    rows = okx.parse_open_interest(okx_envelope([doc(OKX_OI_REALISTIC), old_api, inverse, usdc]))
    assert [row.instrument for row in rows] == ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]
    assert rows[0].contracts == pytest.approx(2216113.01)
    assert rows[0].coins == pytest.approx(22161.1301)
    assert rows[0].usd == pytest.approx(1939251795.5477)
    assert rows[0].ts_ms == 1743041250440
    assert rows[1].usd is None


def test_okx_mark_price_2_3():
    assert okx.parse_mark_price(doc(OKX_MARK_PRICE)) == [MarkPrice("okx", "BTC-USDT-SWAP", 1597026383085, 200.0)]


def test_okx_funding_rate_2_4():
    assert okx.parse_funding_rate(doc(OKX_FUNDING_RATE)) == [
        FundingRate("okx", "BTC-USDT-SWAP", 1743588686291, 0.0000182221218054, 1743638400000),
        FundingInterval("okx", "BTC-USDT-SWAP", 8.0),  # nextFundingTime - fundingTime
    ]


def test_okx_funding_rate_empty_rate_gives_no_row():
    row = doc(OKX_FUNDING_RATE)["data"][0]
    assert okx.parse_funding_rate(okx_envelope([{**row, "fundingRate": "", "nextFundingTime": ""}])) == []


def test_okx_long_short_account_ratio_2_5_array_rows():
    rows = okx.parse_long_short_account_ratio(doc(OKX_LS_ACCOUNT_RATIO), {"ccy": "BTC", "period": "1H"})
    assert rows == [LongShortRatio("okx", "BTC", "ls_account", "1H", 1630502100000, 1.25)]


def test_okx_rubik_rows_newest_first_are_sorted_oldest_first():
    payload = okx_envelope([["1630502700000", "1.3"], ["1630502400000", "1.2"], ["1630502100000", "1.1"]])
    rows = okx.parse_long_short_account_ratio(payload, {"ccy": "ETH", "period": "5m"})
    assert [row.ratio for row in rows] == [1.1, 1.2, 1.3]
    two_six = okx.parse_long_short_account_ratio(doc(OKX_RUBIK_RATIO_2_6), {"ccy": "BTC", "period": "5m"})
    assert [row.ratio for row in two_six] == [1.1739, 0.1236]


def test_okx_open_interest_volume_2_5():
    rows = okx.parse_open_interest_volume(doc(OKX_OI_VOLUME), {"ccy": "BTC", "period": "1H"})
    assert rows == [OpenInterestHistory("okx", "BTC", "1H", 1630502400000, coins=None, usd=1713028741.6898)]


@pytest.mark.parametrize(
    ("parser", "bad_row"),
    [
        (okx.parse_long_short_account_ratio, ["1630502100000"]),
        (okx.parse_long_short_account_ratio, {"ts": "1630502100000", "ratio": "1.25"}),
        (okx.parse_open_interest_volume, ["1630502400000"]),
    ],
)
def test_okx_rubik_row_shape_is_validated(parser, bad_row):
    with pytest.raises(ParseError, match=r"okx .* field 'data'"):
        parser(okx_envelope([bad_row]), {"ccy": "BTC", "period": "5m"})


def test_okx_rubik_needs_ccy_from_params():
    with pytest.raises(ParseError, match="field 'ccy'"):
        okx.parse_long_short_account_ratio(doc(OKX_LS_ACCOUNT_RATIO), {})


@pytest.mark.parametrize(
    ("ls_period", "expected"),
    [("5m", "5m"), ("15m", "5m"), ("30m", "5m"), ("1h", "1H"), ("2h", "1H"), ("4h", "1H"), ("1d", "1D")],
)
def test_okx_rubik_period_mapping(ls_period, expected):
    assert okx.rubik_period(ls_period) == expected


def test_okx_rubik_period_rejects_unknown():
    with pytest.raises(ValueError, match="lsPeriod"):
        okx.rubik_period("1w")


def test_okx_error_envelope_is_not_parsed_as_data():
    error = {"code": "51001", "msg": "Instrument ID, Instrument ID code, or Spread ID doesn't exist.", "data": []}
    with pytest.raises(ParseError, match="okx open-interest field 'code'"):
        okx.parse_open_interest(error)


# =========================================================================================== Bitget §3


def bitget_envelope(data) -> dict:
    return {"code": "00000", "msg": "success", "requestTime": 1695796780343, "data": data}


BITGET_OPEN_INTEREST = """
{
  "code": "00000",
  "msg": "success",
  "requestTime": 1695796780343,
  "data": {
    "openInterestList": [
      {
        "symbol": "BTCUSDT",
        "size": "34278.06"
      }
    ],
    "ts": "1695796781616"
  }
}
"""

BITGET_TICKERS = """
{
  "code": "00000",
  "msg": "success",
  "requestTime": 1695794269124,
  "data": [
    {
      "symbol": "BTCUSD",
      "lastPr": "29904.5",
      "askPr": "29904.5",
      "bidPr": "29903.5",
      "bidSz": "0.5091",
      "askSz": "2.2694",
      "high24h": "0",
      "low24h": "0",
      "ts": "1695794271400",
      "change24h": "0",
      "baseVolume": "0",
      "quoteVolume": "0",
      "usdtVolume": "0",
      "openUtc": "0",
      "changeUtc24h": "0",
      "indexPrice": "29132.353333",
      "fundingRate": "-0.0007",
      "holdingAmount": "125.6844",
      "deliveryStartTime": null,
      "deliveryTime": null,
      "deliveryStatus": "delivery_normal",
      "open24h": "0",
      "markPrice": "12345"
    }
  ]
}
"""
BITGET_TICKER_USDT = (
    '{"symbol":"BTCUSDT","lastPr":"77153.6","bidPr":"77153.6","bidSz":"0.751","askPr":"77153.7","askSz":"8.7528",'
    '"markPrice":"77153.7","indexPrice":"77180.0785","fundingRate":"0.000069","holdingAmount":"35194.2193999999167",'
    '"baseVolume":"11982.8017","quoteVolume":"925346862.40765","ts":"1789235622181"}'
)

BITGET_CONTRACT = (
    '{"symbol":"BTCUSDT","baseCoin":"BTC","quoteCoin":"USDT","symbolType":"perpetual","symbolStatus":"normal",'
    '"sizeMultiplier":"0.01","fundInterval":"8","maxLever":"125","offTime":"-1","limitOpenTime":"-1",'
    '"launchTime":"","isRwa":"YES"}'
)

BITGET_ACCOUNT_LONG_SHORT = """
{
  "code": "00000",
  "msg": "success",
  "requestTime": 1656589586807,
  "data": [
    {
      "longAccountRatio": "0.01",
      "shortAccountRatio": "0.12",
      "longShortAccountRatio": "1.2",
      "ts": "1714020600000"
    }
  ]
}
"""
BITGET_POSITION_ROW = (
    '{"longPositionRatio":"0.01","shortPositionRatio":"0.12","longShortPositionRatio":"1.2","ts":"1714020600000"}'
)
BITGET_LONG_SHORT_ROW = '{"longRatio":"0.01","shortRatio":"0.12","longShortRatio":"1.2","ts":"1714020600000"}'


def test_bitget_open_interest_3_1_object_shaped_data():
    assert bitget.parse_open_interest(doc(BITGET_OPEN_INTEREST)) == [
        OpenInterest("bitget", "BTCUSDT", 1695796781616, coins=34278.06)
    ]


def test_bitget_tickers_3_2_doc_example_with_nulls_gives_oi_and_mark():
    rows = bitget.parse_tickers(doc(BITGET_TICKERS))
    assert of_type(rows, OpenInterest) == [OpenInterest("bitget", "BTCUSD", 1695794271400, coins=125.6844)]
    assert of_type(rows, MarkPrice) == [MarkPrice("bitget", "BTCUSD", 1695794271400, 12345.0, -0.0007)]


def test_bitget_tickers_3_2_realistic_usdt_row():
    rows = bitget.parse_tickers(bitget_envelope([doc(BITGET_TICKER_USDT)]))
    assert of_type(rows, OpenInterest)[0].coins == pytest.approx(35194.2194)
    mark = of_type(rows, MarkPrice)[0]
    assert (mark.instrument, mark.mark_price, mark.funding_rate, mark.ts_ms) == (
        "BTCUSDT",
        77153.7,
        0.000069,
        1789235622181,
    )


def test_bitget_contracts_3_5_filter_and_status():
    entry = doc(BITGET_CONTRACT)
    rows = bitget.parse_contracts(
        bitget_envelope(
            [
                entry,
                {**entry, "symbol": "ETHUSDT", "baseCoin": "ETH", "symbolStatus": "maintain"},
                {**entry, "symbol": "BTCUSDT0627", "symbolType": "delivery"},
                {**entry, "symbol": "BTCPERP", "quoteCoin": "USDC"},
            ]
        )
    )
    assert rows == [
        Instrument("bitget", "BTC", "BTCUSDT", None, "USDT", "normal", True),
        Instrument("bitget", "ETH", "ETHUSDT", None, "USDT", "maintain", False),
    ]


@pytest.mark.parametrize(
    ("endpoint", "payload", "metric"),
    [
        ("account-long-short", BITGET_ACCOUNT_LONG_SHORT, "ls_account"),
        ("position-long-short", f'{{"code":"00000","msg":"success","data":[{BITGET_POSITION_ROW}]}}', "ls_position"),
        ("long-short", f'{{"code":"00000","msg":"success","data":[{BITGET_LONG_SHORT_ROW}]}}', "ls_volume"),
    ],
)
def test_bitget_long_short_3_6_to_3_8(endpoint, payload, metric):
    rows = bitget.PARSERS[endpoint](doc(payload), {"symbol": "BTCUSDT", "period": "1h"})
    assert rows == [LongShortRatio("bitget", "BTCUSDT", metric, "1h", 1714020600000, 1.2, 0.01, 0.12)]


def test_bitget_long_short_needs_symbol_from_params():
    with pytest.raises(ParseError, match="bitget account-long-short field 'symbol'"):
        bitget.parse_account_long_short(doc(BITGET_ACCOUNT_LONG_SHORT), {"period": "5m"})


def test_bitget_long_short_period_spelling():
    assert bitget.long_short_period("1d") == "1Dutc"
    assert bitget.long_short_period("4h") == "4h"


# =========================================================================================== Strike §4

STRIKE_FLAT = """
{
  "symbol": "BTC-USD",
  "position_multiplier": "0.000001",
  "long_funding_rate_hourly": "0.000125",
  "short_funding_rate_hourly": "-0.000075",
  "long_funding_rate_annual": "1.095",
  "short_funding_rate_annual": "-0.657",
  "long_oi": "2500000.00",
  "short_oi": "1800000.00",
  "total_oi": "4300000.00",
  "skew": "0.1628",
  "volumeUsd24h": "45000000.00",
  "volumeUsdTotal": "2340000000.00"
}
"""

STRIKE_WRAPPED = """
{
  "success": true,
  "message": "Market data retrieved successfully",
  "data": {
    "symbol": "BTC-USD",
    "current_price": "45123.50",
    "funding_rate": {
      "long_rate": "-0.0125",
      "short_rate": "0.0089",
      "next_update": "2024-01-15T15:00:00Z"
    },
    "open_interest": {
      "long_oi": "12500000.50",
      "short_oi": "10250000.25",
      "total_oi": "22750000.75",
      "skew": "0.10"
    },
    "volume": {
      "volume_24h": "5250000.00",
      "volume_1h": "250000.00",
      "trades_24h": 1523
    },
    "position_multiplier": "0.000001",
    "last_updated": "2024-01-15T14:30:00Z"
  }
}
"""

STRIKE_MARKETS = """
{
  "markets": [
    {
      "symbol": "BTC-USD",
      "price": "98742.50",
      "longOi": "1250000.75",
      "shortOi": "1180000.25",
      "totalOi": "2430001.00",
      "longFundingRateHourly": "0.000125",
      "shortFundingRateHourly": "-0.000075",
      "volumeUsd24h": "45250000.50",
      "volumeUsdTotal": "2150000000.75",
      "skew": "0.0287"
    }
  ]
}
"""

STRIKE_SYMBOLS_ONLY = {
    "markets": [{"symbol": f"{base}-USD"} for base in ("BTC", "ETH", "SOL", "BNB", "XRP", "HYPE")],
    "count": 6,
}

RECEIVED = {"_received_at_ms": 1705329000000}
LAST_UPDATED_MS = 1705329000000  # 2024-01-15T14:30:00Z
SEED_OI = OpenInterest("strike", "BTC-USD", LAST_UPDATED_MS, usd=4300000.0, long_usd=2500000.0, short_usd=1800000.0)


def seed_file_payload() -> dict:
    """The flat example of the seed page (/work/shared/seeds/004_*.txt), identical to venues.md §4 (a)."""
    return doc(STRIKE_FLAT)


def test_strike_flat_a_and_seed_page():
    assert strike.parse_market(doc(STRIKE_FLAT), RECEIVED) == [SEED_OI]
    assert strike.parse_market(seed_file_payload(), RECEIVED) == [SEED_OI]


def test_strike_wrapped_b_doc_example_uses_last_updated():
    rows = strike.parse_market(doc(STRIKE_WRAPPED), {})  # last_updated is there: no received time needed
    assert rows == [
        OpenInterest("strike", "BTC-USD", LAST_UPDATED_MS, usd=22750000.75, long_usd=12500000.5, short_usd=10250000.25),
        MarkPrice("strike", "BTC-USD", LAST_UPDATED_MS, 45123.5),
    ]


def test_strike_markets_c_doc_example():
    rows = strike.parse_markets(doc(STRIKE_MARKETS), RECEIVED)
    assert rows == [
        OpenInterest("strike", "BTC-USD", 1705329000000, usd=2430001.0, long_usd=1250000.75, short_usd=1180000.25),
        MarkPrice("strike", "BTC-USD", 1705329000000, 98742.5),
    ]


def test_strike_all_shapes_give_the_same_numbers():
    wrapped = doc(STRIKE_WRAPPED)
    wrapped["data"]["open_interest"] = {"long_oi": "2500000.00", "short_oi": "1800000.00", "total_oi": "4300000.00"}
    del wrapped["data"]["current_price"]
    camel = {"markets": [{"symbol": "BTC-USD", "longOi": "2500000.00", "shortOi": "1800000.00", "totalOi": "4300000"}]}
    prose = {"symbol": "BTC-USD", "longOI": "2500000", "shortOI": "1800000", "totalOI": "4300000", "imbalance": "16.28"}
    assert strike.parse_market(wrapped, RECEIVED) == [SEED_OI]
    assert strike.parse_markets(camel, RECEIVED) == [SEED_OI]
    assert strike.parse_market(prose, RECEIVED) == [SEED_OI]
    assert strike.parse_market(doc(STRIKE_FLAT), RECEIVED) == [SEED_OI]


def test_strike_total_derived_only_from_both_sides():
    both_sides = {"symbol": "BTC-USD", "long_oi": "2500000", "short_oi": "1800000"}
    assert strike.parse_market(both_sides, RECEIVED) == [SEED_OI]
    one_side = {"symbol": "BTC-USD", "long_oi": "2500000", "total_oi": "4300000"}
    (row,) = strike.parse_market(one_side, RECEIVED)
    assert (row.usd, row.long_usd, row.short_usd) == (4300000.0, 2500000.0, None)


def test_strike_symbols_only_markets_give_instruments():
    rows = strike.parse_markets(STRIKE_SYMBOLS_ONLY, RECEIVED)
    assert all(isinstance(row, Instrument) for row in rows)
    assert [row.symbol for row in rows] == ["BTC", "ETH", "SOL", "BNB", "XRP", "HYPE"]
    assert rows[0] == Instrument("strike", "BTC", "BTC-USD", None, "USD", "listed", True)


@pytest.mark.parametrize("payload", [STRIKE_SYMBOLS_ONLY, doc(STRIKE_MARKETS), {"success": True, "data": []}])
def test_strike_listing_from_any_markets_variant(payload):
    rows = strike.parse_market_listing(payload)
    assert all(isinstance(row, Instrument) and row.quote == "USD" for row in rows)
    assert strike.markets_with_open_interest(payload) == ({"BTC-USD"} if payload == doc(STRIKE_MARKETS) else set())


def test_strike_needs_a_timestamp_from_payload_or_params():
    with pytest.raises(ParseError, match="strike market field '_received_at_ms'"):
        strike.parse_market(doc(STRIKE_FLAT), {})


def test_strike_market_without_open_interest_is_an_error():
    with pytest.raises(ParseError, match="strike market field 'total_oi'"):
        strike.parse_market({"symbol": "BTC-USD", "skew": "0.1"}, RECEIVED)


# ============================================================= cross-venue quirks: empty, extra, missing


def test_empty_strings_are_missing_not_zero():
    assert binance.parse_premium_index({**doc(BINANCE_PREMIUM_INDEX), "markPrice": ""})[0].mark_price is None
    row = doc(OKX_OPEN_INTEREST)["data"][0]
    parsed = okx.parse_open_interest(okx_envelope([{**row, "oiUsd": "", "oiCcy": ""}]))[0]
    assert (parsed.usd, parsed.coins) == (None, None)
    ticker = {**doc(BITGET_TICKER_USDT), "markPrice": "", "fundingRate": ""}
    mark = of_type(bitget.parse_tickers(bitget_envelope([ticker])), MarkPrice)[0]
    assert (mark.mark_price, mark.funding_rate) == (None, None)
    (oi,) = strike.parse_market({"symbol": "BTC-USD", "long_oi": "2500000", "short_oi": "", "total_oi": ""}, RECEIVED)
    assert (oi.usd, oi.long_usd, oi.short_usd) == (None, 2500000.0, None)
    with pytest.raises(ParseError, match="binance openInterest field 'openInterest'"):
        binance.parse_open_interest({**doc(BINANCE_OPEN_INTEREST), "openInterest": ""})


def test_unknown_extra_fields_are_ignored():
    extra = {"brandNewField": "x", "nested": {"a": 1}}
    assert binance.parse_open_interest({**doc(BINANCE_OPEN_INTEREST), **extra})[0].coins == 10659.509
    okx_payload = {**doc(OKX_MARK_PRICE), "extra": True}
    okx_payload["data"][0].update(extra)
    assert okx.parse_mark_price(okx_payload)[0].mark_price == 200.0
    bitget_payload = doc(BITGET_OPEN_INTEREST)
    bitget_payload["data"].update(extra)
    bitget_payload["data"]["openInterestList"][0].update(extra)
    assert bitget.parse_open_interest(bitget_payload)[0].coins == 34278.06
    assert strike.parse_market({**doc(STRIKE_FLAT), **extra}, RECEIVED) == [SEED_OI]


def _without(payload, path: list, key: str):
    target = payload
    for step in path:
        target = target[step]
    del target[key]
    return payload


@pytest.mark.parametrize(
    ("parser", "payload", "params", "venue", "endpoint", "missing"),
    [
        (binance.parse_open_interest, _without(doc(BINANCE_OPEN_INTEREST), [], "time"), None, "binance",
         "openInterest", "time"),
        (binance.parse_exchange_info, _without(doc(BINANCE_EXCHANGE_INFO), ["symbols", 0], "status"), None,
         "binance", "exchangeInfo", "status"),
        (binance.PARSERS["globalLongShortAccountRatio"],
         _without(doc(BINANCE_GLOBAL_ACCOUNT), [0], "longShortRatio"), None, "binance",
         "globalLongShortAccountRatio", "longShortRatio"),
        (okx.parse_instruments, okx_envelope([_without(doc(OKX_SWAP_INSTRUMENT), [], "ctVal")]), None, "okx",
         "instruments", "ctVal"),
        (okx.parse_open_interest, _without(doc(OKX_OPEN_INTEREST), ["data", 0], "oi"), None, "okx",
         "open-interest", "oi"),
        (okx.parse_mark_price, _without(doc(OKX_MARK_PRICE), ["data", 0], "ts"), None, "okx", "mark-price", "ts"),
        (okx.parse_funding_rate, _without(doc(OKX_FUNDING_RATE), ["data", 0], "fundingRate"), None, "okx",
         "funding-rate", "fundingRate"),
        (okx.parse_open_interest, _without(doc(OKX_OPEN_INTEREST), [], "data"), None, "okx", "open-interest",
         "data"),
        (bitget.parse_open_interest, _without(doc(BITGET_OPEN_INTEREST), ["data"], "ts"), None, "bitget",
         "open-interest", "ts"),
        (bitget.parse_tickers, _without(doc(BITGET_TICKERS), ["data", 0], "holdingAmount"), None, "bitget",
         "tickers", "holdingAmount"),
        (bitget.parse_contracts, bitget_envelope([_without(doc(BITGET_CONTRACT), [], "baseCoin")]), None,
         "bitget", "contracts", "baseCoin"),
        (bitget.parse_account_long_short,
         _without(doc(BITGET_ACCOUNT_LONG_SHORT), ["data", 0], "longShortAccountRatio"), {"symbol": "BTCUSDT"},
         "bitget", "account-long-short", "longShortAccountRatio"),
        (strike.parse_market, _without(doc(STRIKE_FLAT), [], "symbol"), RECEIVED, "strike", "market", "symbol"),
        (strike.parse_markets, {"count": 6, "markets": [{"price": "1"}]}, RECEIVED, "strike", "markets", "symbol"),
    ],
)  # fmt: skip
def test_missing_required_field_names_venue_endpoint_and_field(parser, payload, params, venue, endpoint, missing):
    with pytest.raises(ParseError) as caught:
        parser(payload, params)
    error = caught.value
    assert (error.venue, error.endpoint, error.field) == (venue, endpoint, missing)
    assert str(error).startswith(f"{venue} {endpoint} field {missing!r}")


def test_wrong_top_level_shape_is_a_parse_error():
    with pytest.raises(ParseError, match="okx instruments"):
        okx.parse_instruments([1, 2])
    with pytest.raises(ParseError, match="bitget tickers field 'data'"):
        bitget.parse_tickers(bitget_envelope({"not": "a list"}))
    with pytest.raises(ParseError, match="strike markets field 'markets'"):
        strike.parse_markets({"markets": "BTC-USD"}, RECEIVED)
    with pytest.raises(ParseError, match="binance openInterest field 'openInterest'"):
        binance.parse_open_interest({**doc(BINANCE_OPEN_INTEREST), "openInterest": "n/a"})


# ======================================================================================= error envelopes


@pytest.mark.parametrize(
    ("module", "payload", "code", "retryable", "rate_limited"),
    [
        (binance, {"code": -1121, "msg": "Invalid symbol."}, "-1121", False, False),
        (
            binance,
            {"code": -1003, "msg": "Too many requests; current limit of IP(206.237.5.124) is 2400 requests per minute"},
            "-1003",
            True,
            True,
        ),
        (binance, {"code": 0, "msg": "Service unavailable from a restricted location according to ..."}, "0", False,
         False),
        (okx, {"msg": "Too Many Requests", "code": "50011"}, "50011", True, True),
        (okx, {"code": "50013", "msg": "Systems are busy. Please try again later."}, "50013", True, True),
        (okx, {"code": "50001", "msg": "Service temporarily unavailable", "data": []}, "50001", True, False),
        (okx, {"code": "51001", "msg": "Instrument ID, Instrument ID code, or Spread ID doesn't exist.", "data": []},
         "51001", False, False),
        (okx, {"code": "51001", "msg": "Instrument ID does not exist", "data": []}, "51001", False, False),
        (okx, {"code": "51000", "data": [], "msg": "Parameter period error"}, "51000", False, False),
        (bitget, {"code": "429", "msg": "Too Many Requests", "requestTime": 1748721720474, "data": None}, "429",
         True, True),
        (bitget, {"code": "40034", "msg": "Parameter NOPEUSDT does not exist"}, "40034", False, False),
        (bitget, {"code": "40034", "msg": "Parameter BTCUSDT_UMCBL does not exist", "requestTime": 1725380736387,
                  "data": None}, "40034", False, False),
        (bitget, {"code": "45001", "msg": "system upgrading", "data": None}, "45001", True, False),
        (bitget, {"code": "40808", "msg": "Parameter verification exception x", "data": None}, "40808", True,
         False),
        (strike, {"error": 400, "message": "Invalid symbol: XYZ-USD"}, "400", False, False),
        (strike, {"error": 404, "message": "Market not found: ABC-USD"}, "404", False, False),
        (strike, {"success": False, "message": "Too many requests"}, "success=false", True, True),
        (strike, {"error": 429, "message": "slow down"}, "429", True, True),
        (strike, {"success": False, "error": "INTERNAL_ERROR", "message": "oops"}, "INTERNAL_ERROR", True, False),
    ],
)  # fmt: skip
def test_envelope_errors(module, payload, code, retryable, rate_limited):
    error = module.envelope_error(payload)
    assert error is not None
    assert (error.code, error.retryable, error.rate_limited) == (code, retryable, rate_limited)


@pytest.mark.parametrize(
    ("module", "payload"),
    [
        (binance, doc(BINANCE_OPEN_INTEREST)),
        (binance, doc(BINANCE_OI_HIST)),
        (binance, doc(BINANCE_EXCHANGE_INFO)),
        (okx, doc(OKX_OPEN_INTEREST)),
        (okx, doc(OKX_LS_ACCOUNT_RATIO)),
        (bitget, doc(BITGET_TICKERS)),
        (bitget, doc(BITGET_OPEN_INTEREST)),
        (strike, doc(STRIKE_FLAT)),
        (strike, doc(STRIKE_WRAPPED)),
        (strike, doc(STRIKE_MARKETS)),
        (strike, STRIKE_SYMBOLS_ONLY),
        (strike, {"totalVolume": "157500000.50", "totalFees": "315000.75", "activeUsers": 1247}),  # /analytics
    ],
)
def test_success_payloads_are_not_errors(module, payload):
    assert module.envelope_error(payload) is None


def test_parsers_tables_name_the_canonical_endpoints():
    assert set(okx.PARSERS) == {
        "instruments",
        "open-interest",
        "mark-price",
        "funding-rate",
        "long-short-account-ratio",
        "taker-volume",
        "open-interest-volume",
    }
    assert set(bitget.PARSERS) == {
        "contracts",
        "tickers",
        "open-interest",
        "account-long-short",
        "position-long-short",
        "long-short",
    }
    assert set(strike.PARSERS) == {"markets", "market"}
