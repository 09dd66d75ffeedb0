"""Bybit v5 linear (USDT perpetuals): endpoints, limits, error envelope, request plan and pure parsers
(venues-more.md §1).

Wire format: ``{"retCode": 0, "retMsg": "OK", "result": {...}, "retExtInfo": {}, "time": <ms number>}``; inside
``result`` every value is a string, ms timestamps included; rows sit in ``result.list``, newest first on the
history endpoints, with ``result.nextPageCursor`` (``""`` on the last page; sent already percent-encoded).

Open interest counts **both sides** in ``openInterest``/``openInterestValue`` (§1.2); the other venues report
one side, so this adapter stores one side: ``singleOpenInterest*`` when present, else half of the both-sides
figure (design.md "OI in USD per venue"). The long/short ratio is the account ratio (all holders): the payload
has only the shares, ``buyRatio / sellRatio`` is computed here.

Limits: one IP limit of 600 requests / 5 s for everything; a breach answers HTTP 403 "access too frequent"
(possibly an HTML page) and bans the IP for at least 10 minutes, so the client holds a lower ceiling and a 403
is never retried. ``retCode`` 10006 is the API limit (retried, pauses the venue); 10016/10000 are server trouble
(retried); 10001 (bad parameter) and 10029 (symbol not whitelisted) would only fail again.

Past intervals: ``/v5/market/open-interest`` (coins only, per symbol, back to the symbol's launch) and the
account ratio over the same window as a current run. The OI history has no USD value and this adapter asks for no
price history, so a past interval's ``oi_usd``, mark price and funding rate are "not available".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from positioning.ingest.endpoints import Endpoint, EnvelopeError
from positioning.ingest.limits import RateLimit
from positioning.periods import PERIOD_MS, largest_fitting
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
    MAX_PAGES,
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
    from positioning.ingest.http import FetchResult, VenueClient


VENUE = "bybit"

# §1.0: 600 requests / 5 s / IP for all of api.bybit.com. Held at 500: a breach costs a >= 10-minute ban of every
# Bybit call from this IP, and a run needs about 52 calls for 50 symbols, so the margin costs nothing.
LIMITS = {"ip": RateLimit(500, 5.0, "§1.0 600 requests / 5 s / IP (held at 500: a breach bans >= 10 min)")}

INSTRUMENTS_INFO = Endpoint("instruments-info", "/v5/market/instruments-info", {"ip": 1})
TICKERS = Endpoint("tickers", "/v5/market/tickers", {"ip": 1})
ACCOUNT_RATIO = Endpoint("account-ratio", "/v5/market/account-ratio", {"ip": 1})
OPEN_INTEREST = Endpoint("open-interest", "/v5/market/open-interest", {"ip": 1})

LINEAR = {"category": "linear"}
LISTING_PAGE_LIMIT = 1000  # §1.1 max; the default 500 no longer covers every linear symbol
RATIO_PAGE_LIMIT = 500  # §1.4 [1, 500]
OI_PAGE_LIMIT = 200  # §1.3 [1, 200]
# §1.3 "back to the launch time of the symbol", §1.4 "earliest July 20, 2020": no rolling retention. A long one
# stands in so the bulk fill's retention arithmetic needs no special case.
HISTORY_RETENTION = timedelta(days=3650)
# lsPeriod -> Bybit's spelling (§1.3, §1.4: "5min", not "5m"). 2h does not exist on Bybit.
PERIODS = {"5m": "5min", "15m": "15min", "30m": "30min", "1h": "1h", "4h": "4h", "1d": "1d"}
PERIOD_LENGTH_MS = {spelling: PERIOD_MS[ours] for ours, spelling in PERIODS.items()}

# retCode -> is it a rate limit (pauses the whole venue). 10006 API limit; 10016 server error; 10000 timeout.
# 10001 (parameter error, unknown symbol) and 10029 (symbol not whitelisted) would only fail again.
RETRYABLE_CODES = {"10006": True, "10016": False, "10000": False}
# Assets Bybit lists in multiples: baseCoin -> (the asset, coins per unit). Data, not a rule: the multiplier is in
# the name only (§1.1), on either side (1000PEPE, SHIB1000), and a leading digit alone is no multiplier (1INCH).
MULTIPLIED_ASSETS = {
    **{f"1000{asset}": (asset, 1000.0) for asset in (
        "PEPE", "BONK", "FLOKI", "LUNC", "XEC", "BTT", "TURBO", "CATS", "RATS", "SATS", "CAT", "NEIRO",
    )},
    "SHIB1000": ("SHIB", 1000.0),
    "1000000MOG": ("MOG", 1_000_000.0),
    "10000LADYS": ("LADYS", 10_000.0),
}  # fmt: skip
# §1.1 symbolType: tokenised equities, commodities and forex are not crypto assets' positioning; left out.
CRYPTO_SYMBOL_TYPES = ("", None)


def envelope_error(payload: Any) -> EnvelopeError | None:
    """Bybit errors: ``{"retCode": <non-zero>, "retMsg": "...", ...}`` (HTTP 200 presumably; match on retCode)."""
    if not isinstance(payload, dict) or "retCode" not in payload:
        return None
    code = str(payload.get("retCode"))
    if code == "0":
        return None
    return EnvelopeError(
        code,
        str(payload.get("retMsg", "")),
        retryable=code in RETRYABLE_CODES,
        rate_limited=RETRYABLE_CODES.get(code, False),
    )


def account_ratio_period(ls_period: str) -> str | None:
    """Bybit's spelling of an lsPeriod, or None where Bybit has no such period (2h)."""
    return PERIODS.get(ls_period)


def open_interest_period(ls_period: str) -> str:
    """The OI history period: the lsPeriod's own, else the largest Bybit offers below it (2h -> 1h). OI is a
    reading at the bucket's time, so a finer bucket is a fresher reading of the same quantity."""
    return PERIODS.get(ls_period) or largest_fitting(ls_period, PERIOD_LENGTH_MS)


# ----------------------------------------------------------------------------------------------- parsers


def _result(payload: Any, endpoint: str) -> dict[str, Any]:
    """The ``result`` of a success envelope; an error envelope or another shape is a ParseError."""
    code = field(payload, "retCode", VENUE, endpoint)
    if str(code) != "0":
        raise ParseError(VENUE, endpoint, f"error envelope retCode {code!r}: {payload.get('retMsg', '')!r}",
                         field="retCode")  # fmt: skip
    result = field(payload, "result", VENUE, endpoint)
    if not isinstance(result, dict):
        raise ParseError(VENUE, endpoint, f"expected an object, got {type(result).__name__}", field="result")
    return result


def _list(payload: Any, endpoint: str) -> list[Any]:
    rows = field(_result(payload, endpoint), "list", VENUE, endpoint)
    if not isinstance(rows, list):
        raise ParseError(VENUE, endpoint, f"expected a list, got {type(rows).__name__}", field="list")
    return rows


def _text(obj: Any, name: str, endpoint: str) -> str:
    value = field(obj, name, VENUE, endpoint)
    if value is None or value == "":
        raise ParseError(VENUE, endpoint, "required value is empty", field=name)
    return str(value)


def _one_side(row: Any, single: str, both: str, endpoint: str) -> float:
    """One side of the OI: ``single`` when sent (since 2026-06-11), else half of the both-sides ``both``."""
    value = optional_number(row, single, VENUE, endpoint)
    if value is not None:
        return value
    both_sides = number(field(row, both, VENUE, endpoint), VENUE, endpoint, both)
    assert both_sides is not None
    return both_sides / 2


def next_cursor(payload: Any) -> str | None:
    """The next page's cursor, decoded (it arrives percent-encoded and the client encodes it once), or None."""
    result = payload.get("result") if isinstance(payload, dict) else None
    cursor = result.get("nextPageCursor") if isinstance(result, dict) else None
    return unquote(str(cursor)) if cursor else None


def parse_instruments_info(payload: Any, params: Mapping[str, Any] | None = None) -> list[Instrument]:
    """USDT perpetuals (``contractType == "LinearPerpetual"``, ``quoteCoin == "USDT"``, crypto ``symbolType``)
    of one page, trading or not: ``tradable`` is ``status == "Trading"`` (PreLaunch, Delivering and Closed are
    listed but not trading). A base listed in multiples (``1000PEPE``, ``SHIB1000``) is the asset with its
    multiplier (:data:`MULTIPLIED_ASSETS`)."""
    endpoint = INSTRUMENTS_INFO.name
    result = []
    for entry in _list(payload, endpoint):
        if field(entry, "contractType", VENUE, endpoint) != "LinearPerpetual":
            continue
        if field(entry, "quoteCoin", VENUE, endpoint) != "USDT" or entry.get("symbolType") not in CRYPTO_SYMBOL_TYPES:
            continue
        status = _text(entry, "status", endpoint)
        symbol, multiplier = MULTIPLIED_ASSETS.get(_text(entry, "baseCoin", endpoint).upper(), (None, 1.0))
        result.append(
            Instrument(
                venue=VENUE,
                symbol=symbol or _text(entry, "baseCoin", endpoint).upper(),
                instrument=_text(entry, "symbol", endpoint),
                contract_value=None,  # linear sizes are in the base coin
                quote="USDT",
                status=status,
                tradable=status == "Trading",
                multiplier=multiplier,
            )
        )
    return result


def next_listing_page(payload: Any, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """instruments-info pages until ``nextPageCursor`` is ``""``."""
    cursor = next_cursor(payload)
    return {**params, "cursor": cursor} if cursor else None


def parse_tickers(payload: Any, params: Mapping[str, Any] | None = None) -> list[Any]:
    """Every linear symbol's OI (one side, coins and USD: see the module docstring), mark price and funding rate
    (per ``fundingIntervalHour``; ``""`` on dated futures -> None): OpenInterest rows, MarkPrice rows, then the
    FundingInterval of every row that has one. The rows carry no time; the envelope's ``time`` (a number) is the
    time of all of them."""
    endpoint = TICKERS.name
    rows = _list(payload, endpoint)
    ts_ms = timestamp_ms(field(payload, "time", VENUE, endpoint), VENUE, endpoint, "time")
    open_interest: list[OpenInterest] = []
    marks: list[MarkPrice] = []
    intervals: list[FundingInterval] = []
    for row in rows:
        instrument = _text(row, "symbol", endpoint)
        hours = optional_number(row, "fundingIntervalHour", VENUE, endpoint)
        if hours:
            intervals.append(FundingInterval(VENUE, instrument, hours))
        open_interest.append(
            OpenInterest(
                venue=VENUE,
                instrument=instrument,
                ts_ms=ts_ms,
                coins=_one_side(row, "singleOpenInterest", "openInterest", endpoint),
                usd=_one_side(row, "singleOpenInterestValue", "openInterestValue", endpoint),
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
    return [*open_interest, *marks, *intervals]


def parse_account_ratio(payload: Any, params: Mapping[str, Any] | None = None) -> list[LongShortRatio]:
    """Account long/short buckets, oldest first: ratio = ``buyRatio / sellRatio`` (the payload has no ratio)."""
    endpoint = ACCOUNT_RATIO.name
    period = str((params or {}).get("period") or "")
    result = []
    for row in _list(payload, endpoint):
        buy = number(field(row, "buyRatio", VENUE, endpoint), VENUE, endpoint, "buyRatio")
        sell = number(field(row, "sellRatio", VENUE, endpoint), VENUE, endpoint, "sellRatio")
        assert buy is not None and sell is not None
        result.append(
            LongShortRatio(
                venue=VENUE,
                key=_text(row, "symbol", endpoint),
                metric="ls_account",
                period=period,
                ts_ms=timestamp_ms(field(row, "timestamp", VENUE, endpoint), VENUE, endpoint, "timestamp"),
                # No sellers at all is a real (if odd) reading: kept as inf for the quality gate to judge.
                ratio=buy / sell if sell else math.inf,
                long_share=buy,
                short_share=sell,
            )
        )
    return sorted(result, key=lambda row: row.ts_ms)


def parse_open_interest(payload: Any, params: Mapping[str, Any] | None = None) -> list[OpenInterestHistory]:
    """OI history of one symbol (``result.symbol``), one side in coins, oldest first; no USD in this payload."""
    endpoint = OPEN_INTEREST.name
    result = _result(payload, endpoint)
    symbol = result.get("symbol") or (params or {}).get("symbol")
    if not symbol:
        raise ParseError(VENUE, endpoint, "required field is missing", field="symbol")
    period = str((params or {}).get("intervalTime") or "")
    rows = [
        OpenInterestHistory(
            venue=VENUE,
            key=str(symbol),
            period=period,
            ts_ms=timestamp_ms(field(row, "timestamp", VENUE, endpoint), VENUE, endpoint, "timestamp"),
            coins=_one_side(row, "singleOpenInterest", "openInterest", endpoint),
            usd=None,
        )
        for row in _list(payload, endpoint)
    ]
    return sorted(rows, key=lambda row: row.ts_ms)


PARSERS = {
    INSTRUMENTS_INFO.name: parse_instruments_info,
    TICKERS.name: parse_tickers,
    ACCOUNT_RATIO.name: parse_account_ratio,
    OPEN_INTEREST.name: parse_open_interest,
}


# ---------------------------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class NextPageCursor:
    """Newest-first pages of ``[start, end]`` (both always sent: a lone ``startTime`` is ignored by the venue,
    §1.3) followed by ``nextPageCursor`` until it is ``""`` or a page reaches back past ``start``."""

    limit: int

    async def pages(
        self, client: VenueClient, endpoint: Endpoint, params: dict[str, Any], symbol: str, start_ms: int, end_ms: int
    ) -> list[FetchResult]:
        results = []
        query = {**params, "startTime": start_ms, "endTime": end_ms, "limit": self.limit}
        for _ in range(MAX_PAGES):
            result = await client.get(endpoint, query, symbol=symbol)
            results.append(result)
            cursor = next_cursor(result.payload) if result.ok else None
            rows = result.payload["result"].get("list") if cursor else None
            if not cursor or not rows:
                break
            oldest = min(int(row.get("timestamp", 0)) for row in rows if isinstance(row, dict))
            if oldest <= start_ms:
                break
            query = {**query, "cursor": cursor}
        return results


@dataclass(frozen=True)
class BybitSeries(HistorySeries):
    """A Bybit history series: ``category=linear`` on every call, and the period under its own parameter name."""

    period_param: str = "period"

    def params(self, symbol: str, instrument: str) -> dict[str, Any]:
        return {**LINEAR, "symbol": instrument, self.period_param: self.period}


def history(ls_period: str) -> list[HistorySeries]:
    """The OI history (at :func:`open_interest_period`) and, where Bybit has the period, the account ratio."""
    oi_period = open_interest_period(ls_period)
    series: list[HistorySeries] = [
        BybitSeries(OPEN_INTEREST, ("oi_coins",), oi_period, PERIOD_LENGTH_MS[oi_period], HISTORY_RETENTION,
                    NextPageCursor(OI_PAGE_LIMIT), period_param="intervalTime")
    ]  # fmt: skip
    ratio_period = account_ratio_period(ls_period)
    if ratio_period:
        series.append(BybitSeries(ACCOUNT_RATIO, ("ls_account",), ratio_period, PERIOD_LENGTH_MS[ratio_period],
                                  HISTORY_RETENTION, NextPageCursor(RATIO_PAGE_LIMIT)))  # fmt: skip
    return series


def past_unavailable() -> dict[str, str]:
    """What this venue cannot give for any past interval (metric -> reason); the bulk fill records it too."""
    return {
        **snapshot_only(VENUE, TICKERS.name, ("mark_price", "funding_rate")),
        "oi_usd": f"not available for this interval: {VENUE} {OPEN_INTEREST.name} history has no USD value",
    }


def period_unavailable(ls_period: str) -> dict[str, str]:
    """``ls_account`` -> why, when Bybit has no bucket of this length (2h); else nothing."""
    if account_ratio_period(ls_period):
        return {}
    return {
        "ls_account": f"not available: {VENUE} {ACCOUNT_RATIO.name} has no {ls_period} period "
        f"(it offers {' '.join(PERIODS.values())})"
    }


async def extract(client: VenueClient, request: ExtractRequest) -> VenueExtract:
    """instruments-info (every page), then for a current interval tickers (all symbols, one call) and per listed
    symbol the account ratio over the interval's window; for a past interval per symbol the OI history and the
    account ratio over that window. One series' calls are paged newest first (:class:`NextPageCursor`)."""
    result, request, _ = await fetch_listing(client, VENUE, LISTING, request)
    if result.fatal:
        return result
    # Each series' window: the interval plus one bucket before it, so the latest bucket at or before the end exists.
    start_ms, end_ms = request.interval_start_ms, request.interval_end_ms
    result.unavailable.update(period_unavailable(request.ls_period))
    series = [s for s in history(request.ls_period) if request.is_past or s.endpoint is ACCOUNT_RATIO]
    if request.is_past:
        result.history = True
        result.unavailable.update(past_unavailable())
    calls = [
        s.paginator.pages(client, s.endpoint, s.params(symbol, instrument), symbol, start_ms - s.period_ms, end_ms)
        for symbol, instrument in result.instruments.items()
        for s in series
    ]
    if not request.is_past:
        calls.insert(0, _one(client.get(TICKERS, LINEAR)))
    for pages in await gather_per_symbol(calls):
        result.results.extend(pages)
    return result


async def _one(call: Any) -> list[FetchResult]:
    return [await call]


LISTING = Listing(INSTRUMENTS_INFO, {**LINEAR, "limit": LISTING_PAGE_LIMIT}, parse_instruments_info, next_listing_page)


SPEC = VenueSpec(
    name=VENUE,
    title="Bybit",
    param="includeBybit",
    param_help="Bybit linear USDT perpetuals: one-sided OI and mark from one tickers call, account long/short "
    "ratio per symbol (no 2h period on Bybit).",
    public_url="https://api.bybit.com",
    limits=LIMITS,
    envelope_error=envelope_error,
    listing=LISTING,
    parsers=PARSERS,
    plan=extract,
    past_unavailable=past_unavailable,
    history=history,
    columns=(Column("bybit_ls", "ls_account"),),
    ratio_basis="accounts",
    colour="#f7a600",
    instrument_oi_history=True,
    ratio_endpoints={"ls_account": ACCOUNT_RATIO.name},
)
