"""Bitget v2 mix (venues.md §3): wire format, per-endpoint and overall rate limits, listing, number formats.

``{"code": "00000", "msg": "success", "requestTime": <ms>, "data": ...}`` envelopes, ``productType=USDT-FUTURES``
on every call, 1 request/s for each long/short endpoint, and ``tickers`` carrying OI, mark and funding of
every symbol at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from positioning.sim.common import DAY_MS, ended_buckets, fmt, last_ended_start, period_ms, reason
from positioning.sim.venues.base import Instrument, Limit, Rejection, Reply, Request, SimVenue, VenueError

if TYPE_CHECKING:
    from positioning.sim.state import SimState

PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")
LONG_SHORT_PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1Dutc")  # §3.8
SERIES_LENGTH = 30  # §3.6-3.8 "a short recent series" (length undocumented)
NOT_TRADING = "MEME"  # listed with symbolStatus off
# Seen live (2024-10-19): account-long-short's longShortAccountRatio one hundredth of its own shares' quotient
# ({"longAccountRatio":"0.58","shortAccountRatio":"0.42","longShortAccountRatio":"0.0138"}). Served so for these
# symbols unless the simulator runs with bitget_account_ratio="quotient".
HUNDREDTH_RATIO_SYMBOLS = frozenset({"BTC", "SOL", "DOGE", "PEPE", "SUI", "WIF"})


class Bitget(SimVenue):
    name = "bitget"
    routes: ClassVar[dict[str, str]] = {
        "/api/v2/mix/market/contracts": "contracts",
        "/api/v2/mix/market/tickers": "tickers",
        "/api/v2/mix/market/open-interest": "open-interest",
        "/api/v2/mix/market/account-long-short": "account-long-short",
        "/api/v2/mix/market/position-long-short": "position-long-short",
        "/api/v2/mix/market/long-short": "long-short",
    }
    limits: ClassVar[dict[str, Limit]] = {
        "contracts": Limit(20, 1, "§3.5 20 req / s / IP"),
        "tickers": Limit(20, 1, "§3.2 20 req / s / IP"),
        "open-interest": Limit(20, 1, "§3.1 20 req / s / IP"),
        "account-long-short": Limit(1, 1, "§3.6 1 req / s / IP"),
        "position-long-short": Limit(1, 1, "§3.7 1 req / s / IP"),
        "long-short": Limit(1, 1, "§3.8 1 req / s / IP"),
        "overall": Limit(6000, 60, "§3.0 overall 6000 / IP / min"),
    }
    unlisted = frozenset({"MKR", "ORDI", "ICP", "JTO", "ZRO"})
    ratio_metrics = ("account-long-short", "position-long-short", "long-short")
    oi_scale = 0.32
    options: ClassVar[dict[str, tuple[str, ...]]] = {"bitget_account_ratio": ("hundredth_for_some", "quotient")}
    funding_decimals = 6
    funding_intervals: ClassVar[dict[str, int]] = {"SUI": 4, "DOGE": 2}  # §3.4: 1, 2, 4 or 8 hours
    oi_decimals = 4
    RATIO_FIELDS: ClassVar[dict[str, tuple[str, str, str]]] = {
        "account-long-short": ("longAccountRatio", "shortAccountRatio", "longShortAccountRatio"),
        "position-long-short": ("longPositionRatio", "shortPositionRatio", "longShortPositionRatio"),
        "long-short": ("longRatio", "shortRatio", "longShortRatio"),
    }

    # ------------------------------------------------------------------ limits and listing
    def request_costs(self, endpoint: str, params: Mapping[str, str]) -> list[tuple[str, int]]:
        return [*super().request_costs(endpoint, params), ("overall", 1)]  # every call also counts overall

    def instruments(self, state: SimState) -> list[Instrument]:
        return [Instrument(self.name, f"{base}USDT", base, status="normal" if base != NOT_TRADING else "off",
                           tradable=base != NOT_TRADING)
                for base in state.symbols if base not in self.unlisted]  # fmt: skip

    # ------------------------------------------------------------------ wire
    @staticmethod
    def ok(data: Any, now_ms: int) -> Reply:
        return Reply(200, {"code": "00000", "msg": "success", "requestTime": now_ms, "data": data})

    @staticmethod
    def fail(status: int, code: str, msg: str, now_ms: int) -> VenueError:
        return VenueError(Reply(status, {"code": code, "msg": msg, "requestTime": now_ms, "data": None}))

    def _required(self, request: Request, name: str) -> str:
        value = request.params.get(name)
        if not value:
            raise self.fail(400, "40019", f"Parameter {name} cannot be empty", request.now_ms)
        return value

    def _usdt_futures(self, request: Request) -> bool:
        return self._required(request, "productType").upper() == "USDT-FUTURES"

    def _instrument(self, request: Request, state: SimState) -> Instrument:
        symbol = self._required(request, "symbol")
        instrument = state.instrument(self.name, symbol)
        if instrument is None or instrument.instrument_id != symbol:
            raise self.fail(400, "40034", f"Parameter {symbol} does not exist", request.now_ms)
        return instrument

    def do_contracts(self, request: Request, state: SimState) -> Reply:
        if not self._usdt_futures(request):
            return self.ok([], request.now_ms)
        instruments = state.instruments(self.name)
        if request.params.get("symbol"):
            instruments = [self._instrument(request, state)]
        rows = []
        for instrument in instruments:
            decimals = state.price_decimals(instrument.base)
            rows.append({
                "symbol": instrument.instrument_id, "baseCoin": instrument.base, "quoteCoin": "USDT",
                "buyLimitPriceRatio": "0.05", "sellLimitPriceRatio": "0.05", "feeRateUpRatio": "0.005",
                "makerFeeRate": "0.0002", "takerFeeRate": "0.0006", "openCostUpRatio": "0.01",
                "supportMarginCoins": ["USDT"], "minTradeNum": "0.001", "priceEndStep": "1",
                "volumePlace": "3", "pricePlace": str(decimals), "sizeMultiplier": "0.001",
                "symbolType": "perpetual", "minTradeUSDT": "5", "maxSymbolOrderNum": "200",
                "maxProductOrderNum": "400", "maxPositionNum": "150", "symbolStatus": instrument.status,
                "offTime": "-1" if instrument.tradable else str(request.now_ms - DAY_MS),
                "limitOpenTime": "-1", "deliveryTime": "", "deliveryStartTime": "", "deliveryPeriod": "",
                "launchTime": "", "minLever": "1", "maxLever": "125",
                "fundInterval": str(state.funding_interval_hours(self.name, instrument.instrument_id)),
                "posLimit": "0.05", "maintainTime": "", "isRwa": "NO",
            })  # fmt: skip
        return self.ok(rows, request.now_ms)

    def do_tickers(self, request: Request, state: SimState) -> Reply:
        if not self._usdt_futures(request):
            return self.ok([], request.now_ms)
        now = request.now_ms
        rows = []
        for instrument in state.instruments(self.name):
            symbol = instrument.instrument_id
            mark = state.mark_price_string(self.name, symbol, now)
            decimals = state.price_decimals(instrument.base)
            step = float(mark) * 0.0001
            rows.append({
                "symbol": symbol, "lastPr": mark, "askPr": fmt(float(mark) + step, decimals),
                "bidPr": fmt(float(mark) - step, decimals), "bidSz": "1.25", "askSz": "0.75",
                "high24h": fmt(float(mark) * 1.03, decimals), "low24h": fmt(float(mark) * 0.97, decimals),
                "ts": str(now), "change24h": "0.0123", "baseVolume": "0", "quoteVolume": "0",
                "usdtVolume": "0", "openUtc": mark, "changeUtc24h": "0.0045",
                "indexPrice": state.index_price_string(instrument.base, now),
                "fundingRate": state.funding_rate_string(self.name, symbol, now),
                "holdingAmount": state.open_interest_strings(self.name, symbol, now)["coins"],
                "deliveryStartTime": None, "deliveryTime": None, "deliveryStatus": "",
                "open24h": mark, "markPrice": mark,
            })  # fmt: skip
        return self.ok(rows, now)

    def do_open_interest(self, request: Request, state: SimState) -> Reply:
        instrument = self._instrument(request, state)
        self._required(request, "productType")
        size = state.open_interest_strings(self.name, instrument.instrument_id, request.now_ms)["coins"]
        data = {"openInterestList": [{"symbol": instrument.instrument_id, "size": size}], "ts": str(request.now_ms)}
        return self.ok(data, request.now_ms)

    def _ratios(self, request: Request, state: SimState) -> Reply:
        instrument = self._instrument(request, state)
        period = request.params.get("period") or "5m"
        allowed = LONG_SHORT_PERIODS if request.endpoint == "long-short" else PERIODS
        if period not in allowed:
            raise self.fail(400, "40808", "Parameter verification exception period", request.now_ms)
        last = last_ended_start(period, request.now_ms)
        first = last - (SERIES_LENGTH - 1) * period_ms(period)
        long_name, short_name, ratio_name = self.RATIO_FIELDS[request.endpoint]
        hundredth = self.hundredth_ratio(request, instrument.base)
        rows = []
        for bucket in ended_buckets(period, first, last):
            served = state.ratio_strings(self.name, request.endpoint, instrument.instrument_id, period, bucket)
            if hundredth:  # two places further right, printed with four decimals like the live "0.0138"
                served["ratio"] = fmt(Decimal(served["ratio"]).scaleb(-2), 4)
            rows.append({long_name: served["long_share"], short_name: served["short_share"],
                         ratio_name: served["ratio"], "ts": str(bucket)})  # fmt: skip
        return self.ok(rows, request.now_ms)

    @staticmethod
    def hundredth_ratio(request: Request, base: str) -> bool:
        """Whether this request's account ratio is served on the x0.01 scale (see HUNDREDTH_RATIO_SYMBOLS)."""
        return (
            request.endpoint == "account-long-short"
            and base in HUNDREDTH_RATIO_SYMBOLS
            and request.options.get("bitget_account_ratio", "hundredth_for_some") == "hundredth_for_some"
        )

    do_account_long_short = _ratios
    do_position_long_short = _ratios
    do_long_short = _ratios

    # ------------------------------------------------------------------ errors
    def error_body(self, status: int, now_ms: int) -> Any:
        code = "429" if status == 429 else "40015" if status >= 500 else str(status)
        msg = "Too Many Requests" if status == 429 else reason(status)
        return {"code": code, "msg": msg, "requestTime": now_ms, "data": None}

    def error_envelope(self, code: Any, msg: str | None, now_ms: int) -> Any:
        default = "Parameter verification exception"
        return {"code": str(code or "40808"), "msg": default if msg is None else msg, "requestTime": now_ms,
                "data": None}  # fmt: skip

    def rate_limited(self, rejection: Rejection, client: str, now_ms: int) -> Reply:
        return Reply(429, {"code": "429", "msg": "Too Many Requests", "requestTime": now_ms, "data": None})

    def locate_rows(self, endpoint: str, body: Any) -> tuple[list | None, list]:
        data = body.get("data") if isinstance(body, dict) else None
        if isinstance(data, list):
            return data, data
        if isinstance(data, dict) and isinstance(data.get("openInterestList"), list):
            return data["openInterestList"], data["openInterestList"]
        return None, [data] if isinstance(data, dict) else []


VENUE = Bitget()
