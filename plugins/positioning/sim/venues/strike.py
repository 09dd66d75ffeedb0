"""Strike (venues.md §4): wire format (the docs' contradicting shapes), listing, OI split into long/short USD.

Strike lists six ``<BASE>-USD`` markets, serves USD notional open interest per side (no coins) and asymmetric
hourly funding. ``/markets`` and ``/market/{symbol}`` come in the shapes the docs contradict each other with;
the simulator options ``strike_markets_shape``/``strike_market_shape`` and the ``strike_shape`` fault choose one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from positioning.sim.common import DAY_MS, HOUR_MS, MINUTE_MS, fmt, iso, reason
from positioning.sim.venues.base import Instrument, Limit, Rejection, Reply, Request, SimVenue, VenueError

if TYPE_CHECKING:
    from positioning.sim.faults import Fault
    from positioning.sim.state import SimState

MARKETS = ("BTC", "ETH", "SOL", "BNB", "XRP", "HYPE")  # §4 "Supported symbols in every page"
MARKET_SHAPES = ("flat", "wrapped", "camel")  # /market/{symbol}: §4 (a), (b), camelCase like /markets
MARKETS_SHAPES = ("full", "symbols_only")  # /markets with numbers, or symbols only


class Strike(SimVenue):
    name = "strike"
    routes: ClassVar[dict[str, str]] = {"/markets": "markets"}
    limits: ClassVar[dict[str, Limit]] = {"all": Limit(10, 1, "§4 undocumented; a generous guess")}
    ratio_metrics = ("oi",)
    options: ClassVar[dict[str, tuple[str, ...]]] = {
        "strike_markets_shape": MARKETS_SHAPES,
        "strike_market_shape": MARKET_SHAPES,
    }
    fault_kinds: ClassVar[dict[str, str]] = {
        "strike_shape": "serve Strike /markets or /market/{symbol} in shape= flat|wrapped|camel|full|symbols_only",
    }
    fault_options: ClassVar[dict[str, tuple[str, ...]]] = {"strike_shape": ("shape",)}

    # ------------------------------------------------------------------ routing, limits, faults
    def route(self, path: str) -> tuple[str, str | None] | None:
        if path.startswith("/market/") and path.count("/") == 2:
            return "market", path.removeprefix("/market/")
        return super().route(path)

    def endpoints(self) -> frozenset[str]:
        return super().endpoints() | {"market"}

    def request_symbol(self, request: Request) -> str | None:
        return request.path_symbol

    def request_costs(self, endpoint: str, params: Mapping[str, str]) -> list[tuple[str, int]]:
        return [("all", 1)]

    def apply_fault(self, fault: Fault, request: Request) -> None:
        if fault.kind == "strike_shape":
            shape = fault.options["shape"]
            key = "strike_markets_shape" if shape in MARKETS_SHAPES else "strike_market_shape"
            request.options[key] = shape

    # ------------------------------------------------------------------ listing and numbers
    funding_interval_hours = 1  # hourly long and short rates

    def instruments(self, state: SimState) -> list[Instrument]:
        return [Instrument(self.name, f"{base}-USD", base, quote="USD") for base in MARKETS]

    def funding_string(self, rate: float) -> str:
        return fmt(rate, 6)  # the long side's hourly rate (funding_interval_hours = 1)

    def open_interest_strings(self, state: SimState, instrument: Instrument, ts_ms: int) -> dict[str, str]:
        """``long``, ``short``, ``total`` USD (total = long + short exactly) and ``skew`` at ``ts_ms``."""
        base = instrument.base
        total = state.oi_usd_magnitude(base) / 3000 * math.exp(state.wave(ts_ms, ("strike-oi", base),
                                                                           ((5, 0.05), (37, 0.15))))  # fmt: skip
        shares = state.shares(state.ratio_value(self.name, "oi", base, 5 * MINUTE_MS, ts_ms))
        long_cents = round(total * float(shares["long_share"]) * 100)
        short_cents = round(total * 100) - long_cents
        total_cents = long_cents + short_cents
        skew = (long_cents - short_cents) / total_cents
        return {"long": fmt(Decimal(long_cents) / 100, 2), "short": fmt(Decimal(short_cents) / 100, 2),
                "total": fmt(Decimal(total_cents) / 100, 2), "skew": fmt(skew, 4)}  # fmt: skip

    def open_interest(self, state: SimState, symbol: str, served: dict[str, float], ts_ms: int) -> dict[str, Any]:
        return {"coins": None, "usd": served["total"], "long_usd": served["long"],
                "short_usd": served["short"], "skew": served["skew"]}  # fmt: skip

    def ratio_strings(self, state: SimState, metric: str, base: str, period: str, bucket_ms: int) -> dict[str, str]:
        """Long/short of the OI at ``bucket_ms`` (period ignored): Strike has no ratio endpoint, only its sides."""
        strings = state.open_interest_strings(self.name, base, bucket_ms)
        long_oi, short_oi = Decimal(strings["long"]), Decimal(strings["short"])
        return {"ratio": fmt(long_oi / short_oi, 4), "long_share": fmt(long_oi / (long_oi + short_oi), 4),
                "short_share": fmt(short_oi / (long_oi + short_oi), 4)}  # fmt: skip

    def volume_strings(self, state: SimState, symbol: str, ts_ms: int) -> dict[str, str]:
        base = state.base_symbol(symbol)
        total = float(state.open_interest_strings(self.name, base, ts_ms)["total"])
        day = ts_ms // DAY_MS
        return {"volume_24h": fmt(total * (3 + 4 * state.unit("strike-vol", base, day)), 2),
                "volume_1h": fmt(total * (0.1 + 0.2 * state.unit("strike-vol-1h", base, ts_ms // HOUR_MS)), 2),
                "volume_total": fmt(total * 400 + day * 1000.0, 2)}  # fmt: skip

    # ------------------------------------------------------------------ wire
    def _market(self, state: SimState, base: str, now_ms: int) -> dict[str, str]:
        """All numbers of one market as strings (snake_case names of the flat variant)."""
        oi = state.open_interest_strings(self.name, base, now_ms)
        volume = self.volume_strings(state, base, now_ms)
        long_rate = Decimal(state.funding_rate_string(self.name, base, now_ms))
        short_rate = -long_rate * Decimal("0.6")
        return {
            "price": state.mark_price_string(self.name, base, now_ms),
            "long_oi": oi["long"], "short_oi": oi["short"], "total_oi": oi["total"], "skew": oi["skew"],
            "long_funding_rate_hourly": fmt(long_rate, 6), "short_funding_rate_hourly": fmt(short_rate, 6),
            "long_funding_rate_annual": fmt(long_rate * 8760, 6),
            "short_funding_rate_annual": fmt(Decimal(fmt(short_rate, 6)) * 8760, 6),
            "volume_24h": volume["volume_24h"], "volume_1h": volume["volume_1h"],
            "volume_total": volume["volume_total"],
        }  # fmt: skip

    @staticmethod
    def _camel(symbol: str, m: dict[str, str]) -> dict[str, str]:
        """Per-market camelCase object of the /markets page (also the /market 'camel' shape)."""
        return {"symbol": symbol, "price": m["price"], "longOi": m["long_oi"], "shortOi": m["short_oi"],
                "totalOi": m["total_oi"], "longFundingRateHourly": m["long_funding_rate_hourly"],
                "shortFundingRateHourly": m["short_funding_rate_hourly"], "volumeUsd24h": m["volume_24h"],
                "volumeUsdTotal": m["volume_total"], "skew": m["skew"]}  # fmt: skip

    def do_markets(self, request: Request, state: SimState) -> Reply:
        listed = state.listed(self.name)
        if request.options.get("strike_markets_shape", "full") == "symbols_only":
            return Reply(200, {"markets": [{"symbol": s} for s in listed.values()], "count": len(listed)})
        markets = [self._camel(s, self._market(state, base, request.now_ms)) for base, s in listed.items()]
        return Reply(200, {"markets": markets})

    def do_market(self, request: Request, state: SimState) -> Reply:
        symbol = request.path_symbol or ""
        instrument = state.instrument(self.name, symbol)
        if instrument is None or instrument.instrument_id != symbol:
            raise VenueError(Reply(404, {"error": 404, "message": f"Market not found: {symbol}"}))
        m = self._market(state, instrument.base, request.now_ms)
        shape = request.options.get("strike_market_shape", "flat")
        if shape == "camel":
            return Reply(200, self._camel(symbol, m))
        if shape == "wrapped":
            return Reply(200, {"success": True, "message": "Market data retrieved successfully", "data": {
                "symbol": symbol, "current_price": m["price"],
                "funding_rate": {"long_rate": m["long_funding_rate_hourly"],
                                 "short_rate": m["short_funding_rate_hourly"],
                                 "next_update": iso(request.now_ms // HOUR_MS * HOUR_MS + HOUR_MS)},
                "open_interest": {"long_oi": m["long_oi"], "short_oi": m["short_oi"], "total_oi": m["total_oi"],
                                  "skew": m["skew"]},
                "volume": {"volume_24h": m["volume_24h"], "volume_1h": m["volume_1h"], "trades_24h": 1523},
                "position_multiplier": "0.000001", "last_updated": iso(request.now_ms),
            }})  # fmt: skip
        return Reply(200, {
            "symbol": symbol, "position_multiplier": "0.000001",
            "long_funding_rate_hourly": m["long_funding_rate_hourly"],
            "short_funding_rate_hourly": m["short_funding_rate_hourly"],
            "long_funding_rate_annual": m["long_funding_rate_annual"],
            "short_funding_rate_annual": m["short_funding_rate_annual"],
            "long_oi": m["long_oi"], "short_oi": m["short_oi"], "total_oi": m["total_oi"], "skew": m["skew"],
            "volumeUsd24h": m["volume_24h"], "volumeUsdTotal": m["volume_total"],
        })  # fmt: skip

    # ------------------------------------------------------------------ errors
    def error_body(self, status: int, now_ms: int) -> Any:
        if status == 429:
            return {"success": False, "message": "Too Many Requests"}
        return {"error": status, "message": reason(status)}

    def error_envelope(self, code: Any, msg: str | None, now_ms: int) -> Any:
        body: dict[str, Any] = {"success": False, "message": msg or "INTERNAL_ERROR"}
        if code is not None:
            body["code"] = code
        return body

    def rate_limited(self, rejection: Rejection, client: str, now_ms: int) -> Reply:
        return Reply(429, {"success": False, "message": "Too Many Requests"},
                     {"Retry-After": str(rejection.retry_after)})  # fmt: skip

    def locate_rows(self, endpoint: str, body: Any) -> tuple[list | None, list]:
        if not isinstance(body, dict):
            return None, []
        if isinstance(body.get("markets"), list):
            return body["markets"], body["markets"]
        data = body.get("data")
        if isinstance(data, dict):  # wrapped: fields live at data level and in its nested objects
            return None, [data, *(v for v in data.values() if isinstance(v, dict))]
        return None, [body]

    def empty(self, endpoint: str, body: Any) -> Any:
        if isinstance(body, dict) and isinstance(body.get("markets"), list):
            body["markets"].clear()
            if "count" in body:
                body["count"] = 0
            return body
        return {}


VENUE = Strike()
