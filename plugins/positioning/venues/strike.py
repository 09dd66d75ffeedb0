"""Strike Protocol perps: endpoints, limits, error envelope, request plan and pure parsers (venues.md §4).

Strike lists six USD markets (``BTC-USD``, ``ETH-USD``, ``SOL-USD``, ``BNB-USD``, ``XRP-USD``, ``HYPE-USD``) and
reports open interest as USD notional, long and short separately. Its documentation contradicts itself, so the
parsers accept every documented shape and look each value up under all of its known names (:data:`ALIASES`):

* (a) ``GET /market/{symbol}`` flat, snake_case: ``long_oi``, ``short_oi``, ``total_oi``, ``skew``,
  ``long_funding_rate_hourly``... (camelCase ``volumeUsd24h`` mixed in);
* (b) ``GET /market/{symbol}`` wrapped: ``{"success": true, "data": {"current_price": ..., "open_interest":
  {"long_oi", "short_oi", "total_oi", "skew"}, "funding_rate": {"long_rate", "short_rate"}, "last_updated": ISO}}``;
* (c) ``GET /markets`` with per-market rows in camelCase (``price``, ``longOi``, ``shortOi``, ``totalOi``...; the
  prose spells ``longOI``/``shortOI``/``totalOI``), or the symbols-only variant
  ``{"markets": [{"symbol": "BTC-USD"}], "count": 6}``.

Timestamps: shapes (a) and (c) carry none, (b) an ISO-8601 ``last_updated``. **Convention:** the loader calls
these parsers with ``params`` = the request's query params merged with ``{"_received_at_ms": <int>}``, the
epoch-ms time the raw file's response was received (its metadata ``received_at``). A parser uses the payload's
own timestamp where there is one and ``params["_received_at_ms"]`` otherwise; without either it raises
ParseError rather than invent a time.

Funding is asymmetric on Strike (a long and a short hourly rate), which the single ``funding_rate`` of a
MarkPrice row cannot hold, so it is not mapped to rows (it stays in the raw files).

Past intervals (see ``positioning.ingest.extract``): Strike has no history endpoint, so a past run fetches ``/markets``
(for the venue's clock and the symbol mapping; the loader ignores its current values) and records every metric as
"not available for this interval".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from positioning.ingest.endpoints import Endpoint, EnvelopeError
from positioning.ingest.limits import RateLimit
from positioning.rows import Instrument, MarkPrice, OpenInterest, ParseError, number, timestamp_ms
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
    from positioning.ingest.http import VenueClient


VENUE = "strike"
# What a current run stores from this venue; none of it has a history endpoint.
PAST_UNAVAILABLE = ("oi_usd", "ls_oi", "mark_price")

# Public limits are undocumented (§4; the only documented one, 10/min, is per API key). A run needs at most
# seven calls (/markets plus six markets), so a gentle cap costs nothing and keeps us clear of an unknown limit.
LIMITS = {"public": RateLimit(5, 1.0, "§4 undocumented for public endpoints; conservative choice")}

MARKETS = Endpoint("markets", "/markets", {"public": 1})
MARKET = Endpoint("market", "/market/{symbol}", {"public": 1})

RECEIVED_AT_PARAM = "_received_at_ms"

# Every name a value goes by in the documented shapes. Lookups try the market object, then the nested
# ``open_interest``/``funding_rate`` objects of shape (b).
ALIASES: dict[str, tuple[str, ...]] = {
    "long_oi": ("long_oi", "longOi", "longOI", "long_open_interest", "longOpenInterest"),
    "short_oi": ("short_oi", "shortOi", "shortOI", "short_open_interest", "shortOpenInterest"),
    "total_oi": ("total_oi", "totalOi", "totalOI", "total_open_interest", "totalOpenInterest"),
    "price": ("current_price", "currentPrice", "price", "mark_price", "markPrice"),
    "updated": ("last_updated", "lastUpdated", "updated_at", "updatedAt"),
}
NESTED_OBJECTS = ("open_interest", "openInterest", "funding_rate", "fundingRate")
OI_QUANTITIES = ("long_oi", "short_oi", "total_oi")

RATE_LIMIT_WORDS = ("too many", "rate limit", "ratelimit", "throttl")
RETRYABLE_ERROR_CODES = {"500", "502", "503", "504", "INTERNAL_ERROR"}


def envelope_error(payload: Any) -> EnvelopeError | None:
    """Strike errors: ``{"success": false, "message": ...}`` or ``{"error": 404, "message": ...}`` (§4, seed
    004). A rate-limit message or code 429 is retried and pauses the venue; server errors are retried."""
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if payload.get("success") is False:
        code = payload.get("code") if payload.get("code") is not None else error
    elif error not in (None, False, ""):
        code = error
    else:
        return None
    message = payload.get("message") or payload.get("msg") or ""
    if isinstance(code, dict):  # {"error": {"code": ..., "message": ...}}
        message = message or code.get("message", "")
        code = code.get("code")
    code_text = "success=false" if code in (None, "") else str(code)
    rate_limited = code_text == "429" or any(word in str(message).lower() for word in RATE_LIMIT_WORDS)
    return EnvelopeError(
        code_text,
        str(message),
        # A bare {"success": false, "message": "INTERNAL_ERROR"} carries its code in the message.
        retryable=rate_limited
        or code_text in RETRYABLE_ERROR_CODES
        or str(message).strip().upper() in RETRYABLE_ERROR_CODES,
        rate_limited=rate_limited,
    )


# ----------------------------------------------------------------------------------------------- parsers


def _unwrap(payload: Any, endpoint: str) -> Any:
    """The payload without a ``{"success": true, "data": ...}`` wrapper; an error envelope is a ParseError."""
    if isinstance(payload, dict) and "success" in payload:
        if payload["success"] is not True:
            raise ParseError(VENUE, endpoint, f"error envelope: {payload.get('message', '')!r}", field="success")
        if "data" not in payload:
            raise ParseError(VENUE, endpoint, "required field is missing", field="data")
        return payload["data"]
    return payload


def lookup(market: Mapping[str, Any], quantity: str) -> tuple[str, Any] | None:
    """``(name, value)`` of ``quantity`` under the first of its :data:`ALIASES` that holds a non-empty scalar,
    in the market object or its nested objects; None if no name holds one."""
    containers = [market, *(market[name] for name in NESTED_OBJECTS if isinstance(market.get(name), dict))]
    for container in containers:
        for name in ALIASES[quantity]:
            value = container.get(name)
            if value is not None and value != "" and not isinstance(value, dict | list):
                return name, value
    return None


def _lookup_number(market: Mapping[str, Any], quantity: str, endpoint: str) -> float | None:
    found = lookup(market, quantity)
    if found is None:
        return None
    name, value = found
    return number(value, VENUE, endpoint, name)


def _has_oi(market: Any) -> bool:
    return isinstance(market, dict) and any(lookup(market, quantity) for quantity in OI_QUANTITIES)


def _symbol(market: Any, endpoint: str, params: Mapping[str, Any] | None = None) -> str:
    if not isinstance(market, dict):
        raise ParseError(VENUE, endpoint, f"expected a JSON object, got {type(market).__name__}")
    value = market.get("symbol") or (params or {}).get("symbol")
    if not value:
        raise ParseError(VENUE, endpoint, "required field is missing", field="symbol")
    return str(value)


def _iso_ms(value: str, endpoint: str, name: str) -> int:
    """Epoch ms of an ISO-8601 time; one without an offset is taken as UTC."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ParseError(VENUE, endpoint, f"expected an ISO-8601 time, got {value[:40]!r}", field=name) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _timestamp_ms(market: Mapping[str, Any], params: Mapping[str, Any] | None, endpoint: str) -> int:
    """The payload's ``last_updated`` (ISO-8601) if present, else the response's received time from params."""
    found = lookup(market, "updated")
    if found is not None:
        name, value = found
        if isinstance(value, str) and not value.replace(".", "", 1).isdigit():
            return _iso_ms(value, endpoint, name)
        return timestamp_ms(value, VENUE, endpoint, name)
    received = (params or {}).get(RECEIVED_AT_PARAM)
    if received is None:
        raise ParseError(
            VENUE,
            endpoint,
            "the payload has no timestamp; pass the response's received time as a parser param",
            field=RECEIVED_AT_PARAM,
        )
    return timestamp_ms(received, VENUE, endpoint, RECEIVED_AT_PARAM)


def _market_list(payload: Any, endpoint: str) -> list[Any]:
    """The per-market entries of a /markets payload: ``{"markets": [...]}``, a bare list, or either wrapped."""
    data = _unwrap(payload, endpoint)
    if isinstance(data, dict) and "markets" in data:
        data = data["markets"]
    if not isinstance(data, list):
        raise ParseError(VENUE, endpoint, f"expected a list of markets, got {type(data).__name__}", field="markets")
    return data


def _instrument(symbol: str) -> Instrument:
    base, _, quote = symbol.partition("-")
    # Strike publishes no listing state: a market it lists is a market it trades.
    return Instrument(
        venue=VENUE,
        symbol=base.upper(),
        instrument=symbol,
        contract_value=None,  # sizes are USD notional
        quote=quote or "USD",
        status="listed",
        tradable=True,
    )


def _market_rows(
    market: Mapping[str, Any], symbol: str, params: Mapping[str, Any] | None, endpoint: str
) -> list[OpenInterest | MarkPrice]:
    """OpenInterest (USD: total, long, short) and MarkPrice rows of one market; [] if it carries neither."""
    long_usd = _lookup_number(market, "long_oi", endpoint)
    short_usd = _lookup_number(market, "short_oi", endpoint)
    total_usd = _lookup_number(market, "total_oi", endpoint)
    price = _lookup_number(market, "price", endpoint)
    if total_usd is None and long_usd is not None and short_usd is not None:
        total_usd = long_usd + short_usd  # the documented relation; a missing side is never derived from total
    rows: list[OpenInterest | MarkPrice] = []
    if long_usd is None and short_usd is None and total_usd is None and price is None:
        return rows
    ts_ms = _timestamp_ms(market, params, endpoint)
    if long_usd is not None or short_usd is not None or total_usd is not None:
        rows.append(
            OpenInterest(
                venue=VENUE, instrument=symbol, ts_ms=ts_ms, usd=total_usd, long_usd=long_usd, short_usd=short_usd
            )
        )
    if price is not None:
        rows.append(MarkPrice(venue=VENUE, instrument=symbol, ts_ms=ts_ms, mark_price=price))
    return rows


def parse_market_listing(payload: Any, params: Mapping[str, Any] | None = None) -> list[Instrument]:
    """The markets Strike lists, from /markets in any variant."""
    endpoint = MARKETS.name
    return [_instrument(_symbol(market, endpoint)) for market in _market_list(payload, endpoint)]


def parse_markets(payload: Any, params: Mapping[str, Any] | None = None) -> list[Instrument | OpenInterest | MarkPrice]:
    """/markets: OpenInterest + MarkPrice rows of every market that carries data; the symbols-only variant
    (no market carries data) gives the Instrument rows instead."""
    endpoint = MARKETS.name
    markets = _market_list(payload, endpoint)
    rows: list[Instrument | OpenInterest | MarkPrice] = []
    for market in markets:
        rows.extend(_market_rows(market, _symbol(market, endpoint), params, endpoint))
    return rows or parse_market_listing(payload, params)


def parse_market(payload: Any, params: Mapping[str, Any] | None = None) -> list[OpenInterest | MarkPrice]:
    """/market/{symbol} in shape (a) or (b): the same rows as /markets gives for one market. A response without
    any open interest is a ParseError (it is what this endpoint is called for)."""
    endpoint = MARKET.name
    market = _unwrap(payload, endpoint)
    symbol = _symbol(market, endpoint, params)
    if not _has_oi(market):
        raise ParseError(VENUE, endpoint, "no open interest under any known name", field="total_oi")
    return _market_rows(market, symbol, params, endpoint)


PARSERS = {
    MARKETS.name: parse_markets,
    MARKET.name: parse_market,
}


# ---------------------------------------------------------------------------------------------- requests


def markets_with_open_interest(payload: Any) -> set[str]:
    """Symbols whose open interest the /markets payload already carries (empty for the symbols-only variant)."""
    markets = _market_list(payload, MARKETS.name)
    return {str(market["symbol"]) for market in markets if _has_oi(market) and market.get("symbol")}


def _requested(instruments: Mapping[str, str], covered: Iterable[str]) -> dict[str, str]:
    covered = set(covered)
    return {symbol: market for symbol, market in instruments.items() if market not in covered}


def past_unavailable() -> dict[str, str]:
    """What this venue cannot give for any past interval (metric -> reason); the bulk fill records it too."""
    return snapshot_only(VENUE, "public API", PAST_UNAVAILABLE)


async def extract(client: VenueClient, request: ExtractRequest) -> VenueExtract:
    """/markets (one call); /market/{symbol} only for requested markets whose OI /markets did not carry."""
    result, request, listing = await fetch_listing(client, VENUE, LISTING, request)
    if result.fatal:
        return result
    try:
        covered = markets_with_open_interest(listing.payload)
    except ParseError as exc:
        result.fatal = str(exc)
        return result
    if request.is_past:
        result.history = True
        result.unavailable = past_unavailable()
        return result
    calls = [
        client.get(MARKET, symbol=symbol, path_params={"symbol": market})
        for symbol, market in _requested(result.instruments, covered).items()
    ]
    result.results.extend(await gather_per_symbol(calls))
    return result


LISTING = Listing(MARKETS, None, parse_market_listing)


SPEC = VenueSpec(
    name=VENUE,
    title="Strike",
    param="includeStrike",
    param_help="Strike Protocol: long and short OI in USD for its 6 markets (BTC ETH SOL BNB XRP HYPE).",
    public_url="https://api.strike.markets",
    limits=LIMITS,
    envelope_error=envelope_error,
    listing=LISTING,
    parsers=PARSERS,
    plan=extract,
    past_unavailable=past_unavailable,
    columns=(
        Column("strike_ls", "ls_oi"),
        Column("strike_long_oi_usd", "oi_long_usd", kind="value", snapshot=False),
        Column("strike_short_oi_usd", "oi_short_usd", kind="value", snapshot=False),
    ),
    ratio_basis="open_interest",
    colour="#8b5cf6",
    oi_sides_metric="ls_oi",
)
