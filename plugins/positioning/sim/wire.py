"""Wire formats of the four venues, one class per venue (paths, envelopes, errors, where the data rows sit).

Everything here follows /work/shared/venues.md; section numbers are cited where a choice is made.
A venue class turns a parsed request plus the :class:`SimState` into a :class:`Reply`; it never sleeps,
counts or injects faults (the server does that), so the formats can be read in one place per venue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from http import HTTPStatus
from typing import Any, ClassVar

from positioning.sim.limits import Rejection
from positioning.sim.state import (
    BINANCE_DELIVERY_DATE,
    BINANCE_PERPETUAL_DELIVERY_DATE,
    DAY_MS,
    HOUR_MS,
    Instrument,
    SimState,
    bucket_start,
    fmt,
    period_ms,
)

BINANCE_HISTORY_MS = 30 * DAY_MS  # §1.2 "Only the data of the latest 30 days is available"
BINANCE_LIMIT_DEFAULT, BINANCE_LIMIT_MAX = 30, 500
BINANCE_PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")
OKX_CCY_WINDOWS = {"5m": 2 * DAY_MS, "1H": 30 * DAY_MS, "1D": 180 * DAY_MS}  # §2.5
BITGET_PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")
BITGET_LONG_SHORT_PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1Dutc")  # §3.8
BITGET_SERIES_LENGTH = 30  # §3.6-3.8 "a short recent series" (length undocumented)
STRIKE_MARKET_SHAPES = ("flat", "wrapped", "camel")
STRIKE_MARKETS_SHAPES = ("full", "symbols_only")


@dataclass
class Request:
    """A parsed venue request; ``now_ms`` is the simulator clock when it arrived."""

    venue: str
    endpoint: str
    path: str
    params: dict[str, str]
    now_ms: int
    path_symbol: str | None = None  # Strike /market/{symbol}
    options: dict[str, Any] = field(default_factory=dict)  # strike_markets_shape / strike_market_shape


@dataclass
class Reply:
    """What to send: JSON ``body`` (or pre-rendered ``text``), status and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    content_type: str = "application/json"


class VenueError(Exception):
    """Raised by a handler to answer with the venue's documented error."""

    def __init__(self, reply: Reply):
        super().__init__(reply.status)
        self.reply = reply


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _ended_buckets(period: str, first_ms: int, last_start_ms: int) -> list[int]:
    """Bucket starts from ``first_ms`` (rounded up to a bucket) to ``last_start_ms`` inclusive, ascending."""
    length = period_ms(period)
    first = -(-first_ms // length) * length
    return list(range(first, last_start_ms + 1, length)) if first <= last_start_ms else []


def _last_ended_start(period: str, now_ms: int) -> int:
    """Start of the newest bucket that has fully ended at ``now_ms`` (start + period <= now)."""
    return bucket_start(period, now_ms) - period_ms(period)


def _int_param(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


class Venue:
    """Shared shape of a venue: routing, error bodies and where the rows of a body sit."""

    name = ""
    routes: ClassVar[dict[str, str]] = {}  # path -> endpoint

    def route(self, path: str) -> tuple[str, str | None] | None:
        endpoint = self.routes.get(path)
        return (endpoint, None) if endpoint else None

    def handle(self, request: Request, state: SimState) -> Reply:
        handler = getattr(self, "do_" + request.endpoint.replace("-", "_"))
        return handler(request, state)

    def request_symbol(self, request: Request) -> str | None:
        """The symbol a request is about (instrument id or base), for fault matching; None = all symbols."""
        return request.params.get("symbol") or None

    def error_body(self, status: int, now_ms: int) -> Any:
        """The venue's default body for an HTTP error status (fault kind ``status``)."""
        raise NotImplementedError

    def error_envelope(self, code: Any, msg: str | None, now_ms: int) -> Any:
        """The venue's error envelope (fault kind ``error_envelope``, sent with HTTP 200 by default)."""
        raise NotImplementedError

    def rate_limited(self, rejection: Rejection, client: str, now_ms: int) -> Reply:
        raise NotImplementedError

    def locate_rows(self, endpoint: str, body: Any) -> tuple[list | None, list]:
        """(the list holding the data rows or None, the row containers faults operate on)."""
        raise NotImplementedError

    def empty(self, endpoint: str, body: Any) -> Any:
        """The same envelope with no data."""
        container, _rows = self.locate_rows(endpoint, body)
        if container is not None:
            container.clear()
            return body
        return {}


# ---------------------------------------------------------------------------------------------- Binance §1
class Binance(Venue):
    name = "binance"
    routes: ClassVar[dict[str, str]] = {
        "/fapi/v1/exchangeInfo": "exchangeInfo",
        "/fapi/v1/premiumIndex": "premiumIndex",
        "/fapi/v1/openInterest": "openInterest",
        "/futures/data/openInterestHist": "openInterestHist",
        "/futures/data/topLongShortPositionRatio": "topLongShortPositionRatio",
        "/futures/data/topLongShortAccountRatio": "topLongShortAccountRatio",
        "/futures/data/globalLongShortAccountRatio": "globalLongShortAccountRatio",
    }
    GEO_BLOCK_MSG = (
        "Service unavailable from a restricted location according to 'b. Eligibility' in "
        "https://www.binance.com/en/terms. Please contact customer service if you believe you received this "
        "message in error."
    )

    @staticmethod
    def fail(status: int, code: int, msg: str) -> VenueError:
        return VenueError(Reply(status, {"code": code, "msg": msg}))

    def _instrument(self, state: SimState, symbol: str | None) -> Instrument:
        if not symbol:
            raise self.fail(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        instrument = state.instrument("binance", symbol)
        if instrument is None or instrument.instrument_id != symbol:
            raise self.fail(400, -1121, "Invalid symbol.")
        return instrument

    def do_exchangeInfo(self, request: Request, state: SimState) -> Reply:
        symbols = []
        for instrument in state.instruments("binance"):
            delivery = instrument.kind == "delivery"
            if delivery:
                delivery_date = BINANCE_DELIVERY_DATE
            elif instrument.status != "TRADING":  # §1.7: a delisted perp's deliveryDate is its delisting time
                delivery_date = (request.now_ms - DAY_MS) // HOUR_MS * HOUR_MS
            else:
                delivery_date = BINANCE_PERPETUAL_DELIVERY_DATE
            symbols.append({
                "symbol": instrument.instrument_id,
                "pair": f"{instrument.base}USDT",
                "contractType": "CURRENT_QUARTER" if delivery else "PERPETUAL",
                "deliveryDate": delivery_date,
                "onboardDate": 1569398400000,
                "status": instrument.status,
                "maintMarginPercent": "2.5000",
                "requiredMarginPercent": "5.0000",
                "baseAsset": instrument.base,
                "quoteAsset": "USDT",
                "marginAsset": "USDT",
                "pricePrecision": state.price_decimals(instrument.base),
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
        mark = state.mark_price_string("binance", instrument.instrument_id, now_ms)
        row: dict[str, Any] = {
            "symbol": instrument.instrument_id,
            "markPrice": mark,
            "indexPrice": state.index_price_string(instrument.base, now_ms),
            "estimatedSettlePrice": mark,
            "lastFundingRate": state.funding_rate_string("binance", instrument.instrument_id, now_ms),
            "interestRate": "0.00010000",
            "nextFundingTime": state.next_funding_time(now_ms),
            "time": now_ms,
        }
        if not instrument.tradable:  # §1.6 gotcha: delivery and settling rows carry "" funding fields
            row.update(estimatedSettlePrice="", lastFundingRate="", interestRate="", nextFundingTime=0)
        return row

    def do_premiumIndex(self, request: Request, state: SimState) -> Reply:
        symbol = request.params.get("symbol")
        if symbol:
            return Reply(200, self._premium_row(state, self._instrument(state, symbol), request.now_ms))
        rows = [self._premium_row(state, i, request.now_ms) for i in state.instruments("binance")]
        return Reply(200, rows)

    def do_openInterest(self, request: Request, state: SimState) -> Reply:
        instrument = self._instrument(state, request.params.get("symbol"))
        coins = state.open_interest_strings("binance", instrument.instrument_id, request.now_ms)["coins"]
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
        if period not in BINANCE_PERIODS:
            raise self.fail(400, -1120, "Invalid interval.")
        numbers: dict[str, int | None] = {}
        for name in ("limit", "startTime", "endTime"):
            try:
                numbers[name] = _int_param(params.get(name))
            except ValueError as exc:
                raise self.fail(400, -1130, f"Data sent for parameter '{name}' is not valid.") from exc
        limit, start, end = numbers["limit"], numbers["startTime"], numbers["endTime"]
        limit = BINANCE_LIMIT_DEFAULT if limit is None else limit
        if not 1 <= limit <= BINANCE_LIMIT_MAX:
            raise self.fail(400, -1130, "Data sent for parameter 'limit' is not valid.")
        oldest = request.now_ms - BINANCE_HISTORY_MS
        if start is not None and start < oldest:
            raise self.fail(400, -1130, "Data sent for parameter 'startTime' is not valid.")
        if start is not None and end is not None and start > end:
            raise self.fail(400, -1023, "Start time is greater than end time.")
        last = _last_ended_start(period, request.now_ms)
        if end is not None:
            last = min(last, bucket_start(period, end))
        buckets = _ended_buckets(period, max(oldest, start or 0), last)
        return period, buckets[:limit] if start is not None else buckets[-limit:]

    def _history(self, request: Request, state: SimState, row_for) -> Reply:
        instrument = self._instrument(state, request.params.get("symbol"))
        period, buckets = self._history_buckets(request)
        if not instrument.tradable:
            return Reply(200, [])
        return Reply(200, [row_for(instrument, period, bucket) for bucket in buckets])

    def do_openInterestHist(self, request: Request, state: SimState) -> Reply:
        def row(instrument: Instrument, period: str, bucket: int) -> dict[str, Any]:
            served = state.binance_oi_hist_strings(instrument.instrument_id, period, bucket)
            return {"symbol": instrument.instrument_id, "sumOpenInterest": served["coins"],
                    "sumOpenInterestValue": served["usd"], "CMCCirculatingSupply": served["supply"],
                    "timestamp": bucket}  # fmt: skip

        return self._history(request, state, row)

    def _ratio_history(self, request: Request, state: SimState) -> Reply:
        def row(instrument: Instrument, period: str, bucket: int) -> dict[str, Any]:
            served = state.ratio_strings("binance", request.endpoint, instrument.instrument_id, period, bucket)
            # §1.3: even the position ratio names its shares longAccount/shortAccount on USD-M.
            return {"symbol": instrument.instrument_id, "longShortRatio": served["ratio"],
                    "longAccount": served["long_share"], "shortAccount": served["short_share"],
                    "timestamp": bucket}  # fmt: skip

        return self._history(request, state, row)

    do_topLongShortPositionRatio = _ratio_history
    do_topLongShortAccountRatio = _ratio_history
    do_globalLongShortAccountRatio = _ratio_history

    def error_body(self, status: int, now_ms: int) -> Any:
        if status == 451:
            return {"code": 0, "msg": self.GEO_BLOCK_MSG}
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


# ---------------------------------------------------------------------------------------------- OKX §2
class Okx(Venue):
    name = "okx"
    routes: ClassVar[dict[str, str]] = {
        "/api/v5/public/instruments": "instruments",
        "/api/v5/public/open-interest": "open-interest",
        "/api/v5/public/mark-price": "mark-price",
        "/api/v5/public/funding-rate": "funding-rate",
        "/api/v5/rubik/stat/contracts/long-short-account-ratio": "long-short-account-ratio",
        "/api/v5/rubik/stat/contracts/open-interest-volume": "open-interest-volume",
    }
    UNKNOWN_INSTRUMENT = "Instrument ID, Instrument ID code, or Spread ID doesn't exist."

    @staticmethod
    def ok(data: list) -> Reply:
        return Reply(200, {"code": "0", "msg": "", "data": data})

    @staticmethod
    def fail(status: int, code: str, msg: str) -> VenueError:
        return VenueError(Reply(status, {"code": code, "msg": msg, "data": []}))

    def _required(self, request: Request, name: str) -> str:
        value = request.params.get(name)
        if not value:
            raise self.fail(400, "50014", f"Parameter {name} can not be empty.")
        return value

    def _swaps(self, request: Request, state: SimState) -> list[Instrument]:
        """All swaps for instType=SWAP (USDT, USDC and inverse alike, §2.2), or the one ``instId``."""
        inst_type = self._required(request, "instType")
        if inst_type != "SWAP":
            return []
        inst_id = request.params.get("instId")
        if inst_id:
            instrument = state.instrument("okx", inst_id)
            if instrument is None or instrument.instrument_id != inst_id:
                raise self.fail(200, "51001", self.UNKNOWN_INSTRUMENT)
            return [instrument]
        return state.instruments("okx")

    def request_symbol(self, request: Request) -> str | None:
        inst_id = request.params.get("instId")
        if inst_id and inst_id != "ANY":
            return inst_id
        return request.params.get("ccy") or None

    def do_instruments(self, request: Request, state: SimState) -> Reply:
        rows = []
        for instrument in self._swaps(request, state):
            family = f"{instrument.base}-{instrument.quote}"
            inverse = instrument.kind == "inverse"
            rows.append({
                "alias": "", "auctionEndTime": "", "baseCcy": "", "category": "1", "ctMult": "1",
                "ctType": "inverse" if inverse else "linear", "ctVal": instrument.contract_value,
                "ctValCcy": "USD" if inverse else instrument.base, "expTime": "", "instFamily": family,
                "instId": instrument.instrument_id, "instType": "SWAP", "lever": "50", "listTime": "1611916800000",
                "lotSz": "1", "maxIcebergSz": "100000000.0000000000000000", "maxLmtAmt": "20000000",
                "maxLmtSz": "100000000", "maxMktAmt": "", "maxMktSz": "12000", "maxStopSz": "12000",
                "maxTriggerSz": "100000000.0000000000000000", "maxTwapSz": "100000000.0000000000000000",
                "minSz": "1", "optType": "", "quoteCcy": "", "ruleType": "normal",
                "settleCcy": instrument.base if inverse else instrument.quote, "state": instrument.status,
                "stk": "", "tickSz": fmt(Decimal(1).scaleb(-state.price_decimals(instrument.base)),
                                         state.price_decimals(instrument.base)),
                "uly": family,
            })  # fmt: skip
        return self.ok(rows)

    def do_open_interest(self, request: Request, state: SimState) -> Reply:
        rows = []
        for instrument in self._swaps(request, state):
            served = state.open_interest_strings("okx", instrument.instrument_id, request.now_ms)
            rows.append({"instType": "SWAP", "instId": instrument.instrument_id, "oi": served["contracts"],
                         "oiCcy": served["coins"], "oiUsd": served["usd"], "ts": str(request.now_ms)})  # fmt: skip
        return self.ok(rows)

    def do_mark_price(self, request: Request, state: SimState) -> Reply:
        rows = [
            {"instType": "SWAP", "instId": i.instrument_id, "ts": str(request.now_ms),
             "markPx": state.mark_price_string("okx", i.instrument_id, request.now_ms)}
            for i in self._swaps(request, state)
        ]  # fmt: skip
        return self.ok(rows)

    def do_funding_rate(self, request: Request, state: SimState) -> Reply:
        inst_id = self._required(request, "instId")
        if inst_id == "ANY":  # §2.4: ANY returns every swap
            instruments = state.instruments("okx")
        else:
            instrument = state.instrument("okx", inst_id)
            if instrument is None or instrument.instrument_id != inst_id:
                raise self.fail(200, "51001", self.UNKNOWN_INSTRUMENT)
            instruments = [instrument]
        now = request.now_ms
        funding_time = state.next_funding_time(now)
        rows = []
        for instrument in instruments:
            rate = state.funding_rate_string("okx", instrument.instrument_id, now)
            rows.append({
                "formulaType": "noRate", "fundingRate": rate, "fundingTime": str(funding_time),
                "impactValue": "", "instId": instrument.instrument_id, "instType": "SWAP", "interestRate": "",
                "maxFundingRate": "0.00375", "method": "current_period", "minFundingRate": "-0.00375",
                "nextFundingRate": "", "nextFundingTime": str(funding_time + 8 * HOUR_MS),
                "premium": fmt(float(rate) * 0.5, 16), "settFundingRate": rate, "settState": "settled",
                "ts": str(now),
            })  # fmt: skip
        return self.ok(rows)

    def _ccy_buckets(self, request: Request, state: SimState) -> tuple[str, str, list[int]]:
        """§2.5: ccy, period in {5m, 1H, 1D}, begin/end filters, window per period; newest first."""
        ccy = self._required(request, "ccy")
        period = request.params.get("period") or "5m"
        if period not in OKX_CCY_WINDOWS:
            raise self.fail(400, "51000", "Parameter period error")
        if not any(i.base == ccy for i in state.instruments("okx")):
            raise self.fail(200, "51001", self.UNKNOWN_INSTRUMENT)
        try:
            begin = _int_param(request.params.get("begin"))
            end = _int_param(request.params.get("end"))
        except ValueError as exc:
            raise self.fail(400, "51000", "Parameter begin error") from exc
        first = max(request.now_ms - OKX_CCY_WINDOWS[period], begin or 0)
        last = _last_ended_start(period, request.now_ms)
        if end is not None:
            last = min(last, bucket_start(period, end))
        return ccy, period, _ended_buckets(period, first, last)[::-1]

    def do_long_short_account_ratio(self, request: Request, state: SimState) -> Reply:
        ccy, period, buckets = self._ccy_buckets(request, state)
        return self.ok([
            [str(b), state.ratio_strings("okx", "long-short-account-ratio", ccy, period, b)["ratio"]]
            for b in buckets
        ])  # fmt: skip

    def do_open_interest_volume(self, request: Request, state: SimState) -> Reply:
        ccy, period, buckets = self._ccy_buckets(request, state)
        rows = []
        for bucket in buckets:
            served = state.okx_oi_volume_strings(ccy, period, bucket)
            rows.append([str(bucket), served["oi_usd"], served["volume_usd"]])
        return self.ok(rows)

    def error_body(self, status: int, now_ms: int) -> Any:
        if status == 429:
            return {"msg": "Too Many Requests", "code": "50011"}  # §2.0 observed: no data field
        if status == 503:
            return {"code": "50001", "msg": "Service temporarily unavailable", "data": []}
        return {"code": "50000" if status >= 500 else str(status), "msg": _reason(status), "data": []}

    def error_envelope(self, code: Any, msg: str | None, now_ms: int) -> Any:
        default = "Rate limit reached. Please refer to API documentation and throttle requests accordingly."
        return {"code": str(code or "50011"), "msg": default if msg is None else msg, "data": []}

    def rate_limited(self, rejection: Rejection, client: str, now_ms: int) -> Reply:
        return Reply(429, {"msg": "Too Many Requests", "code": "50011"})

    def locate_rows(self, endpoint: str, body: Any) -> tuple[list | None, list]:
        data = body.get("data") if isinstance(body, dict) else None
        return (data, data) if isinstance(data, list) else (None, [])


# ---------------------------------------------------------------------------------------------- Bitget §3
class Bitget(Venue):
    name = "bitget"
    routes: ClassVar[dict[str, str]] = {
        "/api/v2/mix/market/contracts": "contracts",
        "/api/v2/mix/market/tickers": "tickers",
        "/api/v2/mix/market/open-interest": "open-interest",
        "/api/v2/mix/market/account-long-short": "account-long-short",
        "/api/v2/mix/market/position-long-short": "position-long-short",
        "/api/v2/mix/market/long-short": "long-short",
    }
    RATIO_FIELDS: ClassVar[dict[str, tuple[str, str, str]]] = {
        "account-long-short": ("longAccountRatio", "shortAccountRatio", "longShortAccountRatio"),
        "position-long-short": ("longPositionRatio", "shortPositionRatio", "longShortPositionRatio"),
        "long-short": ("longRatio", "shortRatio", "longShortRatio"),
    }

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
        instrument = state.instrument("bitget", symbol)
        if instrument is None or instrument.instrument_id != symbol:
            raise self.fail(400, "40034", f"Parameter {symbol} does not exist", request.now_ms)
        return instrument

    def do_contracts(self, request: Request, state: SimState) -> Reply:
        if not self._usdt_futures(request):
            return self.ok([], request.now_ms)
        instruments = state.instruments("bitget")
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
                "launchTime": "", "fundInterval": "8", "minLever": "1", "maxLever": "125",
                "posLimit": "0.05", "maintainTime": "", "isRwa": "NO",
            })  # fmt: skip
        return self.ok(rows, request.now_ms)

    def do_tickers(self, request: Request, state: SimState) -> Reply:
        if not self._usdt_futures(request):
            return self.ok([], request.now_ms)
        now = request.now_ms
        rows = []
        for instrument in state.instruments("bitget"):
            symbol = instrument.instrument_id
            mark = state.mark_price_string("bitget", symbol, now)
            decimals = state.price_decimals(instrument.base)
            step = float(mark) * 0.0001
            rows.append({
                "symbol": symbol, "lastPr": mark, "askPr": fmt(float(mark) + step, decimals),
                "bidPr": fmt(float(mark) - step, decimals), "bidSz": "1.25", "askSz": "0.75",
                "high24h": fmt(float(mark) * 1.03, decimals), "low24h": fmt(float(mark) * 0.97, decimals),
                "ts": str(now), "change24h": "0.0123", "baseVolume": "0", "quoteVolume": "0",
                "usdtVolume": "0", "openUtc": mark, "changeUtc24h": "0.0045",
                "indexPrice": state.index_price_string(instrument.base, now),
                "fundingRate": state.funding_rate_string("bitget", symbol, now),
                "holdingAmount": state.open_interest_strings("bitget", symbol, now)["coins"],
                "deliveryStartTime": None, "deliveryTime": None, "deliveryStatus": "",
                "open24h": mark, "markPrice": mark,
            })  # fmt: skip
        return self.ok(rows, now)

    def do_open_interest(self, request: Request, state: SimState) -> Reply:
        instrument = self._instrument(request, state)
        self._required(request, "productType")
        size = state.open_interest_strings("bitget", instrument.instrument_id, request.now_ms)["coins"]
        data = {"openInterestList": [{"symbol": instrument.instrument_id, "size": size}], "ts": str(request.now_ms)}
        return self.ok(data, request.now_ms)

    def _ratios(self, request: Request, state: SimState) -> Reply:
        instrument = self._instrument(request, state)
        period = request.params.get("period") or "5m"
        allowed = BITGET_LONG_SHORT_PERIODS if request.endpoint == "long-short" else BITGET_PERIODS
        if period not in allowed:
            raise self.fail(400, "40808", "Parameter verification exception period", request.now_ms)
        last = _last_ended_start(period, request.now_ms)
        first = last - (BITGET_SERIES_LENGTH - 1) * period_ms(period)
        long_name, short_name, ratio_name = self.RATIO_FIELDS[request.endpoint]
        rows = []
        for bucket in _ended_buckets(period, first, last):
            served = state.ratio_strings("bitget", request.endpoint, instrument.instrument_id, period, bucket)
            rows.append({long_name: served["long_share"], short_name: served["short_share"],
                         ratio_name: served["ratio"], "ts": str(bucket)})  # fmt: skip
        return self.ok(rows, request.now_ms)

    do_account_long_short = _ratios
    do_position_long_short = _ratios
    do_long_short = _ratios

    def error_body(self, status: int, now_ms: int) -> Any:
        code = "429" if status == 429 else "40015" if status >= 500 else str(status)
        msg = "Too Many Requests" if status == 429 else _reason(status)
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


# ---------------------------------------------------------------------------------------------- Strike §4
class Strike(Venue):
    name = "strike"
    routes: ClassVar[dict[str, str]] = {"/markets": "markets"}

    def route(self, path: str) -> tuple[str, str | None] | None:
        if path.startswith("/market/") and path.count("/") == 2:
            return "market", path.removeprefix("/market/")
        return super().route(path)

    def request_symbol(self, request: Request) -> str | None:
        return request.path_symbol

    def _market(self, state: SimState, base: str, now_ms: int) -> dict[str, str]:
        """All numbers of one market as strings (snake_case names of the flat variant)."""
        oi = state.open_interest_strings("strike", base, now_ms)
        volume = state.strike_volume_strings(base, now_ms)
        long_rate = Decimal(state.funding_rate_string("strike", base, now_ms))
        short_rate = -long_rate * Decimal("0.6")
        return {
            "price": state.mark_price_string("strike", base, now_ms),
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
        listed = state.listed("strike")
        if request.options.get("strike_markets_shape", "full") == "symbols_only":
            return Reply(200, {"markets": [{"symbol": s} for s in listed.values()], "count": len(listed)})
        markets = [self._camel(s, self._market(state, base, request.now_ms)) for base, s in listed.items()]
        return Reply(200, {"markets": markets})

    def do_market(self, request: Request, state: SimState) -> Reply:
        symbol = request.path_symbol or ""
        instrument = state.instrument("strike", symbol)
        if instrument is None or instrument.instrument_id != symbol:
            raise VenueError(Reply(404, {"error": 404, "message": f"Market not found: {symbol}"}))
        m = self._market(state, instrument.base, request.now_ms)
        shape = request.options.get("strike_market_shape", "flat")
        if shape == "camel":
            return Reply(200, self._camel(symbol, m))
        if shape == "wrapped":
            iso = _iso(request.now_ms)
            return Reply(200, {"success": True, "message": "Market data retrieved successfully", "data": {
                "symbol": symbol, "current_price": m["price"],
                "funding_rate": {"long_rate": m["long_funding_rate_hourly"],
                                 "short_rate": m["short_funding_rate_hourly"],
                                 "next_update": _iso(request.now_ms // HOUR_MS * HOUR_MS + HOUR_MS)},
                "open_interest": {"long_oi": m["long_oi"], "short_oi": m["short_oi"], "total_oi": m["total_oi"],
                                  "skew": m["skew"]},
                "volume": {"volume_24h": m["volume_24h"], "volume_1h": m["volume_1h"], "trades_24h": 1523},
                "position_multiplier": "0.000001", "last_updated": iso,
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

    def error_body(self, status: int, now_ms: int) -> Any:
        if status == 429:
            return {"success": False, "message": "Too Many Requests"}
        return {"error": status, "message": _reason(status)}

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


def _iso(ts_ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


VENUE_WIRES: dict[str, Venue] = {venue.name: venue for venue in (Binance(), Okx(), Bitget(), Strike())}


def route(path: str) -> tuple[Venue, str, str | None] | None:
    """(venue, endpoint, path symbol) for a request path, or None when no venue serves it."""
    for venue in VENUE_WIRES.values():
        found = venue.route(path)
        if found:
            return venue, found[0], found[1]
    return None
