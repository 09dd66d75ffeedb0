"""Bybit v5 linear (venues-more.md §1): wire format, the IP limit and its 403 ban, listing, both-sides OI.

``{"retCode": 0, "retMsg": "OK", "result": {...}, "retExtInfo": {}, "time": <ms number>}``; every value inside
``result`` is a string (ms timestamps too). The ``linear`` listing holds USDT perpetuals, USDC perpetuals and
USDT dated futures, more than 500 entries, served in pages (default 500, at most 1000) with an already
percent-encoded ``nextPageCursor``. ``tickers`` carries OI both sides (``openInterest*``) and one side
(``singleOpenInterest*``; the simulator option ``bybit_single_side="absent"`` serves the pre-2026-06-11 form
without them). History (``open-interest``, ``account-ratio``) is newest first, end-anchored (a lone
``startTime`` is ignored), paged by cursor. Breaching 600 requests / 5 s answers HTTP 403 "access too frequent"
(an HTML page) and bans the IP for 10 minutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from positioning.sim.common import DAY_MS, HOUR_MS, bucket_start, ended_buckets, fmt, int_param, last_ended_start
from positioning.sim.venues.base import Ban, Instrument, Limit, Rejection, Reply, Request, SimVenue, VenueError

if TYPE_CHECKING:
    from positioning.sim.state import SimState

PERIODS = {"5min": 5 * 60_000, "15min": 15 * 60_000, "30min": 30 * 60_000, "1h": HOUR_MS, "4h": 4 * HOUR_MS,
           "1d": DAY_MS}  # fmt: skip  # §1.3, §1.4
# base -> (served base coin, coins per unit): the prefix and the suffix forms (§1.1).
MULTIPLIED = {"PEPE": ("1000PEPE", 1000), "SHIB": ("SHIB1000", 1000), "BONK": ("1000BONK", 1000)}
NOT_TRADING = "MEME"  # listed as PreLaunch
FUTURES_BASES = 40  # USDT dated futures for the first symbols: they take the listing beyond 500 entries
FUTURES_EXPIRIES = ("26DEC26", "27MAR27", "26JUN27")
LISTING_DEFAULT, LISTING_MAX = 500, 1000  # §1.1
LIMITS = {"account-ratio": (50, 500), "open-interest": (50, 200)}  # endpoint -> (default, max) limit
TOO_FREQUENT_PAGE = (
    '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">\n<HTML><HEAD><TITLE>ERROR: The request '
    "could not be satisfied</TITLE></HEAD><BODY>\n<H1>403 ERROR</H1>\n<H2>access too frequent</H2>\n</BODY></HTML>"
)


class Bybit(SimVenue):
    name = "bybit"
    routes: ClassVar[dict[str, str]] = {
        "/v5/market/instruments-info": "instruments-info",
        "/v5/market/tickers": "tickers",
        "/v5/market/account-ratio": "account-ratio",
        "/v5/market/open-interest": "open-interest",
    }
    limits: ClassVar[dict[str, Limit]] = {"ip": Limit(600, 5, "§1.0 600 requests within a 5-second window per IP")}
    # §1.0: "403, access too frequent ... wait for at least 10 minutes": the first breach bans.
    ban = Ban(after_rejections=0, seconds=600.0, source="§1.0 HTTP 403 access too frequent, >= 10 min")
    unlisted = frozenset({"MKR", "FTM", "KAS"})
    ratio_metrics = ("account-ratio",)
    oi_scale = 0.55
    funding_decimals = 8
    funding_intervals: ClassVar[dict[str, int]] = {"WIF": 4, "ORDI": 1}  # §1.5: "may be 1/2/4"
    oi_decimals = 3
    options: ClassVar[dict[str, tuple[str, ...]]] = {"bybit_single_side": ("present", "absent")}

    # ------------------------------------------------------------------ limits and listing
    def request_costs(self, endpoint: str, params: Mapping[str, str]) -> list[tuple[str, int]]:
        return [("ip", 1)]

    def instruments(self, state: SimState) -> list[Instrument]:
        perps, usdc, futures = [], [], []
        for rank, base in enumerate(b for b in state.symbols if b not in self.unlisted):
            served, multiplier = MULTIPLIED.get(base, (base, 1))
            trading = base != NOT_TRADING
            perps.append(Instrument(self.name, f"{served}USDT", base, status="Trading" if trading else "PreLaunch",
                                    tradable=trading, multiplier=multiplier, venue_base=served))  # fmt: skip
            usdc.append(Instrument(self.name, f"{served}PERP", base, quote="USDC", kind="usdc", status="Trading",
                                   tradable=False, multiplier=multiplier, venue_base=served))  # fmt: skip
            if rank < FUTURES_BASES:
                futures += [Instrument(self.name, f"{served}USDT-{expiry}", base, kind="delivery", status="Trading",
                                       tradable=False, multiplier=multiplier, venue_base=served)
                            for expiry in FUTURES_EXPIRIES]  # fmt: skip
        return perps + usdc + futures

    def open_interest_strings(self, state: SimState, instrument: Instrument, ts_ms: int) -> dict[str, str]:
        """``single`` (one side, in the served base) and ``both`` (both sides: twice one side, formatted like
        the doc's ``"63910691.00000000"``)."""
        units = state.oi_coins(self.name, instrument, ts_ms) / instrument.multiplier
        single = Decimal(fmt(units, self.oi_decimals))
        return {"single": fmt(single, self.oi_decimals), "both": fmt(2 * single, 8)}

    def open_interest(self, state: SimState, symbol: str, served: dict[str, float], ts_ms: int) -> dict[str, Any]:
        """One side (what the adapter must store): coins of the asset and the served ``singleOpenInterestValue``;
        both sides as ``both_coins``/``both_usd``."""
        instrument = state.require(self.name, symbol)
        values = self.oi_value_strings(state, instrument, ts_ms)
        return {"coins": served["single"] * instrument.multiplier, "usd": float(values["single"]),
                "both_coins": served["both"] * instrument.multiplier, "both_usd": float(values["both"])}  # fmt: skip

    def oi_value_strings(self, state: SimState, instrument: Instrument, ts_ms: int) -> dict[str, str]:
        """``singleOpenInterestValue``/``openInterestValue``: the served sizes times the served mark (USDT)."""
        served = state.open_interest_strings(self.name, instrument.instrument_id, ts_ms)
        mark = Decimal(state.mark_price_string(self.name, instrument.instrument_id, ts_ms))
        return {side: fmt(Decimal(served[side]) * mark, 2) for side in ("single", "both")}

    # ------------------------------------------------------------------ wire
    @staticmethod
    def ok(result: Any, now_ms: int) -> Reply:
        return Reply(200, {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": now_ms})

    @staticmethod
    def fail(code: int, msg: str, now_ms: int, result: Any = None) -> VenueError:
        body = {"retCode": code, "retMsg": msg, "result": {} if result is None else result, "retExtInfo": {},
                "time": now_ms}  # fmt: skip
        return VenueError(Reply(200, body))

    def _linear(self, request: Request) -> None:
        category = request.params.get("category")
        if not category:
            raise self.fail(10001, "params error: category is required", request.now_ms)
        if category != "linear":
            raise self.fail(10001, f"params error: category {category} not supported here", request.now_ms)

    def _instrument(self, request: Request, state: SimState) -> Instrument:
        symbol = request.params.get("symbol") or ""
        instrument = state.instrument(self.name, symbol)
        if instrument is None or instrument.instrument_id != symbol:
            raise self.fail(10001, "params error: symbol invalid", request.now_ms, {"category": "", "list": []})
        return instrument

    def _limit(self, request: Request, default: int, maximum: int) -> int:
        try:
            limit = int_param(request.params.get("limit"))
        except ValueError:
            limit = -1
        limit = default if limit is None else limit
        if not 1 <= limit <= maximum:
            raise self.fail(10001, "params error: limit is invalid", request.now_ms)
        return limit

    def do_instruments_info(self, request: Request, state: SimState) -> Reply:
        self._linear(request)
        limit = self._limit(request, LISTING_DEFAULT, LISTING_MAX)
        entries = state.instruments(self.name)
        cursor = request.params.get("cursor")
        start = 0
        if cursor:  # received decoded once: "first=<symbol>&last=<symbol>"
            last = dict(part.partition("=")[::2] for part in cursor.split("&")).get("last")
            ids = [i.instrument_id for i in entries]
            if last not in ids:
                raise self.fail(10001, "params error: cursor invalid", request.now_ms)
            start = ids.index(last) + 1
        page = entries[start : start + limit]
        more = start + limit < len(entries)
        next_cursor = quote(f"first={page[0].instrument_id}&last={page[-1].instrument_id}", safe="") if more else ""
        rows = [self._instrument_row(state, i, request.now_ms) for i in page]
        return self.ok({"category": "linear", "list": rows, "nextPageCursor": next_cursor}, request.now_ms)

    def _instrument_row(self, state: SimState, instrument: Instrument, now_ms: int) -> dict[str, Any]:
        futures = instrument.kind == "delivery"
        decimals = state.price_decimals(instrument.base, instrument.multiplier)
        hours = state.funding_interval_hours(self.name, instrument.instrument_id)  # §1.3: in minutes here
        return {
            "symbol": instrument.instrument_id, "symbolId": 5,
            "contractType": "LinearFutures" if futures else "LinearPerpetual", "status": instrument.status,
            "baseCoin": instrument.served_base, "quoteCoin": instrument.quote, "launchTime": "1585526400000",
            "deliveryTime": str(now_ms // DAY_MS * DAY_MS + 30 * DAY_MS) if futures else "0",
            "deliveryFeeRate": "0.0005" if futures else "", "priceScale": str(decimals),
            "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
            "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
            "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": "0.001", "qtyStep": "0.001",
                              "postOnlyMaxOrderQty": "1190.000", "maxMktOrderQty": "500.000", "minNotionalValue": "5"},
            "unifiedMarginTrade": True, "fundingInterval": 0 if futures else 60 * hours, "settleCoin": instrument.quote,
            "copyTrading": "both", "upperFundingRate": "0.00375", "lowerFundingRate": "-0.00375",
            "isPreListing": instrument.status == "PreLaunch", "preListingInfo": None,
            "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"}, "symbolType": "",
        }  # fmt: skip

    def do_tickers(self, request: Request, state: SimState) -> Reply:
        self._linear(request)
        now = request.now_ms
        instruments = (
            [self._instrument(request, state)] if request.params.get("symbol") else state.instruments(self.name)
        )
        single_side = request.options.get("bybit_single_side", "present") == "present"
        rows = []
        for instrument in instruments:
            symbol, futures = instrument.instrument_id, instrument.kind == "delivery"
            hours = state.funding_interval_hours(self.name, symbol)
            mark = state.mark_price_string(self.name, symbol, now)
            decimals = state.price_decimals(instrument.base, instrument.multiplier)
            oi, values = (
                state.open_interest_strings(self.name, symbol, now),
                self.oi_value_strings(state, instrument, now),
            )
            row = {
                "symbol": symbol, "lastPrice": mark,
                "indexPrice": state.index_price_string(instrument.base, now, instrument.multiplier),
                "markPrice": mark, "prevPrice24h": fmt(float(mark) * 0.99, decimals), "price24hPcnt": "0.010101",
                "highPrice24h": fmt(float(mark) * 1.02, decimals), "lowPrice24h": fmt(float(mark) * 0.98, decimals),
                "prevPrice1h": mark, "openInterest": oi["both"], "openInterestValue": values["both"],
                "turnover24h": "0", "volume24h": "0",
                "fundingRate": "" if futures else state.funding_rate_string(self.name, symbol, now),
                "nextFundingTime": "" if futures else str(state.next_funding_time(now, hours)),
                "predictedDeliveryPrice": "", "basisRate": "", "deliveryFeeRate": "", "deliveryTime": "0",
                "ask1Size": "0.012", "bid1Price": mark, "ask1Price": mark, "bid1Size": "2.529", "basis": "",
                "preOpenPrice": "", "preQty": "", "curPreListingPhase": "",
                "fundingIntervalHour": str(hours),
                "basisRateYear": "", "fundingCap": "0.005",
            }  # fmt: skip
            if single_side:
                row.update(singleOpenInterest=oi["single"], singleOpenInterestValue=values["single"])
            rows.append(row)
        return self.ok({"category": "linear", "list": rows}, now)

    def _window(self, request: Request, period: str, limit: int) -> tuple[list[int], str]:
        """Bucket starts to serve, newest first, and the next cursor. End-anchored (§1.3): without ``endTime``
        the series walks back from now and a lone ``startTime`` is ignored; the cursor continues below the
        oldest bucket served."""
        now = request.now_ms
        try:
            start, end = int_param(request.params.get("startTime")), int_param(request.params.get("endTime"))
        except ValueError:
            raise self.fail(10001, "params error: startTime or endTime is invalid", now) from None
        if end is None:
            start = None
        last = (
            last_ended_start(period, now)
            if end is None
            else min(last_ended_start(period, now), bucket_start(period, end))
        )
        cursor = request.params.get("cursor")
        if cursor:  # received decoded once: "lastid=<n>&lasttime=<seconds>"
            fields = dict(part.partition("=")[::2] for part in cursor.split("&"))
            if not fields.get("lasttime", "").isdigit():
                raise self.fail(10001, "params error: cursor invalid", now)
            last = min(last, int(fields["lasttime"]) * 1000 - PERIODS[period])
        first = start if start is not None else last - (limit + 1) * PERIODS[period]
        buckets = ended_buckets(period, max(first, 0), last)[::-1]
        page = buckets[:limit]
        if not page or len(buckets) <= limit:  # the window is exhausted (without startTime it never is)
            return page, ""
        return page, quote(f"lastid={page[-1] // 1000 % 100_000_000}&lasttime={page[-1] // 1000}", safe="")

    def _period(self, request: Request, name: str) -> str:
        period = request.params.get(name) or ""
        if not period:
            raise self.fail(10001, f"params error: {name} is required", request.now_ms)
        if period not in PERIODS:
            raise self.fail(10001, f"params error: {name} is invalid", request.now_ms)
        return period

    def do_account_ratio(self, request: Request, state: SimState) -> Reply:
        self._linear(request)
        instrument = self._instrument(request, state)
        period = self._period(request, "period")
        buckets, cursor = self._window(request, period, self._limit(request, *LIMITS["account-ratio"]))
        rows = []
        for bucket in buckets:
            served = state.ratio_strings(self.name, "account-ratio", instrument.instrument_id, period, bucket)
            rows.append({"symbol": instrument.instrument_id, "buyRatio": served["long_share"],
                         "sellRatio": served["short_share"], "timestamp": str(bucket)})  # fmt: skip
        return self.ok({"list": rows, "nextPageCursor": cursor}, request.now_ms)

    def do_open_interest(self, request: Request, state: SimState) -> Reply:
        self._linear(request)
        instrument = self._instrument(request, state)
        period = self._period(request, "intervalTime")
        buckets, cursor = self._window(request, period, self._limit(request, *LIMITS["open-interest"]))
        rows = []
        for bucket in buckets:
            served = self.open_interest_strings(state, instrument, bucket)
            rows.append({"openInterest": served["both"], "singleOpenInterest": served["single"],
                         "timestamp": str(bucket)})  # fmt: skip
        result = {"symbol": instrument.instrument_id, "category": "linear", "list": rows, "nextPageCursor": cursor}
        return self.ok(result, request.now_ms)

    # ------------------------------------------------------------------ errors
    def error_body(self, status: int, now_ms: int) -> Any:
        if status == 403:
            return TOO_FREQUENT_PAGE
        code, msg = (10006, "Too many visits!") if status == 429 else (10016, "Server error.")
        return {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": now_ms}

    def error_envelope(self, code: Any, msg: str | None, now_ms: int) -> Any:
        return {"retCode": 10001 if code is None else int(code), "retMsg": "params error" if msg is None else msg,
                "result": {}, "retExtInfo": {}, "time": now_ms}  # fmt: skip

    def rate_limited(self, rejection: Rejection, client: str, now_ms: int) -> Reply:
        return Reply(403, text=TOO_FREQUENT_PAGE, content_type="text/html")

    def locate_rows(self, endpoint: str, body: Any) -> tuple[list | None, list]:
        result = body.get("result") if isinstance(body, dict) else None
        rows = result.get("list") if isinstance(result, dict) else None
        if isinstance(rows, list):
            return rows, rows
        return None, [result] if isinstance(result, dict) else []


VENUE = Bybit()
