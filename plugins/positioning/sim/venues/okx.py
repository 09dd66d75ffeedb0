"""OKX (venues.md §2): wire format, per-endpoint rate limits, listing with contract sizes, and number formats.

Everything is a string inside ``{"code": "0", "msg": "", "data": [...]}``; instruments are ``<BASE>-USDT-SWAP``
sized in contracts (``ctVal`` base coins each), so open interest is served as contracts, coins and USD. The
listing also carries an inverse and a USDC swap that clients must filter out.
"""

from __future__ import annotations

import math
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
    period_ms,
    reason,
)
from positioning.sim.venues.base import Instrument, Limit, Rejection, Reply, Request, SimVenue, VenueError

if TYPE_CHECKING:
    from positioning.sim.state import SimState

CCY_WINDOWS = {"5m": 2 * DAY_MS, "1H": 30 * DAY_MS, "1D": 180 * DAY_MS}  # §2.5
CONTRACT_VALUES = {"BTC": "0.01", "ETH": "0.1", "SOL": "1", "BNB": "0.01", "BCH": "0.1", "LTC": "1"}
INVERSE_ID = "BTC-USD-SWAP"  # coin-margined: ctVal 100 USD, must be filtered out by clients
USDC_ID = "BTC-USDC-SWAP"  # USDC-margined linear swap, must be filtered out by clients
NOT_TRADING = "FTM"  # listed with state suspend
UNKNOWN_INSTRUMENT = "Instrument ID, Instrument ID code, or Spread ID doesn't exist."


class Okx(SimVenue):
    name = "okx"
    routes: ClassVar[dict[str, str]] = {
        "/api/v5/public/instruments": "instruments",
        "/api/v5/public/open-interest": "open-interest",
        "/api/v5/public/mark-price": "mark-price",
        "/api/v5/public/funding-rate": "funding-rate",
        "/api/v5/rubik/stat/contracts/long-short-account-ratio": "long-short-account-ratio",
        "/api/v5/rubik/stat/contracts/open-interest-volume": "open-interest-volume",
        "/api/v5/rubik/stat/taker-volume": "taker-volume",
    }
    # One bucket per endpoint, named like it (the default request_costs).
    limits: ClassVar[dict[str, Limit]] = {
        "instruments": Limit(20, 2, "§2.1 20 req / 2 s, IP + instrument type"),
        "open-interest": Limit(20, 2, "§2.2 20 req / 2 s"),
        "mark-price": Limit(10, 2, "§2.3 10 req / 2 s"),
        "funding-rate": Limit(10, 2, "§2.4 10 req / 2 s (Nov-2025 page)"),
        "long-short-account-ratio": Limit(5, 2, "§2.5 5 req / 2 s, IP (own bucket per endpoint)"),
        "open-interest-volume": Limit(5, 2, "§2.5 5 req / 2 s, IP (own bucket per endpoint)"),
        "taker-volume": Limit(5, 2, "venues-more.md §4.1 5 req / 2 s, IP"),
    }
    unlisted = frozenset({"TAO", "HYPE", "KAS", "MEME"})
    ratio_metrics = ("long-short-account-ratio",)
    oi_scale = 0.45
    funding_decimals = 16
    funding_intervals: ClassVar[dict[str, int]] = {"WIF": 4}  # §2.4: the interval is next minus this funding time
    row_symbol_keys = ("instId",)

    # ------------------------------------------------------------------ listing and numbers
    def instruments(self, state: SimState) -> list[Instrument]:
        listing = []
        for base in state.symbols:
            if base not in self.unlisted:
                live = base != NOT_TRADING
                listing.append(Instrument(self.name, f"{base}-USDT-SWAP", base, status="live" if live else "suspend",
                                          tradable=live, contract_value=self.ct_val(state, base)))  # fmt: skip
        listing.insert(1, Instrument(self.name, INVERSE_ID, "BTC", quote="USD", kind="inverse", status="live",
                                     tradable=False, contract_value="100"))  # fmt: skip
        listing.insert(2, Instrument(self.name, USDC_ID, "BTC", quote="USDC", kind="usdc", status="live",
                                     tradable=False, contract_value="0.0001"))  # fmt: skip
        return listing

    @staticmethod
    def ct_val(state: SimState, base: str) -> str:
        """A power of ten making one contract worth roughly $10-$100, as OKX sizes its swaps."""
        if base in CONTRACT_VALUES:
            return CONTRACT_VALUES[base]
        exponent = math.floor(math.log10(100 / state.base_price(base)))
        return fmt(Decimal(10) ** exponent, max(0, -exponent))

    def contract_value(self, state: SimState, symbol: str) -> float:
        """``ctVal`` of the symbol's swap (base coins per contract; USD for the inverse swap)."""
        return float(state.require(self.name, symbol).contract_value)

    def open_interest_strings(self, state: SimState, instrument: Instrument, ts_ms: int) -> dict[str, str]:
        """``contracts`` (oi), ``coins`` (oiCcy) and ``usd`` (oiUsd), consistent with ``ctVal`` and the mark."""
        coins = state.oi_coins(self.name, instrument, ts_ms)
        mark = Decimal(state.mark_price_string(self.name, instrument.instrument_id, ts_ms))
        ct_val = Decimal(instrument.contract_value)
        if instrument.kind == "inverse":
            contracts = Decimal(fmt(coins * float(mark) / float(ct_val), 0))
            usd = contracts * ct_val
            return {"contracts": format(contracts, "f"), "coins": fmt(usd / mark, 8), "usd": fmt(usd, 2)}
        contracts = Decimal(fmt(coins / float(ct_val), 2))
        coins_exact = contracts * ct_val  # oi × ctVal = oiCcy exactly
        return {"contracts": format(contracts, "f"), "coins": format(coins_exact, "f"),
                "usd": fmt(coins_exact * mark, 4)}  # fmt: skip

    def open_interest(self, state: SimState, symbol: str, served: dict[str, float], ts_ms: int) -> dict[str, Any]:
        return served  # OKX serves USD itself (oiUsd)

    def oi_volume_strings(self, state: SimState, symbol: str, period: str, bucket_ms: int) -> dict[str, str]:
        """Rubik open-interest-volume of a coin (§2.5): ``oi_usd`` and ``volume_usd`` of the bucket."""
        instrument = state.require(self.name, symbol)
        coins = state.oi_coins(self.name, instrument, bucket_ms) * 1.08  # swaps plus the coin's dated futures
        oi_usd = coins * state.raw_index_price(instrument.base, bucket_ms)
        turnover = 2.0 * period_ms(period) / DAY_MS * (0.5 + state.unit("okx-vol", instrument.base, bucket_ms))
        return {"oi_usd": fmt(oi_usd, 4), "volume_usd": fmt(oi_usd * turnover, 4)}

    # ------------------------------------------------------------------ wire
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
            instrument = state.instrument(self.name, inst_id)
            if instrument is None or instrument.instrument_id != inst_id:
                raise self.fail(200, "51001", UNKNOWN_INSTRUMENT)
            return [instrument]
        return state.instruments(self.name)

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
            served = state.open_interest_strings(self.name, instrument.instrument_id, request.now_ms)
            rows.append({"instType": "SWAP", "instId": instrument.instrument_id, "oi": served["contracts"],
                         "oiCcy": served["coins"], "oiUsd": served["usd"], "ts": str(request.now_ms)})  # fmt: skip
        return self.ok(rows)

    def do_mark_price(self, request: Request, state: SimState) -> Reply:
        rows = [
            {"instType": "SWAP", "instId": i.instrument_id, "ts": str(request.now_ms),
             "markPx": state.mark_price_string(self.name, i.instrument_id, request.now_ms)}
            for i in self._swaps(request, state)
        ]  # fmt: skip
        return self.ok(rows)

    def do_funding_rate(self, request: Request, state: SimState) -> Reply:
        inst_id = self._required(request, "instId")
        if inst_id == "ANY":  # §2.4: ANY returns every swap
            instruments = state.instruments(self.name)
        else:
            instrument = state.instrument(self.name, inst_id)
            if instrument is None or instrument.instrument_id != inst_id:
                raise self.fail(200, "51001", UNKNOWN_INSTRUMENT)
            instruments = [instrument]
        now = request.now_ms
        rows = []
        for instrument in instruments:
            rate = state.funding_rate_string(self.name, instrument.instrument_id, now)
            hours = state.funding_interval_hours(self.name, instrument.instrument_id)
            funding_time = state.next_funding_time(now, hours)
            rows.append({
                "formulaType": "noRate", "fundingRate": rate, "fundingTime": str(funding_time),
                "impactValue": "", "instId": instrument.instrument_id, "instType": "SWAP", "interestRate": "",
                "maxFundingRate": "0.00375", "method": "current_period", "minFundingRate": "-0.00375",
                "nextFundingRate": "", "nextFundingTime": str(funding_time + hours * HOUR_MS),
                "premium": fmt(float(rate) * 0.5, 16), "settFundingRate": rate, "settState": "settled",
                "ts": str(now),
            })  # fmt: skip
        return self.ok(rows)

    def _ccy_buckets(self, request: Request, state: SimState) -> tuple[str, str, list[int]]:
        """§2.5: ccy, period in {5m, 1H, 1D}, begin/end filters, window per period; newest first."""
        ccy = self._required(request, "ccy")
        period = request.params.get("period") or "5m"
        if period not in CCY_WINDOWS:
            raise self.fail(400, "51000", "Parameter period error")
        if not any(i.base == ccy for i in state.instruments(self.name)):
            raise self.fail(200, "51001", UNKNOWN_INSTRUMENT)
        try:
            begin = int_param(request.params.get("begin"))
            end = int_param(request.params.get("end"))
        except ValueError as exc:
            raise self.fail(400, "51000", "Parameter begin error") from exc
        first = max(request.now_ms - CCY_WINDOWS[period], begin or 0)
        last = last_ended_start(period, request.now_ms)
        if end is not None:
            last = min(last, bucket_start(period, end))
        return ccy, period, ended_buckets(period, first, last)[::-1]

    def do_long_short_account_ratio(self, request: Request, state: SimState) -> Reply:
        ccy, period, buckets = self._ccy_buckets(request, state)
        return self.ok([
            [str(b), state.ratio_strings(self.name, "long-short-account-ratio", ccy, period, b)["ratio"]]
            for b in buckets
        ])  # fmt: skip

    def do_open_interest_volume(self, request: Request, state: SimState) -> Reply:
        ccy, period, buckets = self._ccy_buckets(request, state)
        rows = []
        for bucket in buckets:
            served = self.oi_volume_strings(state, ccy, period, bucket)
            rows.append([str(bucket), served["oi_usd"], served["volume_usd"]])
        return self.ok(rows)

    def do_taker_volume(self, request: Request, state: SimState) -> Reply:
        """venues-more.md §4.1: ``instType`` SPOT or CONTRACTS is required; rows ``[ts, sellVol, buyVol]``."""
        inst_type = self._required(request, "instType")
        if inst_type not in ("SPOT", "CONTRACTS"):
            raise self.fail(400, "51000", "Parameter instType error")
        ccy, period, buckets = self._ccy_buckets(request, state)
        rows = []
        for bucket in buckets:
            buy, sell = state.taker_volumes(self.name, ccy, period, bucket)
            rows.append([str(bucket), fmt(sell, 4), fmt(buy, 4)])
        return self.ok(rows)

    # ------------------------------------------------------------------ errors
    def error_body(self, status: int, now_ms: int) -> Any:
        if status == 429:
            return {"msg": "Too Many Requests", "code": "50011"}  # §2.0 observed: no data field
        if status == 503:
            return {"code": "50001", "msg": "Service temporarily unavailable", "data": []}
        return {"code": "50000" if status >= 500 else str(status), "msg": reason(status), "data": []}

    def error_envelope(self, code: Any, msg: str | None, now_ms: int) -> Any:
        default = "Rate limit reached. Please refer to API documentation and throttle requests accordingly."
        return {"code": str(code or "50011"), "msg": default if msg is None else msg, "data": []}

    def rate_limited(self, rejection: Rejection, client: str, now_ms: int) -> Reply:
        return Reply(429, {"msg": "Too Many Requests", "code": "50011"})

    def locate_rows(self, endpoint: str, body: Any) -> tuple[list | None, list]:
        data = body.get("data") if isinstance(body, dict) else None
        return (data, data) if isinstance(data, list) else (None, [])


VENUE = Okx()
