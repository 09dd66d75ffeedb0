"""Binance USD-M futures: endpoints, limits, error envelope, request plan and pure parsers (venues.md §1).

Wire format: bare JSON objects/arrays, numbers as strings, ms timestamps as numbers (history endpoints: the
docs say string, the live payload is a number, so both are accepted). Errors: ``{"code": -1121, "msg": ...}``
with a 4xx status; 429 rate limit and 418 ban carry ``Retry-After``; 451 is a geo-block.

Past intervals (see ``positioning.ingest.extract``): ``openInterestHist`` (``sumOpenInterest`` coins and
``sumOpenInterestValue`` USD, so ``oi_usd`` stays venue-reported) and the three ratio endpoints, each with
``startTime``/``endTime`` over the interval plus one bucket; ``premiumIndex`` and ``openInterest`` are current
only, so mark price and funding rate are "not available" for a past interval. The ``/futures/data`` endpoints keep
30 days (§1.2): an older interval is a gap, not a request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from positioning.ingest.endpoints import Endpoint, EnvelopeError
from positioning.ingest.limits import RateLimit
from positioning.periods import PERIOD_MS
from positioning.rows import (
    FundingInterval,
    Instrument,
    LongShortRatio,
    MarkPrice,
    OpenInterest,
    OpenInterestHistory,
    ParseError,
    field,
    number,
    optional_number,
    timestamp_ms,
)
from positioning.venues.base import (
    AscendingCursor,
    Column,
    ExtractRequest,
    HistorySeries,
    Listing,
    VenueExtract,
    VenueSpec,
    fetch_listing,
    gather_per_symbol,
    snapshot_only,
)

if TYPE_CHECKING:
    from positioning.ingest.http import VenueClient


VENUE = "binance"

LIMITS = {
    "weight": RateLimit(2400, 60.0, "§1.0 REQUEST_WEIGHT 2400 / 1 MINUTE / IP"),
    "futures_data": RateLimit(1000, 300.0, "§1.2 /futures/data/* IP rate limit 1000 requests / 5 min"),
    "funding_info": RateLimit(500, 300.0, "§1.6 fundingInfo: 500 / 5 min / IP, shared with fundingRate"),
}

EXCHANGE_INFO = Endpoint("exchangeInfo", "/fapi/v1/exchangeInfo", {"weight": 1})
PREMIUM_INDEX = Endpoint("premiumIndex", "/fapi/v1/premiumIndex", {"weight": 10})  # 10 without symbol
OPEN_INTEREST = Endpoint("openInterest", "/fapi/v1/openInterest", {"weight": 1})
# §1.6: the symbols whose funding interval was adjusted from the default 8 hours (weight 0, one call for all).
FUNDING_INFO = Endpoint("fundingInfo", "/fapi/v1/fundingInfo", {"funding_info": 1})
DEFAULT_FUNDING_HOURS = 8.0
OPEN_INTEREST_HIST = Endpoint("openInterestHist", "/futures/data/openInterestHist", {"futures_data": 1})
TOP_POSITION_RATIO = Endpoint(
    "topLongShortPositionRatio", "/futures/data/topLongShortPositionRatio", {"futures_data": 1}
)
TOP_ACCOUNT_RATIO = Endpoint("topLongShortAccountRatio", "/futures/data/topLongShortAccountRatio", {"futures_data": 1})
GLOBAL_ACCOUNT_RATIO = Endpoint(
    "globalLongShortAccountRatio", "/futures/data/globalLongShortAccountRatio", {"futures_data": 1}
)
# venues-more.md §3.5: taker buy/sell volume, rows without a symbol (the request names it).
TAKER_RATIO = Endpoint("takerlongshortRatio", "/futures/data/takerlongshortRatio", {"futures_data": 1})
RATIO_ENDPOINTS = (
    (TOP_POSITION_RATIO, "ls_top_position"),
    (TOP_ACCOUNT_RATIO, "ls_top_account"),
    (GLOBAL_ACCOUNT_RATIO, "ls_global_account"),
)
HISTORY_PAGE_LIMIT = 500  # §1.2 "max 500"
HISTORY_RETENTION = timedelta(days=30)  # §1.2 "Only the data of the latest 30 days is available"
BUCKETED_ENDPOINTS = (*RATIO_ENDPOINTS, (TAKER_RATIO, "taker_buy_sell"))  # per symbol, over the ratio window
HISTORY_ENDPOINTS = ((OPEN_INTEREST_HIST, ("oi_coins", "oi_usd")), *((e, (m,)) for e, m in BUCKETED_ENDPOINTS))
PERPETUAL_DELIVERY_DATE = 4133404800000  # §1.7: a perp with another deliveryDate is scheduled for delisting
RETRYABLE_CODES = {-1003: True, -1001: False, -1007: False}  # code -> means "rate limited"
# Assets USD-M lists in multiples: base asset -> (the asset, coins per unit). Data, not a rule: a leading number
# is no multiplier by itself (``1INCHUSDT`` trades 1INCH). Seen in premiumIndex of 2024-11-27 (issue 15).
MULTIPLIED_ASSETS = {
    **{f"1000{asset}": (asset, 1000.0) for asset in (
        "PEPE", "SHIB", "BONK", "FLOKI", "LUNC", "XEC", "SATS", "RATS", "CAT", "CHEEMS", "WHY", "X", "BTTC",
    )},
    "1MBABYDOGE": ("BABYDOGE", 1_000_000.0),
    "1000000MOG": ("MOG", 1_000_000.0),
}  # fmt: skip


def envelope_error(payload: Any) -> EnvelopeError | None:
    """Binance errors are ``{"code": <negative int>, "msg": "..."}`` (451 sends ``code: 0``)."""
    if isinstance(payload, dict) and "code" in payload and "msg" in payload and "symbol" not in payload:
        code = payload.get("code")
        if isinstance(code, int) and code != 200:
            return EnvelopeError(
                str(code),
                str(payload.get("msg", "")),
                retryable=code in RETRYABLE_CODES,
                rate_limited=RETRYABLE_CODES.get(code, False),
            )
    return None


# ----------------------------------------------------------------------------------------------- parsers


def _rows(payload: Any, endpoint: str) -> list[Any]:
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        return [payload]
    raise ParseError(VENUE, endpoint, f"expected a JSON array or object, got {type(payload).__name__}")


def _contract_type(entry: Any, endpoint: str) -> str:
    """``contractType``, or what a missing one must have been (see :func:`parse_exchange_info`)."""
    if isinstance(entry, dict) and "contractType" not in entry:
        delivery = entry.get("deliveryDate")
        if delivery is not None:
            return "PERPETUAL" if str(delivery) == str(PERPETUAL_DELIVERY_DATE) else "DELIVERY"
        return "DELIVERY" if "_" in str(field(entry, "symbol", VENUE, endpoint)) else "PERPETUAL"
    return str(field(entry, "contractType", VENUE, endpoint))


def parse_exchange_info(payload: Any, params: Mapping[str, Any] | None = None) -> list[Instrument]:
    """USDT-margined perpetuals (``contractType == "PERPETUAL"``, quote USDT), trading or not.

    ``TRADIFI_PERPETUAL`` (tokenised equities) and delivery contracts are left out; ``tradable`` is
    ``status == "TRADING"``. An entry without ``contractType`` (older exchangeInfo payloads) does not fail the
    listing: it is a perpetual when its ``deliveryDate`` is the perpetual marker (§1.7) or, without one, when its
    symbol has no ``_YYMMDD`` delivery suffix (the only form delivery contracts take). A base asset listed in
    multiples (``1000PEPE``, :data:`MULTIPLIED_ASSETS`) is the asset (``PEPE``) with its multiplier.
    """
    endpoint = EXCHANGE_INFO.name
    symbols = field(payload, "symbols", VENUE, endpoint)
    if not isinstance(symbols, list):
        raise ParseError(VENUE, endpoint, "expected a list", field="symbols")
    result = []
    for entry in symbols:
        if _contract_type(entry, endpoint) != "PERPETUAL":
            continue
        if field(entry, "quoteAsset", VENUE, endpoint) != "USDT":
            continue
        status = str(field(entry, "status", VENUE, endpoint))
        base = str(field(entry, "baseAsset", VENUE, endpoint)).upper()
        symbol, multiplier = MULTIPLIED_ASSETS.get(base, (base, 1.0))
        result.append(
            Instrument(
                venue=VENUE,
                symbol=symbol,
                instrument=str(field(entry, "symbol", VENUE, endpoint)),
                contract_value=None,  # USD-M contracts are denominated in the base asset
                quote="USDT",
                status=status,
                tradable=status == "TRADING",
                multiplier=multiplier,
            )
        )
    return result


def parse_premium_index(payload: Any, params: Mapping[str, Any] | None = None) -> list[MarkPrice]:
    """Mark price and current funding rate; one object (with symbol) or an array (all symbols)."""
    endpoint = PREMIUM_INDEX.name
    result = []
    for row in _rows(payload, endpoint):
        result.append(
            MarkPrice(
                venue=VENUE,
                instrument=str(field(row, "symbol", VENUE, endpoint)),
                ts_ms=timestamp_ms(field(row, "time", VENUE, endpoint), VENUE, endpoint, "time"),
                mark_price=number(
                    field(row, "markPrice", VENUE, endpoint), VENUE, endpoint, "markPrice", required=False
                ),
                funding_rate=optional_number(row, "lastFundingRate", VENUE, endpoint),
            )
        )
    return result


def parse_funding_info(payload: Any, params: Mapping[str, Any] | None = None) -> list[FundingInterval]:
    """The adjusted symbols' ``fundingIntervalHours``; a symbol not listed pays every 8 hours (the spec's
    ``funding_interval_hours``)."""
    endpoint = FUNDING_INFO.name
    return [
        FundingInterval(
            VENUE,
            str(field(row, "symbol", VENUE, endpoint)),
            number(field(row, "fundingIntervalHours", VENUE, endpoint), VENUE, endpoint, "fundingIntervalHours"),
        )
        for row in _rows(payload, endpoint)
    ]


def parse_open_interest(payload: Any, params: Mapping[str, Any] | None = None) -> list[OpenInterest]:
    """Current OI of one symbol, in base-asset units (contracts are coins on USD-M)."""
    endpoint = OPEN_INTEREST.name
    return [
        OpenInterest(
            venue=VENUE,
            instrument=str(field(row, "symbol", VENUE, endpoint)),
            ts_ms=timestamp_ms(field(row, "time", VENUE, endpoint), VENUE, endpoint, "time"),
            coins=number(field(row, "openInterest", VENUE, endpoint), VENUE, endpoint, "openInterest"),
        )
        for row in _rows(payload, endpoint)
    ]


def parse_open_interest_hist(payload: Any, params: Mapping[str, Any] | None = None) -> list[OpenInterestHistory]:
    endpoint = OPEN_INTEREST_HIST.name
    period = str((params or {}).get("period", ""))
    return [
        OpenInterestHistory(
            venue=VENUE,
            key=str(field(row, "symbol", VENUE, endpoint)),
            period=period,
            ts_ms=timestamp_ms(field(row, "timestamp", VENUE, endpoint), VENUE, endpoint, "timestamp"),
            coins=number(field(row, "sumOpenInterest", VENUE, endpoint), VENUE, endpoint, "sumOpenInterest"),
            usd=number(field(row, "sumOpenInterestValue", VENUE, endpoint), VENUE, endpoint, "sumOpenInterestValue"),
        )
        for row in _rows(payload, endpoint)
    ]


def _ratio_parser(endpoint: Endpoint, metric: str):
    def parse(payload: Any, params: Mapping[str, Any] | None = None) -> list[LongShortRatio]:
        """Long/short ratio buckets; USD-M names the shares ``longAccount``/``shortAccount`` on all three."""
        period = str((params or {}).get("period", ""))
        return [
            LongShortRatio(
                venue=VENUE,
                key=str(field(row, "symbol", VENUE, endpoint.name)),
                metric=metric,
                period=period,
                ts_ms=timestamp_ms(field(row, "timestamp", VENUE, endpoint.name), VENUE, endpoint.name, "timestamp"),
                ratio=number(
                    field(row, "longShortRatio", VENUE, endpoint.name), VENUE, endpoint.name, "longShortRatio"
                ),
                long_share=optional_number(row, "longAccount", VENUE, endpoint.name),
                short_share=optional_number(row, "shortAccount", VENUE, endpoint.name),
            )
            for row in _rows(payload, endpoint.name)
        ]

    parse.__name__ = f"parse_{endpoint.name}"
    return parse


def parse_taker_ratio(payload: Any, params: Mapping[str, Any] | None = None) -> list[LongShortRatio]:
    """Taker buy/sell volume buckets of the symbol in ``params["symbol"]`` (the rows name none): ``buySellRatio``
    as sent. ``buyVol``/``sellVol`` stay in the raw file: their unit is undocumented and the docs' own example
    does not divide to its ratio, so they are not held against it."""
    endpoint = TAKER_RATIO.name
    symbol = (params or {}).get("symbol")
    if not symbol:
        raise ParseError(VENUE, endpoint, "the request's symbol is needed to parse this payload", field="symbol")
    period = str((params or {}).get("period", ""))
    return [
        LongShortRatio(
            venue=VENUE,
            key=str(symbol),
            metric="taker_buy_sell",
            period=period,
            ts_ms=timestamp_ms(field(row, "timestamp", VENUE, endpoint), VENUE, endpoint, "timestamp"),
            ratio=number(field(row, "buySellRatio", VENUE, endpoint), VENUE, endpoint, "buySellRatio"),
        )
        for row in _rows(payload, endpoint)
    ]


PARSERS = {
    EXCHANGE_INFO.name: parse_exchange_info,
    PREMIUM_INDEX.name: parse_premium_index,
    OPEN_INTEREST.name: parse_open_interest,
    FUNDING_INFO.name: parse_funding_info,
    OPEN_INTEREST_HIST.name: parse_open_interest_hist,
    **{endpoint.name: _ratio_parser(endpoint, metric) for endpoint, metric in RATIO_ENDPOINTS},
    TAKER_RATIO.name: parse_taker_ratio,
}


# Fields sent as JSON strings: a page with another form (a bare number) is left to the row parser.
STRING_FIELDS = ("sumOpenInterest", "sumOpenInterestValue", "longShortRatio", "longAccount", "shortAccount")


@cache
def frame_parsers() -> dict[str, Any]:
    """The vectorised parsers of the history endpoints, built on first use (polars loads only when parsing)."""
    from positioning.venues.frames import frame_parser

    return {
        OPEN_INTEREST_HIST.name: frame_parser(
            VENUE,
            OPEN_INTEREST_HIST.name,
            {"sumOpenInterest": "coins", "sumOpenInterestValue": "usd"},
            {},
            None,
            string_fields=STRING_FIELDS,
        ),
        **{
            endpoint.name: frame_parser(
                VENUE,
                endpoint.name,
                {"longShortRatio": "ratio"},
                {"longAccount": "long_share", "shortAccount": "short_share"},
                metric,
                string_fields=STRING_FIELDS,
            )
            for endpoint, metric in RATIO_ENDPOINTS
        },
    }


# ---------------------------------------------------------------------------------------------- requests


def ratio_window(request: ExtractRequest) -> dict[str, int]:
    """Buckets covering the interval plus the one before it, so the latest bucket at or before the end exists."""
    period_ms = PERIOD_MS[request.ls_period]
    start = request.interval_start_ms - period_ms
    limit = min(HISTORY_PAGE_LIMIT, math.ceil((request.interval_end_ms - start) / period_ms) + 1)
    return {"startTime": start, "endTime": request.interval_end_ms, "limit": limit}


def past_unavailable() -> dict[str, str]:
    """What this venue cannot give for any past interval (metric -> reason); the bulk fill records it too."""
    return snapshot_only(VENUE, "premiumIndex", ("mark_price", "funding_rate"))


async def extract(client: VenueClient, request: ExtractRequest) -> VenueExtract:
    """exchangeInfo, then for a current interval premiumIndex and fundingInfo (all symbols, one call each) and per
    symbol openInterest, the three ratio endpoints and takerlongshortRatio (Binance has no batch form for them);
    for a past interval per symbol openInterestHist, the ratios and the taker ratio over the interval's window."""
    result, request, _ = await fetch_listing(client, VENUE, LISTING, request)
    if result.fatal:
        return result
    window = ratio_window(request)
    if request.is_past:
        result.history = True
        result.unavailable = past_unavailable()
        gap = request.retention_gap(window["startTime"], HISTORY_RETENTION, f"{VENUE} /futures/data")
        if gap:
            result.unavailable.update({metric: gap for _, metrics in HISTORY_ENDPOINTS for metric in metrics})
            return result
        calls = [
            client.get(endpoint, {"symbol": instrument, "period": request.ls_period, **window}, symbol=symbol)
            for symbol, instrument in result.instruments.items()
            for endpoint, _metrics in HISTORY_ENDPOINTS
        ]
        result.results.extend(await gather_per_symbol(calls))
        return result
    calls = [client.get(PREMIUM_INDEX), client.get(FUNDING_INFO)]
    for symbol, instrument in result.instruments.items():
        calls.append(client.get(OPEN_INTEREST, {"symbol": instrument}, symbol=symbol))
        for endpoint, _metric in BUCKETED_ENDPOINTS:
            params = {"symbol": instrument, "period": request.ls_period, **window}
            calls.append(client.get(endpoint, params, symbol=symbol))
    result.results.extend(await gather_per_symbol(calls))
    return result


LISTING = Listing(EXCHANGE_INFO, None, parse_exchange_info)


def history(ls_period: str) -> list[HistorySeries]:
    """The bulk fill's series: openInterestHist, the three ratios and the taker ratio, ascending pages of 500."""
    period_ms = PERIOD_MS[ls_period]
    return [
        HistorySeries(endpoint, metrics, ls_period, period_ms, HISTORY_RETENTION,
                      AscendingCursor(HISTORY_PAGE_LIMIT, period_ms))
        for endpoint, metrics in HISTORY_ENDPOINTS
    ]  # fmt: skip


SPEC = VenueSpec(
    name=VENUE,
    title="Binance",
    param="includeBinance",
    param_help="Binance USD-M: OI per symbol, mark price, three long/short ratios "
    "(top-trader positions, top-trader accounts, all accounts) and the taker buy/sell volume ratio.",
    public_url="https://fapi.binance.com",
    limits=LIMITS,
    envelope_error=envelope_error,
    listing=LISTING,
    parsers=PARSERS,
    frame_parsers=frame_parsers,
    plan=extract,
    past_unavailable=past_unavailable,
    history=history,
    columns=(
        Column("binance_top_trader_ls", "ls_top_position", seed_average=True),
        Column("binance_top_account_ls", "ls_top_account"),
        Column("binance_global_account_ls", "ls_global_account", seed_average=True),
    ),
    ratio_basis="top_traders_and_accounts",
    colour="#e0a800",
    instrument_oi_history=True,
    funding_interval_hours=DEFAULT_FUNDING_HOURS,
    ratio_endpoints={metric: endpoint.name for endpoint, metric in BUCKETED_ENDPOINTS},
)
