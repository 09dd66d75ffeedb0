"""The DAG's params (the seed product's input fields plus ``includeStrike``) and their validation.

Import-cheap on purpose: the DAG file imports this at parse time. The JSON schema of each Param rejects bad
conf before a run is created (HTTP 400 from the REST API, ParamValidationError from ``dags test``); the
``RunConfig.from_params`` check repeats it in plain Python (for the CLI and for defence in depth) and
normalises what the schema lets through (lower-case symbols, duplicates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from positioning import VENUES
from positioning.symbols import MAX_SYMBOLS, SymbolError, normalise_symbols

LS_PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "1d")
SORT_KEYS = ("oi_desc", "ls_long_extreme_desc", "ls_short_extreme_desc", "symbol_asc")
VENUE_FLAGS = {"binance": "includeBinance", "okx": "includeOkx", "bitget": "includeBitget", "strike": "includeStrike"}
MAX_ALERT_THRESHOLD = 100.0  # a long/short ratio above 100 is not a market, it is a data error


class ConfError(ValueError):
    """Bad run configuration; the message names the field."""


def dag_params() -> dict[str, Any]:
    """``Param`` objects for ``@dag(params=...)``: titles, descriptions and sections for the trigger form."""
    from airflow.sdk import Param

    venue_help = {
        "includeBinance": "Binance USD-M: OI per symbol, mark price, and three long/short ratios "
        "(top-trader positions, top-trader accounts, all accounts).",
        "includeOkx": "OKX SWAP: OI for all swaps in one call, mark price, currency long/short account ratio.",
        "includeBitget": "Bitget USDT-FUTURES: OI and mark from one tickers call, account long/short ratio "
        "(1 request/s per symbol: about 50 s for 50 symbols).",
        "includeStrike": "Strike Protocol: long and short OI in USD for its 6 markets (BTC ETH SOL BNB XRP HYPE).",
    }
    params: dict[str, Any] = {
        "symbols": Param(
            [],
            type="array",
            items={"type": "string", "pattern": "^[A-Za-z0-9]{1,20}$"},
            maxItems=MAX_SYMBOLS,
            title="Symbols",
            description=f"Base symbols, one per line (BTC, ETH, SOL). Empty = the bundled top-50 majors. "
            f"Letters and digits only, case-insensitive, at most {MAX_SYMBOLS}.",
            section="Universe",
        ),
    }
    for venue in VENUES:
        flag = VENUE_FLAGS[venue]
        params[flag] = Param(
            True,
            type="boolean",
            title=f"Include {venue.capitalize() if venue != 'okx' else 'OKX'}",
            description=venue_help[flag],
            section="Venues",
        )
    params["includeOiChange24h"] = Param(
        False,
        type="boolean",
        title="OKX 24h OI change",
        description="Add okx_oi_24h_change_pct (position build-up + vs unwind -). One extra OKX call per symbol.",
        section="Venues",
    )
    params["lsPeriod"] = Param(
        "1h",
        type="string",
        enum=list(LS_PERIODS),
        title="Long/short period",
        description="Bucket size of the long/short ratios. OKX's currency ratio only has 5m, 1H and 1D: the "
        "largest of those not longer than this is used there.",
        section="Ratios",
    )
    params["sortBy"] = Param(
        "oi_desc",
        type="string",
        enum=list(SORT_KEYS),
        title="Sort snapshot by",
        description="Order of the exported snapshot: biggest open interest, most extreme long, most extreme "
        "short, or alphabetical.",
        section="Output",
    )
    params["alertLsThreshold"] = Param(
        0,
        type="number",
        minimum=0,
        maximum=MAX_ALERT_THRESHOLD,
        title="Alert L/S threshold",
        description="Telegram alert when a symbol's average long/short ratio crosses this value (3 = heavy long "
        "crowd, 0.5 = heavy short crowd). 0 = off. The bot token lives in the positioning_telegram connection.",
        section="Alerts",
    )
    return params


@dataclass(frozen=True)
class RunConfig:
    symbols: tuple[str, ...]
    venues: tuple[str, ...]
    ls_period: str
    sort_by: str
    include_oi_change_24h: bool
    alert_ls_threshold: float

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> RunConfig:
        try:
            symbols = tuple(normalise_symbols(params.get("symbols") or None))
        except SymbolError as exc:
            raise ConfError(f"symbols: {exc}") from None
        flags = {}
        for venue, flag in VENUE_FLAGS.items():
            value = params.get(flag, True)
            if not isinstance(value, bool):
                raise ConfError(f"{flag} must be true or false, got {value!r}")
            flags[venue] = value
        venues = tuple(venue for venue in VENUES if flags[venue])
        if not venues:
            raise ConfError("includeBinance/includeOkx/includeBitget/includeStrike: enable at least one venue")
        ls_period = params.get("lsPeriod", "1h")
        if ls_period not in LS_PERIODS:
            raise ConfError(f"lsPeriod must be one of {', '.join(LS_PERIODS)}, got {str(ls_period)[:20]!r}")
        sort_by = params.get("sortBy", "oi_desc")
        if sort_by not in SORT_KEYS:
            raise ConfError(f"sortBy must be one of {', '.join(SORT_KEYS)}, got {str(sort_by)[:30]!r}")
        oi_change = params.get("includeOiChange24h", False)
        if not isinstance(oi_change, bool):
            raise ConfError(f"includeOiChange24h must be true or false, got {oi_change!r}")
        threshold = params.get("alertLsThreshold", 0)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
            raise ConfError(f"alertLsThreshold must be a number, got {threshold!r}")
        if not 0 <= threshold <= MAX_ALERT_THRESHOLD:
            raise ConfError(f"alertLsThreshold must be between 0 and {MAX_ALERT_THRESHOLD:g}, got {threshold}")
        return cls(symbols, venues, ls_period, sort_by, oi_change, float(threshold))
