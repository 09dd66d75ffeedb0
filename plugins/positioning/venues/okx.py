"""OKX v5 USDT-margined swaps: endpoints, limits, error envelope, request plan and pure parsers (venues.md §2).

Wire format: ``{"code": "0", "msg": "", "data": [...]}``; ``code`` is a string and every value inside ``data``
is a string, timestamps included. Errors arrive in the same envelope, sometimes with HTTP 200 (``51001`` unknown
instrument) and sometimes with HTTP 429 and no ``data`` (``{"msg": "Too Many Requests", "code": "50011"}``).

The public batch endpoints (instruments, open-interest, mark-price, funding-rate with ``instId=ANY``) return every
swap: USD- (inverse) and USDC-margined ones too. Parsers keep only the USDT-margined linear swaps
(``-USDT-SWAP``), so raw files keep everything and the rows keep what the project tracks.

The long/short ratio and the coin-level OI history come from the rubik currency statistics (``ccy=BTC``: all
traders, FUTURES and SWAP of that coin combined); their rows are arrays (``[ts, ratio]``), not objects, and
carry no coin, so those parsers take the coin and period from the request ``params``.

Past intervals (see ``positioning.ingest.extract``): only the rubik currency endpoints have history (``begin``/``end``;
5m within 2 days, 1H within 30 days, 1D within 180 days, §2.5), so a past run asks for the long/short account
ratio (and, if asked, the hourly coin OI for the 24 h change) over the same window as a current run; open
interest, mark price and funding are current only and recorded as "not available". ``open-interest-volume`` is
deliberately *not* used as OKX's ``oi_usd`` for past intervals: it is the coin's OI over all its contracts (swaps
and dated futures), a different quantity from the USDT-swap OI a current run stores, so mixing them would make
``okx_oi_usd`` jump between live and backfilled hours. It stays the input of the 24 h change only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from positioning.ingest.endpoints import Endpoint, EnvelopeError, coded_envelope_error
from positioning.ingest.limits import RateLimit
from positioning.periods import largest_fitting
from positioning.rows import (
    FundingInterval,
    FundingRate,
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
    Column,
    DescendingWindow,
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


VENUE = "okx"

# OKX documents a separate limit per endpoint ("The rate limit is different for each endpoint"), so every
# endpoint is its own group. The two rubik ccy endpoints are assumed to have separate buckets (§2.7: unconfirmed).
LIMITS = {
    "instruments": RateLimit(20, 2.0, "§2.1 20 req / 2 s, IP + instrument type"),
    "open-interest": RateLimit(20, 2.0, "§2.2 20 req / 2 s, IP + instrument ID"),
    "mark-price": RateLimit(10, 2.0, "§2.3 10 req / 2 s, IP + instrument ID"),
    "funding-rate": RateLimit(10, 2.0, "§2.4 10 req / 2 s, IP + instrument ID (Nov-2025 page)"),
    "long-short-account-ratio": RateLimit(5, 2.0, "§2.5 rubik ccy statistics 5 req / 2 s, IP"),
    "open-interest-volume": RateLimit(5, 2.0, "§2.5 rubik ccy statistics 5 req / 2 s, IP"),
    "taker-volume": RateLimit(5, 2.0, "venues-more.md §4.1 rubik taker-volume 5 req / 2 s, IP"),
}

INSTRUMENTS = Endpoint("instruments", "/api/v5/public/instruments", {"instruments": 1})
OPEN_INTEREST = Endpoint("open-interest", "/api/v5/public/open-interest", {"open-interest": 1})
MARK_PRICE = Endpoint("mark-price", "/api/v5/public/mark-price", {"mark-price": 1})
FUNDING_RATE = Endpoint("funding-rate", "/api/v5/public/funding-rate", {"funding-rate": 1})
LONG_SHORT_ACCOUNT_RATIO = Endpoint(
    "long-short-account-ratio",
    "/api/v5/rubik/stat/contracts/long-short-account-ratio",
    {"long-short-account-ratio": 1},
)
OPEN_INTEREST_VOLUME = Endpoint(
    "open-interest-volume", "/api/v5/rubik/stat/contracts/open-interest-volume", {"open-interest-volume": 1}
)
# venues-more.md §4.1: per coin, all its contracts; rows [ts, sellVol, buyVol]; periods and reach as §2.5.
TAKER_VOLUME = Endpoint("taker-volume", "/api/v5/rubik/stat/taker-volume", {"taker-volume": 1})
CONTRACTS = {"instType": "CONTRACTS"}

SWAP = {"instType": "SWAP"}
USDT_SWAP_SUFFIX = "-USDT-SWAP"

SUCCESS_CODE = "0"
# code -> is it a rate limit (pauses the whole venue). Everything else (51001 unknown instrument, 51000 parameter
# error, 50014 missing parameter...) is a request we would only repeat wrongly.
RETRYABLE_CODES = {"50011": True, "50013": True, "50001": False}

# The rubik currency endpoints accept only these periods, spelled exactly so ("1h" -> 51000 Parameter period error).
RUBIK_PERIOD_MS = {"5m": 300_000, "1H": 3_600_000, "1D": 86_400_000}
# §2.5: how far back each rubik currency period reaches.
RUBIK_RETENTION = {"5m": timedelta(days=2), "1H": timedelta(days=30), "1D": timedelta(days=180)}
CURRENT_ONLY_METRICS = ("oi_contracts", "oi_coins", "oi_usd", "mark_price", "funding_rate")
OI_CHANGE_PERIOD = "1H"
OI_CHANGE_LOOKBACK_MS = 25 * 3_600_000  # 24 h back plus one bucket, so the bucket 24 h before the end exists


def envelope_error(payload: Any) -> EnvelopeError | None:
    """OKX errors: ``{"code": "<non-zero>", "msg": "..."}`` with HTTP 200, 4xx or 429."""
    return coded_envelope_error(payload, SUCCESS_CODE, RETRYABLE_CODES)


def rubik_period(ls_period: str) -> str:
    """The rubik currency period (``5m``, ``1H``, ``1D``) for a product lsPeriod (``5m``..``1d``).

    The largest supported period not longer than the requested one: 5m/15m/30m -> 5m, 1h/2h/4h -> 1H,
    1d -> 1D. A ratio bucket is a reading at the bucket's time (not a sum over it), so a finer bucket is just a
    fresher reading; a coarser one could be up to a day older than the period the user asked for.
    """
    return largest_fitting(ls_period, RUBIK_PERIOD_MS)


# ----------------------------------------------------------------------------------------------- parsers


def _data(payload: Any, endpoint: str) -> list[Any]:
    """The ``data`` list of a success envelope; an error envelope or another shape is a ParseError."""
    code = field(payload, "code", VENUE, endpoint)
    if str(code) != SUCCESS_CODE:
        raise ParseError(VENUE, endpoint, f"error envelope code {code!r}: {payload.get('msg', '')!r}", field="code")
    data = field(payload, "data", VENUE, endpoint)
    if not isinstance(data, list):
        raise ParseError(VENUE, endpoint, f"expected a list, got {type(data).__name__}", field="data")
    return data


def _text(obj: Any, name: str, endpoint: str) -> str:
    """A required non-empty string field."""
    value = field(obj, name, VENUE, endpoint)
    if value is None or value == "":
        raise ParseError(VENUE, endpoint, "required value is empty", field=name)
    return str(value)


def _is_usdt_swap(instrument_id: str) -> bool:
    return instrument_id.endswith(USDT_SWAP_SUFFIX)


def _base_symbol(entry: dict, instrument_id: str) -> str:
    """``BTC`` from instFamily/uly ``BTC-USDT``, else from instId ``BTC-USDT-SWAP``."""
    family = entry.get("instFamily") or entry.get("uly") or instrument_id
    return str(family).split("-", 1)[0].upper()


def _param(params: Mapping[str, Any] | None, name: str, endpoint: str) -> str:
    value = (params or {}).get(name)
    if value is None or value == "":
        raise ParseError(VENUE, endpoint, "the request parameter is needed to parse this payload", field=name)
    return str(value)


def _array_rows(payload: Any, endpoint: str, width: int, columns: str) -> list[list[Any]]:
    """Rubik rows are arrays; each must have at least ``width`` columns (extra columns are ignored)."""
    rows = _data(payload, endpoint)
    for position, row in enumerate(rows):
        if not isinstance(row, list) or len(row) < width:
            raise ParseError(
                VENUE, endpoint, f"row {position} should be an array [{columns}], got {str(row)[:60]!r}", field="data"
            )
    return rows


def parse_instruments(payload: Any, params: Mapping[str, Any] | None = None) -> list[Instrument]:
    """USDT-margined linear swaps (settleCcy USDT, ctType linear, instId ``*-USDT-SWAP``), live or not.

    ``contract_value`` is ``ctVal`` (base coins per contract; it differs per coin, so it is always read).
    ``tradable`` is ``state == "live"`` (suspend, preopen and test are listed but not trading).
    """
    endpoint = INSTRUMENTS.name
    result = []
    for entry in _data(payload, endpoint):
        instrument_id = _text(entry, "instId", endpoint)
        if not _is_usdt_swap(instrument_id):
            continue
        settle, kind = field(entry, "settleCcy", VENUE, endpoint), field(entry, "ctType", VENUE, endpoint)
        if settle != "USDT" or kind != "linear":
            continue
        state = _text(entry, "state", endpoint)
        result.append(
            Instrument(
                venue=VENUE,
                symbol=_base_symbol(entry, instrument_id),
                instrument=instrument_id,
                contract_value=number(field(entry, "ctVal", VENUE, endpoint), VENUE, endpoint, "ctVal"),
                quote="USDT",
                status=state,
                tradable=state == "live",
            )
        )
    return result


def parse_open_interest(payload: Any, params: Mapping[str, Any] | None = None) -> list[OpenInterest]:
    """Current OI of every USDT swap: contracts (``oi``), coins (``oiCcy``) and USD (``oiUsd``, absent in older
    API versions -> None)."""
    endpoint = OPEN_INTEREST.name
    result = []
    for row in _data(payload, endpoint):
        instrument_id = _text(row, "instId", endpoint)
        if not _is_usdt_swap(instrument_id):
            continue
        result.append(
            OpenInterest(
                venue=VENUE,
                instrument=instrument_id,
                ts_ms=timestamp_ms(field(row, "ts", VENUE, endpoint), VENUE, endpoint, "ts"),
                contracts=number(field(row, "oi", VENUE, endpoint), VENUE, endpoint, "oi"),
                coins=optional_number(row, "oiCcy", VENUE, endpoint),
                usd=optional_number(row, "oiUsd", VENUE, endpoint),
            )
        )
    return result


def parse_mark_price(payload: Any, params: Mapping[str, Any] | None = None) -> list[MarkPrice]:
    endpoint = MARK_PRICE.name
    return [
        MarkPrice(
            venue=VENUE,
            instrument=_text(row, "instId", endpoint),
            ts_ms=timestamp_ms(field(row, "ts", VENUE, endpoint), VENUE, endpoint, "ts"),
            mark_price=number(field(row, "markPx", VENUE, endpoint), VENUE, endpoint, "markPx", required=False),
        )
        for row in _data(payload, endpoint)
        if _is_usdt_swap(_text(row, "instId", endpoint))
    ]


def _optional_ms(row: dict, name: str, endpoint: str) -> int | None:
    value = row.get(name)
    return None if value in (None, "") else timestamp_ms(value, VENUE, endpoint, name)


def parse_funding_rate(payload: Any, params: Mapping[str, Any] | None = None) -> list[FundingRate | FundingInterval]:
    """Current funding rate (decimal per interval) and the next funding time of every USDT swap, then the
    funding interval: ``nextFundingTime - fundingTime`` (§2.4: the interval is not fixed at 8 h).

    A row whose ``fundingRate`` is empty (no current rate, e.g. a pre-market swap) yields no row; a row without
    the key at all is a ParseError.
    """
    endpoint = FUNDING_RATE.name
    rates: list[FundingRate | FundingInterval] = []
    intervals: list[FundingRate | FundingInterval] = []
    for row in _data(payload, endpoint):
        instrument_id = _text(row, "instId", endpoint)
        if not _is_usdt_swap(instrument_id):
            continue
        rate = number(field(row, "fundingRate", VENUE, endpoint), VENUE, endpoint, "fundingRate", required=False)
        if rate is None:
            continue
        ts_ms = timestamp_ms(field(row, "ts", VENUE, endpoint), VENUE, endpoint, "ts")
        this, following = _optional_ms(row, "fundingTime", endpoint), _optional_ms(row, "nextFundingTime", endpoint)
        rates.append(FundingRate(VENUE, instrument_id, ts_ms, rate, following))
        if this is not None and following is not None and following > this:
            intervals.append(FundingInterval(VENUE, instrument_id, (following - this) / 3_600_000))
    return rates + intervals


def parse_long_short_account_ratio(payload: Any, params: Mapping[str, Any] | None = None) -> list[LongShortRatio]:
    """Rows ``[ts, ratio]`` for the coin in ``params["ccy"]``, oldest first (OKX may send them newest first)."""
    endpoint = LONG_SHORT_ACCOUNT_RATIO.name
    coin = _param(params, "ccy", endpoint).upper()
    period = str((params or {}).get("period") or "5m")  # 5m is the endpoint's default
    rows = [
        LongShortRatio(
            venue=VENUE,
            key=coin,
            metric="ls_account",
            period=period,
            ts_ms=timestamp_ms(row[0], VENUE, endpoint, "data[][0] ts"),
            ratio=number(row[1], VENUE, endpoint, "data[][1] ratio"),
        )
        for row in _array_rows(payload, endpoint, 2, "ts, ratio")
    ]
    return sorted(rows, key=lambda row: row.ts_ms)


def parse_open_interest_volume(payload: Any, params: Mapping[str, Any] | None = None) -> list[OpenInterestHistory]:
    """Rows ``[ts, oi_usd, volume_usd]`` for the coin in ``params["ccy"]`` (all its contracts), oldest first."""
    endpoint = OPEN_INTEREST_VOLUME.name
    coin = _param(params, "ccy", endpoint).upper()
    period = str((params or {}).get("period") or "5m")
    rows = [
        OpenInterestHistory(
            venue=VENUE,
            key=coin,
            period=period,
            ts_ms=timestamp_ms(row[0], VENUE, endpoint, "data[][0] ts"),
            coins=None,
            usd=number(row[1], VENUE, endpoint, "data[][1] oi_usd"),
        )
        for row in _array_rows(payload, endpoint, 2, "ts, oi_usd, volume_usd")
    ]
    return sorted(rows, key=lambda row: row.ts_ms)


def parse_taker_volume(payload: Any, params: Mapping[str, Any] | None = None) -> list[LongShortRatio]:
    """Rows ``[ts, sellVol, buyVol]`` (sell first) for the coin in ``params["ccy"]`` -> the taker buy/sell ratio
    buyVol / sellVol, oldest first. A bucket without sells has no ratio and gives no row."""
    endpoint = TAKER_VOLUME.name
    coin = _param(params, "ccy", endpoint).upper()
    period = str((params or {}).get("period") or "5m")
    rows = []
    for row in _array_rows(payload, endpoint, 3, "ts, sellVol, buyVol"):
        sell = number(row[1], VENUE, endpoint, "data[][1] sellVol")
        buy = number(row[2], VENUE, endpoint, "data[][2] buyVol")
        if sell and sell > 0:
            ts = timestamp_ms(row[0], VENUE, endpoint, "data[][0] ts")
            rows.append(LongShortRatio(VENUE, coin, "taker_buy_sell", period, ts, buy / sell))
    return sorted(rows, key=lambda row: row.ts_ms)


PARSERS = {
    INSTRUMENTS.name: parse_instruments,
    OPEN_INTEREST.name: parse_open_interest,
    MARK_PRICE.name: parse_mark_price,
    FUNDING_RATE.name: parse_funding_rate,
    LONG_SHORT_ACCOUNT_RATIO.name: parse_long_short_account_ratio,
    OPEN_INTEREST_VOLUME.name: parse_open_interest_volume,
    TAKER_VOLUME.name: parse_taker_volume,
}


# ---------------------------------------------------------------------------------------------- requests


def ratio_params(symbol: str, request: ExtractRequest) -> dict[str, Any]:
    """The rubik ratio window: the interval plus one bucket before it, so the latest bucket at or before the
    interval end is inside."""
    period = rubik_period(request.ls_period)
    return {
        "ccy": symbol,
        "period": period,
        "begin": request.interval_start_ms - RUBIK_PERIOD_MS[period],
        "end": request.interval_end_ms,
    }


def taker_params(symbol: str, request: ExtractRequest) -> dict[str, Any]:
    """The taker-volume window: the ratio window, over every contract of the coin."""
    return {**ratio_params(symbol, request), **CONTRACTS}


def oi_change_params(symbol: str, request: ExtractRequest) -> dict[str, Any]:
    """Hourly coin OI (USD) over the last 25 h: enough for the 24 h change at the interval end."""
    return {
        "ccy": symbol,
        "period": OI_CHANGE_PERIOD,
        "begin": request.interval_end_ms - OI_CHANGE_LOOKBACK_MS,
        "end": request.interval_end_ms,
    }


def _history_calls(client: VenueClient, result: VenueExtract, request: ExtractRequest) -> list:
    """Per listed coin the rubik calls whose window the venue still keeps; a call outside its retention is
    recorded in ``result.unavailable`` instead (a gap, not an error)."""
    calls = []
    plans = [(LONG_SHORT_ACCOUNT_RATIO, ratio_params, "ls_account"), (TAKER_VOLUME, taker_params, "taker_buy_sell")]
    if request.include_oi_change_24h:
        plans.append((OPEN_INTEREST_VOLUME, oi_change_params, "oi_usd_change_24h_pct"))
    for endpoint, params_for, metric in plans:
        sample = params_for("BTC", request)
        gap = request.retention_gap(
            sample["begin"], RUBIK_RETENTION[sample["period"]], f"{VENUE} {endpoint.name} at {sample['period']}"
        )
        if gap:
            result.unavailable[metric] = gap
            continue
        calls += [client.get(endpoint, params_for(symbol, request), symbol=symbol) for symbol in result.instruments]
    return calls


def past_unavailable() -> dict[str, str]:
    """What this venue cannot give for any past interval (metric -> reason); the bulk fill records it too."""
    return snapshot_only(VENUE, "open-interest/mark-price/funding-rate", CURRENT_ONLY_METRICS)


async def extract(client: VenueClient, request: ExtractRequest) -> VenueExtract:
    """instruments, then for a current interval open-interest, mark-price and funding-rate (all swaps, one call
    each), and per listed coin the rubik long/short account ratio (plus, if asked, the hourly coin OI for the
    24 h change); for a past interval the rubik calls only."""
    result, request, _ = await fetch_listing(client, VENUE, LISTING, request)
    if result.fatal:
        return result
    if request.is_past:
        result.history = True
        result.unavailable = past_unavailable()
        result.results.extend(await gather_per_symbol(_history_calls(client, result, request)))
        return result
    calls = [
        client.get(OPEN_INTEREST, SWAP),
        client.get(MARK_PRICE, SWAP),
        client.get(FUNDING_RATE, {"instId": "ANY"}),  # all swaps in one call (§2.4, newer docs)
    ]
    for symbol in result.instruments:
        calls.append(client.get(LONG_SHORT_ACCOUNT_RATIO, ratio_params(symbol, request), symbol=symbol))
        calls.append(client.get(TAKER_VOLUME, taker_params(symbol, request), symbol=symbol))
        if request.include_oi_change_24h:
            calls.append(client.get(OPEN_INTEREST_VOLUME, oi_change_params(symbol, request), symbol=symbol))
    result.results.extend(await gather_per_symbol(calls))
    return result


LISTING = Listing(INSTRUMENTS, SWAP, parse_instruments)


def history(ls_period: str) -> list[HistorySeries]:
    """The bulk fill's series: the rubik currency ratio and taker volume at the largest period not longer than
    ``ls_period``, and at 1D (kept 180 days) for the hours that period no longer reaches."""
    periods = [(rubik_period(ls_period), False)] + ([("1D", True)] if rubik_period(ls_period) != "1D" else [])
    return [
        HistorySeries(endpoint, (metric,), period, RUBIK_PERIOD_MS[period], RUBIK_RETENTION[period],
                      DescendingWindow(RUBIK_PERIOD_MS[period]), symbol_param="ccy", by_instrument=False,
                      extra_params=extra, coarser=coarser)
        for period, coarser in periods
        for endpoint, metric, extra in ((LONG_SHORT_ACCOUNT_RATIO, "ls_account", {}),
                                        (TAKER_VOLUME, "taker_buy_sell", CONTRACTS))
    ]  # fmt: skip


SPEC = VenueSpec(
    name=VENUE,
    title="OKX",
    param="includeOkx",
    param_help="OKX SWAP: OI for all swaps in one call, mark price, currency long/short account ratio and taker "
    "buy/sell volume.",
    public_url="https://www.okx.com",
    limits=LIMITS,
    envelope_error=envelope_error,
    listing=LISTING,
    parsers=PARSERS,
    plan=extract,
    past_unavailable=past_unavailable,
    history=history,
    columns=(
        Column("okx_ls", "ls_account", seed_average=True),
        Column("okx_oi_24h_change_pct", "oi_usd_change_24h_pct", kind="value"),
    ),
    colour="#374151",
    oi_change_period=OI_CHANGE_PERIOD,
    ratio_endpoints={"ls_account": LONG_SHORT_ACCOUNT_RATIO.name, "taker_buy_sell": TAKER_VOLUME.name},
)
