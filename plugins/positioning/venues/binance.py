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

import io
import math
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import polars as pl

from positioning.ingest.extract import (
    PERIOD_MS,
    ExtractRequest,
    VenueExtract,
    fetch_listing,
    gather_per_symbol,
    snapshot_only,
)
from positioning.ingest.http import Endpoint, EnvelopeError, RateLimit, VenueClient
from positioning.rows import (
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

VENUE = "binance"

LIMITS = {
    "weight": RateLimit(2400, 60.0, "§1.0 REQUEST_WEIGHT 2400 / 1 MINUTE / IP"),
    "futures_data": RateLimit(1000, 300.0, "§1.2 /futures/data/* IP rate limit 1000 requests / 5 min"),
}

EXCHANGE_INFO = Endpoint("exchangeInfo", "/fapi/v1/exchangeInfo", {"weight": 1})
PREMIUM_INDEX = Endpoint("premiumIndex", "/fapi/v1/premiumIndex", {"weight": 10})  # 10 without symbol
OPEN_INTEREST = Endpoint("openInterest", "/fapi/v1/openInterest", {"weight": 1})
OPEN_INTEREST_HIST = Endpoint("openInterestHist", "/futures/data/openInterestHist", {"futures_data": 1})
TOP_POSITION_RATIO = Endpoint(
    "topLongShortPositionRatio", "/futures/data/topLongShortPositionRatio", {"futures_data": 1}
)
TOP_ACCOUNT_RATIO = Endpoint("topLongShortAccountRatio", "/futures/data/topLongShortAccountRatio", {"futures_data": 1})
GLOBAL_ACCOUNT_RATIO = Endpoint(
    "globalLongShortAccountRatio", "/futures/data/globalLongShortAccountRatio", {"futures_data": 1}
)
RATIO_ENDPOINTS = (
    (TOP_POSITION_RATIO, "ls_top_position"),
    (TOP_ACCOUNT_RATIO, "ls_top_account"),
    (GLOBAL_ACCOUNT_RATIO, "ls_global_account"),
)
HISTORY_PAGE_LIMIT = 500  # §1.2 "max 500"
HISTORY_RETENTION = timedelta(days=30)  # §1.2 "Only the data of the latest 30 days is available"
HISTORY_ENDPOINTS = ((OPEN_INTEREST_HIST, ("oi_coins", "oi_usd")), *((e, (m,)) for e, m in RATIO_ENDPOINTS))
PERPETUAL_DELIVERY_DATE = 4133404800000  # §1.7: a perp with another deliveryDate is scheduled for delisting
RETRYABLE_CODES = {-1003: True, -1001: False, -1007: False}  # code -> means "rate limited"


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


def parse_exchange_info(payload: Any, params: Mapping[str, Any] | None = None) -> list[Instrument]:
    """USDT-margined perpetuals (``contractType == "PERPETUAL"``, quote USDT), trading or not.

    ``TRADIFI_PERPETUAL`` (tokenised equities) and delivery contracts are left out; ``tradable`` is
    ``status == "TRADING"``.
    """
    endpoint = EXCHANGE_INFO.name
    symbols = field(payload, "symbols", VENUE, endpoint)
    if not isinstance(symbols, list):
        raise ParseError(VENUE, endpoint, "expected a list", field="symbols")
    result = []
    for entry in symbols:
        if field(entry, "contractType", VENUE, endpoint) != "PERPETUAL":
            continue
        if field(entry, "quoteAsset", VENUE, endpoint) != "USDT":
            continue
        status = str(field(entry, "status", VENUE, endpoint))
        result.append(
            Instrument(
                venue=VENUE,
                symbol=str(field(entry, "baseAsset", VENUE, endpoint)).upper(),
                instrument=str(field(entry, "symbol", VENUE, endpoint)),
                contract_value=None,  # USD-M contracts are denominated in the base coin
                quote="USDT",
                status=status,
                tradable=status == "TRADING",
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


PARSERS = {
    EXCHANGE_INFO.name: parse_exchange_info,
    PREMIUM_INDEX.name: parse_premium_index,
    OPEN_INTEREST.name: parse_open_interest,
    OPEN_INTEREST_HIST.name: parse_open_interest_hist,
    **{endpoint.name: _ratio_parser(endpoint, metric) for endpoint, metric in RATIO_ENDPOINTS},
}


# ------------------------------------------------------------------------------------ vectorised parsers
# The history endpoints in bulk: many pages per polars call, the same frames as the row parsers above (then
# ``normalize._frame``). A page is taken only if every value is in a form whose meaning is certain (numeric
# strings both ``float()`` and polars read alike, letter-led symbols, integer timestamps); any other page is
# "rejected" and the caller parses it with the row parser, so errors and edge cases stay the row parser's.

_NUMBER = r"^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:nan|inf|infinity))$"
_SYMBOL = r"^[A-Za-z][A-Za-z0-9_.\-]*$"
_NOT_SYMBOLS = ["true", "false", "null", "nan", "inf", "infinity"]
# A value sent other than as a JSON string (a bare number's text would have to convert exactly as float() does):
# the page is left to the row parser. Every occurrence of the quoted field name must open a string or null.
_VALUE_FIELDS = ("sumOpenInterest", "sumOpenInterestValue", "longShortRatio", "longAccount", "shortAccount")
# Pages are decoded together by one ``str.json_decode`` call: an exception there (one page that is not an array
# of objects) sends the batch through one ``read_json`` per page instead, which isolates the odd page.
PAGE_COLUMNS = {"body": pl.String, "period": pl.String}
DECODE_PAGES = 64  # pages per json_decode chunk (a page is at most 500 rows, ~40 KB)


def _not_all_strings(names: Sequence[str]) -> pl.Expr:
    """True for a page where an occurrence of one of the quoted ``names`` is followed by something other than
    ``:"``, ``: "``, ``:null`` or ``: null``, in one regex pass per page."""
    if not names:
        return pl.lit(False)
    alternatives = "|".join(names)
    odd_value = r'(?:[^ "n]|n(?:[^u]|u[^l]|ul[^l]|$|u$|ul$)| (?:[^"n]|n(?:[^u]|u[^l]|ul[^l]|$|u$|ul$))|$| $)'
    return pl.col("body").str.contains(f'"(?:{alternatives})"(?:[^:]|$|:{odd_value})')


def _frame_parser(endpoint: str, required: dict[str, str], optional: dict[str, str], metric: str | None):
    """``parse(pages) -> (frame, rejected)``: pages are ``(body_text, params)`` pairs, or a frame of
    :data:`PAGE_COLUMNS` (``body``, and ``period`` from the request's params); the frame has the row type's
    columns plus ``_page`` (index into ``pages``); ``rejected`` lists the pages the row parser must take."""
    fields = ["symbol", "timestamp", *required, *optional]
    schema = dict.fromkeys(fields, pl.String)
    page_type = pl.List(pl.Struct(schema))
    as_number = {name: pl.col(name).cast(pl.Float64, strict=False) for name in fields}

    def valid(name: str) -> pl.Expr:
        return pl.col(name).str.contains(_NUMBER) & as_number[name].is_not_null()

    ts = as_number["timestamp"]
    ok = (
        pl.col("symbol").str.contains(_SYMBOL)
        & ~pl.col("symbol").str.to_lowercase().is_in(_NOT_SYMBOLS)
        & valid("timestamp")
        & ts.is_finite()
        & (ts >= 0)
        & ts.cast(pl.Int64, strict=False).is_not_null()
    )
    for name in required:
        ok = ok & valid(name)
    for name in optional:
        ok = ok & (pl.col(name).is_null() | (pl.col(name) == "") | valid(name))

    def value(name: str) -> pl.Expr:
        return pl.when(pl.col(name) != "").then(as_number[name])

    columns: dict[str, pl.Expr] = {
        "venue": pl.lit(VENUE),
        "key": pl.col("symbol"),
        **({"metric": pl.lit(metric)} if metric else {}),
        "period": pl.col("period"),
        "ts_ms": ts.cast(pl.Int64),
        **{column: value(name) for name, column in {**required, **optional}.items()},
        **({} if metric else {"contracts": pl.lit(None, pl.Float64)}),
        "_page": pl.col("_page"),
    }

    values = [name for name in (*required, *optional) if name in _VALUE_FIELDS]
    # Row validity first, then the window over pages on a plain column (a window over the whole expression is
    # evaluated group by group, several times slower).
    page_ok = pl.col("_row_ok").all().over("_page")
    empty = pl.DataFrame(schema={**schema, "_page": pl.Int64, "period": pl.String})

    def decoded_together(pages: pl.DataFrame) -> pl.DataFrame | None:
        """Rows of every page (``_page``, ``period``, the fields), or None if one page is not an array of objects."""
        # In chunks of a few MB: json_decode over one large chunk holds ~10x the text in memory while it works.
        chunked = pl.concat(
            [pages.slice(start, DECODE_PAGES) for start in range(0, pages.height, DECODE_PAGES)] or [pages],
            rechunk=False,
        )
        try:
            return (
                chunked.select(pl.col("_page"), pl.col("period"), rows=pl.col("body").str.json_decode(page_type))
                .explode("rows")
                .unnest("rows")
            )
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException):
            return None

    def decoded_one_by_one(pages: pl.DataFrame) -> tuple[pl.DataFrame, list[int]]:
        frames, rejected = [], []
        for index, period, body in pages.select("_page", "period", "body").iter_rows():
            try:
                page = pl.read_json(io.StringIO(body), schema=schema)
            except (Exception, pl.exceptions.PanicException):
                rejected.append(index)
                continue
            frames.append(page.with_columns(_page=pl.lit(index, pl.Int64), period=pl.lit(period, pl.String)))
        rows = pl.concat(frames, how="diagonal_relaxed") if frames else empty
        return rows.select(empty.columns), rejected

    def parse(pages: Sequence[tuple[str, Mapping[str, Any] | None]] | pl.DataFrame) -> tuple[pl.DataFrame, list[int]]:
        if not isinstance(pages, pl.DataFrame):
            pages = pl.DataFrame(
                {
                    "body": [body for body, _params in pages],
                    "period": [str((params or {}).get("period", "")) for _body, params in pages],
                },
                schema=PAGE_COLUMNS,
            )
        pages = pages.with_row_index("_page").with_columns(pl.col("_page").cast(pl.Int64))
        odd = pages.select(_not_all_strings(values).fill_null(True) | pl.col("body").is_null()).to_series()
        rejected = pages.filter(odd)["_page"].to_list()
        pages = pages.filter(~odd)
        rows = decoded_together(pages)
        if rows is None:
            rows, unreadable = decoded_one_by_one(pages)
            rejected += unreadable
        # An empty page ("[]", or something the reader took for nothing) is left for the row parser to decide;
        # explode turns it into one all-null row, which the checks below reject with its page.
        rows = rows.select(empty.columns).with_columns(_row_ok=ok.fill_null(False)).with_columns(_ok=page_ok)
        if not rows["_ok"].all():
            rejected = sorted({*rejected, *rows.filter(~pl.col("_ok"))["_page"].unique().to_list()})
            rows = rows.filter(pl.col("_ok"))
        return rows.select(**columns), sorted(rejected)

    parse.__name__ = f"frame_parse_{endpoint}"
    return parse


FRAME_PARSERS = {
    OPEN_INTEREST_HIST.name: _frame_parser(
        OPEN_INTEREST_HIST.name, {"sumOpenInterest": "coins", "sumOpenInterestValue": "usd"}, {}, None
    ),
    **{
        endpoint.name: _frame_parser(
            endpoint.name,
            {"longShortRatio": "ratio"},
            {"longAccount": "long_share", "shortAccount": "short_share"},
            metric,
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
    """exchangeInfo, then for a current interval premiumIndex (all symbols, one call) and per symbol openInterest
    and the three ratio endpoints (Binance has no batch form for them); for a past interval per symbol
    openInterestHist and the three ratio endpoints over the interval's window (:func:`history_calls`)."""
    result, request, _ = await fetch_listing(client, VENUE, EXCHANGE_INFO, None, parse_exchange_info, request)
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
    calls = [client.get(PREMIUM_INDEX)]
    for symbol, instrument in result.instruments.items():
        calls.append(client.get(OPEN_INTEREST, {"symbol": instrument}, symbol=symbol))
        for endpoint, _metric in RATIO_ENDPOINTS:
            params = {"symbol": instrument, "period": request.ls_period, **window}
            calls.append(client.get(endpoint, params, symbol=symbol))
    result.results.extend(await gather_per_symbol(calls))
    return result
