"""Binance USD-M futures (venues.md §1): wire format, rate limits and ban, listing, and number formats.

Bare JSON objects/arrays, ``{"code": <negative int>, "msg": ...}`` errors, REQUEST_WEIGHT per minute reported in
``X-MBX-USED-WEIGHT-1M``, a separate budget for ``/futures/data/*``, and an IP ban (418) for clients that keep
sending after 429s. Binance's OI is the market's reference magnitude (scale 1.0).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from positioning.sim.common import (
    DAY_MS,
    HOUR_MS,
    bucket_start,
    ended_buckets,
    fmt,
    int_param,
    last_ended_start,
)
from positioning.sim.venues import binance_archive as archive
from positioning.sim.venues.base import Ban, Instrument, Limit, Rejection, Reply, Request, SimVenue, VenueError

if TYPE_CHECKING:
    from positioning.sim.state import SimState

HISTORY_MS = 30 * DAY_MS  # §1.2 "Only the data of the latest 30 days is available"
LIMIT_DEFAULT, LIMIT_MAX = 30, 500
PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")
WEIGHTS = {"exchangeInfo": 1, "openInterest": 1, "premiumIndex": 1}  # premiumIndex: 10 without symbol
FUTURES_DATA = ("openInterestHist", "topLongShortPositionRatio", "topLongShortAccountRatio",
                "globalLongShortAccountRatio", "takerlongshortRatio")  # fmt: skip
DELIVERY_ID = "BTCUSDT_260327"  # a quarterly (non-perpetual) contract listed beside the perps
DELIVERY_DATE = 1774598400000  # 2026-03-27 08:00 UTC
# The rest of a real listing (premiumIndex of 2024-11-27: 379 rows): more quarterlies, USDC-quoted perps (the
# multiplied ones too: 1000PEPEUSDC) and BTC-quoted perps, none of which are USDT perpetuals.
DELIVERY_IDS = {"BTCUSDT_260626": ("BTC", 1782460800000), "ETHUSDT_260327": ("ETH", DELIVERY_DATE),
                "ETHUSDT_260626": ("ETH", 1782460800000)}  # fmt: skip
BTC_QUOTED = ("BNB", "ETH")
# Assets listed in thousands (issue 15: 1000PEPEUSDT, base asset 1000PEPE); 1INCH is an asset, not a multiple.
MULTIPLIED = {"PEPE": 1000, "SHIB": 1000, "BONK": 1000}
PERPETUAL_DELIVERY_DATE = 4133404800000  # year 2100: "no delivery" (venues.md §1.7)
NOT_TRADING = "FTM"  # listed with status SETTLING (§1.7: delisted symbols stay in the list)
GEO_BLOCK_MSG = (
    "Service unavailable from a restricted location according to 'b. Eligibility' in "
    "https://www.binance.com/en/terms. Please contact customer service if you believe you received this "
    "message in error."
)


class Binance(SimVenue):
    name = "binance"
    routes: ClassVar[dict[str, str]] = {
        "/fapi/v1/exchangeInfo": "exchangeInfo",
        "/fapi/v1/premiumIndex": "premiumIndex",
        "/fapi/v1/openInterest": "openInterest",
        "/fapi/v1/fundingInfo": "fundingInfo",
        "/futures/data/openInterestHist": "openInterestHist",
        "/futures/data/topLongShortPositionRatio": "topLongShortPositionRatio",
        "/futures/data/topLongShortAccountRatio": "topLongShortAccountRatio",
        "/futures/data/globalLongShortAccountRatio": "globalLongShortAccountRatio",
        "/futures/data/takerlongshortRatio": "takerlongshortRatio",
    }
    limits: ClassVar[dict[str, Limit]] = {
        "weight": Limit(2400, 60, "§1.0 REQUEST_WEIGHT 2400 per minute per IP; weights §1.1, §1.6, §1.7"),
        "futures-data": Limit(1000, 300, "§1.2-1.5 all /futures/data/* share 1000 requests / 5 min / IP"),
        "funding-info": Limit(500, 300, "§1.6 fundingInfo shares 500 / 5 min / IP with fundingRate"),
    }
    ban = Ban(
        after_rejections=5,  # §1.0: "auto-banned for continuing to send requests after receiving 429"
        seconds=120.0,  # §1.0: bans scale "from 2 minutes to 3 days"
        source="§1.0 HTTP 418",
    )
    unlisted = frozenset({"MKR", "KAS"})
    ratio_metrics = ("topLongShortPositionRatio", "topLongShortAccountRatio", "globalLongShortAccountRatio")
    oi_scale = 1.0
    funding_decimals = 8
    funding_intervals: ClassVar[dict[str, int]] = {"WIF": 4, "SUI": 4}  # §1.6: adjusted; fundingInfo lists them
    oi_decimals = 3

    # ------------------------------------------------------------------ the data archive's paths (data.binance.vision)
    def route(self, path: str) -> tuple[str, str | None] | None:
        return archive.route(path) or super().route(path)

    def endpoints(self) -> frozenset[str]:
        return super().endpoints() | archive.ENDPOINTS

    def request_symbol(self, request: Request) -> str | None:
        return request.path_symbol or super().request_symbol(request)

    def do_archive_metrics(self, request: Request, state: SimState) -> Reply:
        return archive.respond(self, request, state)

    do_archive_checksum = do_archive_metrics

    # ------------------------------------------------------------------ limits, listing, history numbers
    def request_costs(self, endpoint: str, params: Mapping[str, str]) -> list[tuple[str, int]]:
        if endpoint in archive.ENDPOINTS:
            return []  # §3.0: the archive documents no limit (and is another host)
        if endpoint in FUTURES_DATA:
            return [("futures-data", 1)]
        if endpoint == "fundingInfo":
            return [("funding-info", 1)]
        if endpoint == "premiumIndex":
            return [("weight", 1 if params.get("symbol") else 10)]
        return [("weight", WEIGHTS.get(endpoint, 1))]

    def usage_headers(self, used: Callable[[str], int]) -> dict[str, str]:
        return {"X-MBX-USED-WEIGHT-1M": str(used("weight"))}  # §1.0

    def instruments(self, state: SimState) -> list[Instrument]:
        listing, usdc = [], []
        for base in state.symbols:
            if base not in self.unlisted:
                trading = base != NOT_TRADING
                multiplier = MULTIPLIED.get(base, 1)
                served = f"{multiplier}{base}" if multiplier > 1 else base
                listing.append(Instrument(self.name, f"{served}USDT", base, status="TRADING" if trading else "SETTLING",
                                          tradable=trading, multiplier=multiplier, venue_base=served))  # fmt: skip
                if trading and not base.startswith("TAIL"):
                    usdc.append(Instrument(self.name, f"{served}USDC", base, quote="USDC", kind="usdc",
                                           status="TRADING", tradable=False, multiplier=multiplier,
                                           venue_base=served))  # fmt: skip
        listing.insert(1, Instrument(self.name, DELIVERY_ID, "BTC", kind="delivery", status="TRADING", tradable=False))
        listing.extend(Instrument(self.name, instrument_id, base, kind="delivery", status="TRADING", tradable=False)
                       for instrument_id, (base, _date) in DELIVERY_IDS.items())  # fmt: skip
        listing.extend(Instrument(self.name, f"{base}BTC", base, quote="BTC", kind="btc", status="TRADING",
                                  tradable=False) for base in BTC_QUOTED)  # fmt: skip
        return listing + usdc

    def oi_hist_strings(self, state: SimState, symbol: str, period: str, bucket_ms: int) -> dict[str, str]:
        """openInterestHist strings of one bucket: ``coins``, ``usd`` (coins × mark at the bucket), ``supply``."""
        instrument = state.require(self.name, symbol)
        units = state.oi_coins(self.name, instrument, bucket_ms) / instrument.multiplier
        coins = Decimal(fmt(units, self.oi_decimals))  # "sumOpenInterest": in the served base asset (1000PEPE)
        mark = Decimal(state.mark_price_string(self.name, instrument.instrument_id, bucket_ms))
        supply = state.oi_usd_magnitude(instrument.base) * 40 / state.base_price(instrument.base)
        return {"coins": fmt(coins, 8), "usd": fmt(coins * mark, 8), "supply": fmt(supply, 3)}

    # ------------------------------------------------------------------ wire
    @staticmethod
    def fail(status: int, code: int, msg: str) -> VenueError:
        return VenueError(Reply(status, {"code": code, "msg": msg}))

    def _instrument(self, state: SimState, symbol: str | None) -> Instrument:
        if not symbol:
            raise self.fail(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        instrument = state.instrument(self.name, symbol)
        if instrument is None or instrument.instrument_id != symbol:
            raise self.fail(400, -1121, "Invalid symbol.")
        return instrument

    def do_exchangeInfo(self, request: Request, state: SimState) -> Reply:
        symbols = []
        for instrument in state.instruments(self.name):
            delivery = instrument.kind == "delivery"
            if delivery:
                delivery_date = DELIVERY_IDS.get(instrument.instrument_id, ("", DELIVERY_DATE))[1]
            elif instrument.status != "TRADING":  # §1.7: a delisted perp's deliveryDate is its delisting time
                delivery_date = (request.now_ms - DAY_MS) // HOUR_MS * HOUR_MS
            else:
                delivery_date = PERPETUAL_DELIVERY_DATE
            symbols.append({
                "symbol": instrument.instrument_id,
                "pair": f"{instrument.served_base}{instrument.quote}",
                "contractType": ("NEXT_QUARTER" if instrument.instrument_id.endswith("0626") else "CURRENT_QUARTER")
                if delivery else "PERPETUAL",
                "deliveryDate": delivery_date,
                "onboardDate": 1569398400000,
                "status": instrument.status,
                "maintMarginPercent": "2.5000",
                "requiredMarginPercent": "5.0000",
                "baseAsset": instrument.served_base,
                "quoteAsset": instrument.quote,
                "marginAsset": instrument.quote,
                "pricePrecision": state.price_decimals(instrument.base, instrument.multiplier),
                "quantityPrecision": 3,
                "baseAssetPrecision": 8,
                "quotePrecision": 8,
                "underlyingType": "COIN",
                "underlyingSubType": [],
                "settlePlan": 0,
                "triggerProtect": "0.0500",
                "liquidationFee": "0.012500",
                "marketTakeBound": "0.05",
                "filters": [],
                "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            })  # fmt: skip
        return Reply(200, {
            "timezone": "UTC",
            "serverTime": request.now_ms,
            "futuresType": "U_MARGINED",
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
            ],
            "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": symbols,
        })  # fmt: skip

    def _premium_row(self, state: SimState, instrument: Instrument, now_ms: int) -> dict[str, Any]:
        mark = state.mark_price_string(self.name, instrument.instrument_id, now_ms)
        row: dict[str, Any] = {
            "symbol": instrument.instrument_id,
            "markPrice": mark,
            "indexPrice": state.index_price_string(instrument.base, now_ms, instrument.multiplier),
            "estimatedSettlePrice": mark,
            "lastFundingRate": state.funding_rate_string(self.name, instrument.instrument_id, now_ms),
            "interestRate": "0.00010000",
            "nextFundingTime": state.next_funding_time(
                now_ms, state.funding_interval_hours(self.name, instrument.instrument_id)
            ),
            "time": now_ms,
        }
        if instrument.kind == "delivery" or instrument.status != "TRADING":  # §1.6: "" funding fields on these
            row.update(estimatedSettlePrice="", lastFundingRate="", interestRate="", nextFundingTime=0)
        return row

    def do_premiumIndex(self, request: Request, state: SimState) -> Reply:
        symbol = request.params.get("symbol")
        if symbol:
            return Reply(200, self._premium_row(state, self._instrument(state, symbol), request.now_ms))
        rows = [self._premium_row(state, i, request.now_ms) for i in state.instruments(self.name)]
        return Reply(200, rows)

    def do_fundingInfo(self, request: Request, state: SimState) -> Reply:
        """§1.6: only the symbols whose funding interval or caps were adjusted (the others pay every 8 hours)."""
        rows = [
            {"symbol": i.instrument_id, "adjustedFundingRateCap": "0.02000000",
             "adjustedFundingRateFloor": "-0.02000000",
             "fundingIntervalHours": state.funding_interval_hours(self.name, i.instrument_id), "disclaimer": False}
            for i in state.instruments(self.name)
            if i.base in self.funding_intervals and i.kind == "perpetual"
        ]  # fmt: skip
        return Reply(200, rows)

    def do_openInterest(self, request: Request, state: SimState) -> Reply:
        instrument = self._instrument(state, request.params.get("symbol"))
        coins = state.open_interest_strings(self.name, instrument.instrument_id, request.now_ms)["coins"]
        return Reply(200, {"openInterest": coins, "symbol": instrument.instrument_id, "time": request.now_ms})

    def _history_buckets(self, request: Request) -> tuple[str, list[int]]:
        """Validate the §1.2 parameters and pick the buckets to serve (ascending).

        Rows are buckets with start >= startTime, start <= endTime, that have fully ended by now and lie
        within the last 30 days; with startTime the first ``limit`` of them, otherwise the last ``limit``.
        """
        params = request.params
        period = params.get("period")
        if not period:
            raise self.fail(400, -1102, "Mandatory parameter 'period' was not sent, was empty/null, or malformed.")
        if period not in PERIODS:
            raise self.fail(400, -1120, "Invalid interval.")
        numbers: dict[str, int | None] = {}
        for name in ("limit", "startTime", "endTime"):
            try:
                numbers[name] = int_param(params.get(name))
            except ValueError as exc:
                raise self.fail(400, -1130, f"Data sent for parameter '{name}' is not valid.") from exc
        limit, start, end = numbers["limit"], numbers["startTime"], numbers["endTime"]
        limit = LIMIT_DEFAULT if limit is None else limit
        if not 1 <= limit <= LIMIT_MAX:
            raise self.fail(400, -1130, "Data sent for parameter 'limit' is not valid.")
        oldest = request.now_ms - HISTORY_MS
        if start is not None and start < oldest:
            raise self.fail(400, -1130, "Data sent for parameter 'startTime' is not valid.")
        if start is not None and end is not None and start > end:
            raise self.fail(400, -1023, "Start time is greater than end time.")
        last = last_ended_start(period, request.now_ms)
        if end is not None:
            last = min(last, bucket_start(period, end))
        buckets = ended_buckets(period, max(oldest, start or 0), last)
        return period, buckets[:limit] if start is not None else buckets[-limit:]

    def _history(self, request: Request, state: SimState, row_for) -> Reply:
        instrument = self._instrument(state, request.params.get("symbol"))
        period, buckets = self._history_buckets(request)
        if not instrument.tradable:
            return Reply(200, [])
        return Reply(200, [row_for(instrument, period, bucket) for bucket in buckets])

    def do_openInterestHist(self, request: Request, state: SimState) -> Reply:
        def row(instrument: Instrument, period: str, bucket: int) -> dict[str, Any]:
            served = self.oi_hist_strings(state, instrument.instrument_id, period, bucket)
            return {"symbol": instrument.instrument_id, "sumOpenInterest": served["coins"],
                    "sumOpenInterestValue": served["usd"], "CMCCirculatingSupply": served["supply"],
                    "timestamp": bucket}  # fmt: skip

        return self._history(request, state, row)

    def _ratio_history(self, request: Request, state: SimState) -> Reply:
        def row(instrument: Instrument, period: str, bucket: int) -> dict[str, Any]:
            served = state.ratio_strings(self.name, request.endpoint, instrument.instrument_id, period, bucket)
            # §1.3: even the position ratio names its shares longAccount/shortAccount on USD-M.
            return {"symbol": instrument.instrument_id, "longShortRatio": served["ratio"],
                    "longAccount": served["long_share"], "shortAccount": served["short_share"],
                    "timestamp": bucket}  # fmt: skip

        return self._history(request, state, row)

    def do_takerlongshortRatio(self, request: Request, state: SimState) -> Reply:
        def row(instrument: Instrument, period: str, bucket: int) -> dict[str, Any]:
            buy, sell = state.taker_volumes(self.name, instrument.instrument_id, period, bucket)
            # venues-more.md §3.5: no symbol field; the ratio is rounded on its own, not from the rounded volumes.
            return {"buySellRatio": fmt(buy / sell, 4), "buyVol": fmt(buy, 4), "sellVol": fmt(sell, 4),
                    "timestamp": bucket}  # fmt: skip

        return self._history(request, state, row)

    do_topLongShortPositionRatio = _ratio_history
    do_topLongShortAccountRatio = _ratio_history
    do_globalLongShortAccountRatio = _ratio_history

    # ------------------------------------------------------------------ errors
    def error_body(self, status: int, now_ms: int) -> Any:
        if status == 451:
            return {"code": 0, "msg": GEO_BLOCK_MSG}
        if status == 429:
            return self._too_many("127.0.0.1")
        if status == 418:
            return self._banned("127.0.0.1", now_ms + 120_000)
        if status == 503:
            return {"code": -1001, "msg": "Service Unavailable."}
        if status == 403:
            return {"code": -1000, "msg": "WAF limit violated."}
        return {"code": -1000, "msg": "An unknown error occurred while processing the request."}

    def error_envelope(self, code: Any, msg: str | None, now_ms: int) -> Any:
        return {"code": -1000 if code is None else code, "msg": msg or "An unknown error occurred."}

    @staticmethod
    def _too_many(client: str) -> dict[str, Any]:
        return {"code": -1003, "msg": f"Too many requests; current limit of IP({client}) is 2400 requests per "
                "minute. Please use the websocket for live updates to avoid polling the API."}  # fmt: skip

    @staticmethod
    def _banned(client: str, until_ms: int) -> dict[str, Any]:
        return {"code": -1003, "msg": f"Way too many requests; IP({client}) banned until {until_ms}. "
                "Please use the websocket for live updates to avoid bans."}  # fmt: skip

    def rate_limited(self, rejection: Rejection, client: str, now_ms: int) -> Reply:
        headers = {"Retry-After": str(rejection.retry_after)}
        if rejection.banned_until is not None:
            return Reply(418, self._banned(client, now_ms + rejection.retry_after * 1000), headers)
        return Reply(429, self._too_many(client), headers)

    def locate_rows(self, endpoint: str, body: Any) -> tuple[list | None, list]:
        if isinstance(body, list):
            return body, body
        if endpoint == "exchangeInfo" and isinstance(body, dict):
            return body["symbols"], body["symbols"]
        return None, [body] if isinstance(body, dict) else []


VENUE = Binance()
