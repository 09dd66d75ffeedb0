"""Typed rows that venue parsers produce: payload in, these out, units explicit in the field names.

Parsers never do I/O and never guess: a value a venue did not send is ``None``; an empty string is
missing; a required field that is absent raises :class:`ParseError` naming venue, endpoint and field.
Timestamps are epoch milliseconds (UTC) as the venues send them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


class ParseError(ValueError):
    """A payload does not have the shape the venue documents."""

    def __init__(self, venue: str, endpoint: str, message: str, *, field: str | None = None):
        self.venue, self.endpoint, self.field = venue, endpoint, field
        where = f"{venue} {endpoint}" + (f" field {field!r}" if field else "")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Instrument:
    """One listed USDT-margined perpetual (or Strike USD market) and how to convert its contracts."""

    venue: str
    symbol: str  # base symbol, upper case: BTC
    instrument: str  # venue's id: BTCUSDT, BTC-USDT-SWAP, BTC-USD
    contract_value: float | None  # base coins per contract (OKX ctVal); None where contracts are coins
    quote: str  # USDT, USD
    status: str  # venue's own listing state, verbatim
    tradable: bool  # the state means "trading now"
    # Coins of the asset per unit the venue quotes in: 1000 for Binance ``1000PEPEUSDT`` (base ``1000PEPE``),
    # whose OI counts thousands of PEPE and whose mark price is per thousand. 1 for everything else.
    multiplier: float = 1.0


@dataclass(frozen=True, slots=True)
class OpenInterest:
    """Open interest of one instrument at one venue timestamp. Any unit the venue reports is kept."""

    venue: str
    instrument: str
    ts_ms: int
    contracts: float | None = None
    coins: float | None = None  # base-asset units
    usd: float | None = None  # venue-reported USD notional (never computed by a parser)
    long_usd: float | None = None  # Strike reports the two sides separately
    short_usd: float | None = None


@dataclass(frozen=True, slots=True)
class MarkPrice:
    """Mark price (USD per base coin) and, where the same payload carries it, the current funding rate."""

    venue: str
    instrument: str
    ts_ms: int
    mark_price: float | None
    funding_rate: float | None = None  # decimal per funding interval (0.0001 = 0.01 %)


@dataclass(frozen=True, slots=True)
class FundingRate:
    venue: str
    instrument: str
    ts_ms: int
    funding_rate: float
    next_funding_ms: int | None = None


@dataclass(frozen=True, slots=True)
class FundingInterval:
    """How many hours one funding payment covers on an instrument: the venue's funding rate is per this."""

    venue: str
    instrument: str
    hours: float


@dataclass(frozen=True, slots=True)
class LongShortRatio:
    """One long/short ratio bucket. ``key`` is the instrument, or the base coin for OKX currency stats.

    ``metric`` names what is counted (see ``RATIO_METRICS``); ``period`` is the venue's own spelling.
    ``long_share``/``short_share`` are fractions of one where the venue reports them.
    """

    venue: str
    key: str
    metric: str
    period: str
    ts_ms: int
    ratio: float
    long_share: float | None = None
    short_share: float | None = None


@dataclass(frozen=True, slots=True)
class OpenInterestHistory:
    """A bucket of an OI history series (Binance openInterestHist, OKX open-interest-volume)."""

    venue: str
    key: str  # instrument, or base coin for OKX currency stats
    period: str
    ts_ms: int
    coins: float | None
    usd: float | None
    contracts: float | None = None


# The ratio metrics of the fact table, with who reports them.
RATIO_METRICS = {
    "ls_top_position": "Binance top-trader long/short ratio by positions (topLongShortPositionRatio)",
    "ls_top_account": "Binance top-trader long/short ratio by accounts (topLongShortAccountRatio)",
    "ls_global_account": "Binance all-account long/short ratio (globalLongShortAccountRatio)",
    "ls_account": "OKX currency long/short account ratio (rubik) / Bitget account-long-short",
    "ls_position": "Bitget position-long-short",
    "ls_volume": "Bitget long-short (taker volume ratio)",
    "ls_oi": "Strike long OI / short OI (USD)",
    # Not a positioning ratio (it is flow, not open positions): its own mart, never in the consensus.
    "taker_buy_sell": "taker buy volume / taker sell volume over the bucket (Binance takerlongshortRatio, OKX "
    "rubik taker-volume)",
}
FLOW_METRICS = ("taker_buy_sell",)


# ---------------------------------------------------------------------------------------------------------
# Field readers shared by every venue parser. They accept JSON strings or numbers (venues are inconsistent),
# treat "" and null as missing, and reject what is not a finite number.


def field(obj: Any, name: str, venue: str, endpoint: str) -> Any:
    """The value of a required key; a clear ParseError if ``obj`` is not an object or lacks it."""
    if not isinstance(obj, dict):
        raise ParseError(venue, endpoint, f"expected a JSON object, got {type(obj).__name__}")
    if name not in obj:
        raise ParseError(venue, endpoint, "required field is missing", field=name)
    return obj[name]


def number(value: Any, venue: str, endpoint: str, name: str, *, required: bool = True) -> float | None:
    """A float from a JSON number or numeric string. ``""``/``None`` are missing (error if required)."""
    if value is None or value == "":
        if required:
            raise ParseError(venue, endpoint, "required value is empty", field=name)
        return None
    if isinstance(value, bool):
        raise ParseError(venue, endpoint, f"expected a number, got {value!r}", field=name)
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ParseError(venue, endpoint, f"expected a number, got {str(value)[:40]!r}", field=name) from None
    if not math.isfinite(result):
        # NaN/inf are kept as values so the quality gate can quarantine them with their evidence.
        return result
    return result


def optional_number(obj: dict, name: str, venue: str, endpoint: str) -> float | None:
    return number(obj.get(name), venue, endpoint, name, required=False)


def timestamp_ms(value: Any, venue: str, endpoint: str, name: str) -> int:
    """Epoch milliseconds from a JSON number or a numeric string (Binance history sends either)."""
    parsed = number(value, venue, endpoint, name)
    assert parsed is not None
    if not math.isfinite(parsed) or parsed < 0:
        raise ParseError(venue, endpoint, f"expected epoch milliseconds, got {value!r}", field=name)
    return int(parsed)
