"""Bitget v2 USDT-M futures (mix): endpoints, limits, error envelope, request plan and pure parsers (venues.md §3).

Wire format: ``{"code": "00000", "msg": "success", "requestTime": <number>, "data": ...}``; the success code is
the string ``"00000"``, values inside ``data`` are strings (timestamps as string ms) and some are JSON ``null``
(``deliveryStartTime`` on perps). ``data`` is an array on most endpoints but an object on ``open-interest``.
Errors use the same envelope with HTTP 400 (``40034`` unknown symbol) or 429 (``"code": "429"``); during the
weekly release window the API may answer ``45001``/``40725``/``40808``/``40015``, which are worth retrying.

``tickers`` carries OI (``holdingAmount``, base coins), mark price and funding rate of every symbol in one call,
so its parser returns two row kinds (OpenInterest and MarkPrice); the loader dispatches on row type.
The three long/short endpoints are per symbol at 1 request/s each (the tightest limit of all venues), and their
rows carry no symbol, so their parsers take it from the request ``params``.

Past intervals (see ``positioning.ingest.extract``): Bitget keeps no public history of OI (§3.9) and its long/short
endpoints take no time range (a short recent series only), so a past run fetches the contract listing (for the
venue's clock and the symbol mapping) and records every metric as "not available for this interval".
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from positioning.ingest.endpoints import Endpoint, EnvelopeError, coded_envelope_error
from positioning.ingest.limits import RateLimit
from positioning.rows import (
    FundingInterval,
    Instrument,
    LongShortRatio,
    MarkPrice,
    OpenInterest,
    ParseError,
    field,
    number,
    optional_number,
    timestamp_ms,
)
from positioning.venues.base import (
    Column,
    ExtractRequest,
    Listing,
    VenueExtract,
    VenueSpec,
    fetch_listing,
    gather_per_symbol,
    snapshot_only,
)

if TYPE_CHECKING:
    from positioning.ingest.http import FetchResult, VenueClient


VENUE = "bitget"
# What a current run stores from this venue; none of it has a history endpoint.
PAST_UNAVAILABLE = ("oi_coins", "oi_usd", "mark_price", "funding_rate", "ls_account")

# "The rate limit of each API interface is calculated independently" plus an overall cap every call consumes.
LIMITS = {
    "contracts": RateLimit(20, 1.0, "§3.5 20 req / s / IP"),
    "tickers": RateLimit(20, 1.0, "§3.2 20 times / 1 s (IP)"),
    "open-interest": RateLimit(20, 1.0, "§3.1 20 times / 1 s (IP)"),
    "account-long-short": RateLimit(1, 1.0, "§3.6 1 req / s (IP)"),
    "position-long-short": RateLimit(1, 1.0, "§3.7 1 req / s (IP)"),
    "long-short": RateLimit(1, 1.0, "§3.8 1 req / 1 s (IP)"),
    "overall": RateLimit(6000, 60.0, "§3.0 overall rate limit 6000 / IP / min"),
}

PRODUCT_TYPE = "USDT-FUTURES"
USDT_FUTURES = {"productType": PRODUCT_TYPE}

CONTRACTS = Endpoint("contracts", "/api/v2/mix/market/contracts", {"contracts": 1, "overall": 1})
TICKERS = Endpoint("tickers", "/api/v2/mix/market/tickers", {"tickers": 1, "overall": 1})
OPEN_INTEREST = Endpoint("open-interest", "/api/v2/mix/market/open-interest", {"open-interest": 1, "overall": 1})
ACCOUNT_LONG_SHORT = Endpoint(
    "account-long-short", "/api/v2/mix/market/account-long-short", {"account-long-short": 1, "overall": 1}
)
POSITION_LONG_SHORT = Endpoint(
    "position-long-short", "/api/v2/mix/market/position-long-short", {"position-long-short": 1, "overall": 1}
)
LONG_SHORT = Endpoint("long-short", "/api/v2/mix/market/long-short", {"long-short": 1, "overall": 1})

SUCCESS_CODE = "00000"
# code -> is it a rate limit (pauses the whole venue). 45001/40725/40808/40015: weekly release window (§3.0).
# Anything else (40034 unknown symbol, 40019 missing parameter...) would only fail again.
RETRYABLE_CODES = {"429": True, "45001": False, "40725": False, "40808": False, "40015": False}
DEFAULT_PERIOD = "5m"  # what the long/short endpoints use when no period is sent


def envelope_error(payload: Any) -> EnvelopeError | None:
    """Bitget errors: ``{"code": "<not 00000>", "msg": "...", "data": null}``."""
    return coded_envelope_error(payload, SUCCESS_CODE, RETRYABLE_CODES)


def long_short_period(ls_period: str) -> str:
    """The ``long-short`` endpoint spells one day ``1Dutc``; the other periods are spelled like Binance's."""
    return "1Dutc" if ls_period == "1d" else ls_period


# ----------------------------------------------------------------------------------------------- parsers


def _data(payload: Any, endpoint: str) -> Any:
    """The ``data`` of a success envelope; an error envelope is a ParseError."""
    code = field(payload, "code", VENUE, endpoint)
    if str(code) != SUCCESS_CODE:
        raise ParseError(VENUE, endpoint, f"error envelope code {code!r}: {payload.get('msg', '')!r}", field="code")
    return field(payload, "data", VENUE, endpoint)


def _data_list(payload: Any, endpoint: str) -> list[Any]:
    data = _data(payload, endpoint)
    if not isinstance(data, list):
        raise ParseError(VENUE, endpoint, f"expected a list, got {type(data).__name__}", field="data")
    return data


def _text(obj: Any, name: str, endpoint: str) -> str:
    value = field(obj, name, VENUE, endpoint)
    if value is None or value == "":
        raise ParseError(VENUE, endpoint, "required value is empty", field=name)
    return str(value)


def parse_contracts(payload: Any, params: Mapping[str, Any] | None = None) -> list[Instrument]:
    """USDT perpetuals (``quoteCoin == "USDT"``, ``symbolType == "perpetual"``), trading or not.

    Sizes are in base coins on Bitget, so ``contract_value`` is None. ``tradable`` is ``symbolStatus ==
    "normal"`` (listed, maintain, limit_open, restrictedAPI and off are not trading).
    """
    endpoint = CONTRACTS.name
    result = []
    for entry in _data_list(payload, endpoint):
        if field(entry, "quoteCoin", VENUE, endpoint) != "USDT":
            continue
        if field(entry, "symbolType", VENUE, endpoint) != "perpetual":
            continue
        status = _text(entry, "symbolStatus", endpoint)
        result.append(
            Instrument(
                venue=VENUE,
                symbol=_text(entry, "baseCoin", endpoint).upper(),
                instrument=_text(entry, "symbol", endpoint),
                contract_value=None,
                quote="USDT",
                status=status,
                tradable=status == "normal",
            )
        )
    return result


def parse_contracts_funding(payload: Any, params: Mapping[str, Any] | None = None) -> list[Any]:
    """The listing's instruments, then the funding interval of each (``fundInterval`` hours: 1, 2, 4 or 8);
    what the loader reads from the listing response (the plan needs only the instruments)."""
    endpoint = CONTRACTS.name
    instruments = parse_contracts(payload, params)
    listed = {instrument.instrument for instrument in instruments}
    intervals = [
        FundingInterval(VENUE, entry["symbol"], hours)
        for entry in _data_list(payload, endpoint)
        if entry.get("symbol") in listed and (hours := optional_number(entry, "fundInterval", VENUE, endpoint))
    ]
    return [*instruments, *intervals]


def parse_tickers(payload: Any, params: Mapping[str, Any] | None = None) -> list[OpenInterest | MarkPrice]:
    """Every symbol's OI (``holdingAmount``, base coins) and mark price + funding rate: OpenInterest rows
    followed by MarkPrice rows. Nullable fields the project does not use (``deliveryStartTime``...) are ignored."""
    endpoint = TICKERS.name
    open_interest: list[OpenInterest] = []
    marks: list[MarkPrice] = []
    for row in _data_list(payload, endpoint):
        instrument = _text(row, "symbol", endpoint)
        ts_ms = timestamp_ms(field(row, "ts", VENUE, endpoint), VENUE, endpoint, "ts")
        open_interest.append(
            OpenInterest(
                venue=VENUE,
                instrument=instrument,
                ts_ms=ts_ms,
                coins=number(field(row, "holdingAmount", VENUE, endpoint), VENUE, endpoint, "holdingAmount"),
            )
        )
        marks.append(
            MarkPrice(
                venue=VENUE,
                instrument=instrument,
                ts_ms=ts_ms,
                mark_price=optional_number(row, "markPrice", VENUE, endpoint),
                funding_rate=optional_number(row, "fundingRate", VENUE, endpoint),
            )
        )
    return [*open_interest, *marks]


def parse_open_interest(payload: Any, params: Mapping[str, Any] | None = None) -> list[OpenInterest]:
    """One symbol's OI in base coins. ``data`` is an object here: ``{"openInterestList": [...], "ts": "..."}``."""
    endpoint = OPEN_INTEREST.name
    data = _data(payload, endpoint)
    entries = field(data, "openInterestList", VENUE, endpoint)
    if not isinstance(entries, list):
        raise ParseError(VENUE, endpoint, f"expected a list, got {type(entries).__name__}", field="openInterestList")
    ts_ms = timestamp_ms(field(data, "ts", VENUE, endpoint), VENUE, endpoint, "ts")
    return [
        OpenInterest(
            venue=VENUE,
            instrument=_text(entry, "symbol", endpoint),
            ts_ms=ts_ms,
            coins=number(field(entry, "size", VENUE, endpoint), VENUE, endpoint, "size"),
        )
        for entry in entries
    ]


def _long_short_parser(endpoint: Endpoint, metric: str, long_name: str, short_name: str, ratio_name: str):
    def parse(payload: Any, params: Mapping[str, Any] | None = None) -> list[LongShortRatio]:
        """Long/short buckets of the symbol in ``params["symbol"]`` (the rows carry none), oldest first."""
        name = endpoint.name
        symbol = (params or {}).get("symbol")
        if not symbol:
            raise ParseError(VENUE, name, "the request parameter is needed to parse this payload", field="symbol")
        period = str((params or {}).get("period") or DEFAULT_PERIOD)
        rows = [
            LongShortRatio(
                venue=VENUE,
                key=str(symbol),
                metric=metric,
                period=period,
                ts_ms=timestamp_ms(field(row, "ts", VENUE, name), VENUE, name, "ts"),
                ratio=number(field(row, ratio_name, VENUE, name), VENUE, name, ratio_name),
                long_share=optional_number(row, long_name, VENUE, name),
                short_share=optional_number(row, short_name, VENUE, name),
            )
            for row in _data_list(payload, name)
        ]
        return sorted(rows, key=lambda row: row.ts_ms)  # row order is undocumented (§3.8)

    parse.__name__ = f"parse_{endpoint.name.replace('-', '_')}"
    return parse


parse_account_long_short = _long_short_parser(
    ACCOUNT_LONG_SHORT, "ls_account", "longAccountRatio", "shortAccountRatio", "longShortAccountRatio"
)
parse_position_long_short = _long_short_parser(
    POSITION_LONG_SHORT, "ls_position", "longPositionRatio", "shortPositionRatio", "longShortPositionRatio"
)
parse_long_short = _long_short_parser(LONG_SHORT, "ls_volume", "longRatio", "shortRatio", "longShortRatio")

PARSERS = {
    CONTRACTS.name: parse_contracts_funding,
    TICKERS.name: parse_tickers,
    OPEN_INTEREST.name: parse_open_interest,
    ACCOUNT_LONG_SHORT.name: parse_account_long_short,
    POSITION_LONG_SHORT.name: parse_position_long_short,
    LONG_SHORT.name: parse_long_short,
}


# ---------------------------------------------------------------------------------------------- requests


def _instruments_with_oi(tickers: FetchResult) -> set[str] | None:
    """The instruments whose OI the tickers response carries, or None if it failed or cannot be parsed."""
    if not tickers.ok:
        return None
    try:
        rows = parse_tickers(tickers.payload)
    except ParseError:
        return None
    return {row.instrument for row in rows if isinstance(row, OpenInterest)}


async def _open_interest(client: VenueClient, instruments: Mapping[str, str]) -> list[FetchResult]:
    """tickers (all symbols, one call); per-symbol open-interest only for what it did not deliver, so OI is not
    lost because one batch call failed."""
    tickers = await client.get(TICKERS, USDT_FUTURES)
    covered = _instruments_with_oi(tickers) or set()
    fallback = [
        client.get(OPEN_INTEREST, {"symbol": instrument, **USDT_FUTURES}, symbol=symbol)
        for symbol, instrument in instruments.items()
        if instrument not in covered
    ]
    return [tickers, *await gather_per_symbol(fallback)]


def past_unavailable() -> dict[str, str]:
    """What this venue cannot give for any past interval (metric -> reason); the bulk fill records it too."""
    return snapshot_only(VENUE, "public API", PAST_UNAVAILABLE)


async def extract(client: VenueClient, request: ExtractRequest) -> VenueExtract:
    """contracts, tickers (one call each; per-symbol open-interest as fallback), then per listed symbol
    account-long-short only: at 1 request/s per endpoint the other two ratio endpoints would not add a metric
    the snapshot uses, only time."""
    result, request, _ = await fetch_listing(client, VENUE, LISTING, request)
    if result.fatal:
        return result
    if request.is_past:
        result.history = True
        result.unavailable = past_unavailable()
        return result
    ratio_calls = [
        client.get(ACCOUNT_LONG_SHORT, {"symbol": instrument, "period": request.ls_period}, symbol=symbol)
        for symbol, instrument in result.instruments.items()
    ]
    open_interest, ratios = await asyncio.gather(
        _open_interest(client, result.instruments), gather_per_symbol(ratio_calls)
    )
    result.results.extend([*open_interest, *ratios])
    return result


LISTING = Listing(CONTRACTS, USDT_FUTURES, parse_contracts)


SPEC = VenueSpec(
    name=VENUE,
    title="Bitget",
    param="includeBitget",
    param_help="Bitget USDT-FUTURES: OI and mark from one tickers call, account long/short ratio "
    "(1 request/s per symbol: about 50 s for 50 symbols).",
    public_url="https://api.bitget.com",
    limits=LIMITS,
    envelope_error=envelope_error,
    listing=LISTING,
    parsers=PARSERS,
    plan=extract,
    past_unavailable=past_unavailable,
    columns=(Column("bitget_ls", "ls_account"),),
    ratio_endpoints={
        "ls_account": ACCOUNT_LONG_SHORT.name,
        "ls_position": POSITION_LONG_SHORT.name,
        "ls_volume": LONG_SHORT.name,
    },
    colour="#0891b2",
)
