"""Hyperliquid (venues-more.md §2): ``POST /info`` reads named by their JSON body, the weight limit, the universe.

Every read is ``POST /info`` with ``{"type": ...}``; the endpoint is the body's ``type`` (``metaAndAssetCtxs``,
``meta``), a body that does not deserialize is HTTP 422 in plain text. Responses are bare JSON: the two-element
array ``[meta, assetCtxs]`` aligned by index, decimals as strings, ``premium``/``midPx``/``impactPxs`` null where the
book is thin. ``k``-prefixed names (``kPEPE``) trade in thousands of the token; a delisted asset stays in the
universe (``isDelisted: true``) with zero OI; ``{"dex": "xyz"}`` answers with a builder-deployed (HIP-3) dex whose
names are ``xyz:COIN`` (the doc's example values). Funding is the current hourly rate. 1200 weight / minute / IP,
20 per ``metaAndAssetCtxs``; an exceeded limit is HTTP 429.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from positioning.sim.common import fmt
from positioning.sim.venues.base import Instrument, Limit, Rejection, Reply, Request, SimVenue

if TYPE_CHECKING:
    from positioning.sim.state import SimState

INFO_PATH = "/info"
READS = ("metaAndAssetCtxs", "meta")  # the info types served; any other body is answered with 422
BAD_BODY = "info"  # the endpoint name of a body that names no served type
DESERIALIZE_ERROR = "Failed to deserialize the JSON body into the target type"
MULTIPLIED = {"PEPE": "kPEPE", "SHIB": "kSHIB", "BONK": "kBONK"}  # thousands of the token per unit
DELISTED = "MKR"  # kept in the universe with isDelisted, as LOOM in the doc
# §2.1 HIP-3 example (dex "xyz"), values verbatim.
HIP3_UNIVERSE = [{"szDecimals": 4, "name": "xyz:XYZ100", "maxLeverage": 20, "marginTableId": 20, "onlyIsolated": True,
                  "marginMode": "strictIsolated", "growthMode": "enabled",
                  "lastGrowthModeChangeTime": "2025-11-23T17:21:40.390706535"}]  # fmt: skip
HIP3_CONTEXTS = [{"funding": "0.0002110251", "openInterest": "0.0854", "prevDayPx": "25956.0", "dayNtlVlm": "462.9758",
                  "premium": "0.0031136686", "oraclePx": "25372.0", "markPx": "25451.0", "midPx": "25451.0",
                  "impactPxs": ["24946.0", "25956.0"], "dayBaseVlm": "0.0183"}]  # fmt: skip
MARGIN_TABLES = [[50, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": 50}]}]]


class Hyperliquid(SimVenue):
    name = "hyperliquid"
    routes: ClassVar[dict[str, str]] = {INFO_PATH: BAD_BODY}
    limits: ClassVar[dict[str, Limit]] = {"weight": Limit(1200, 60, "§2.0 1200 weight / minute / IP")}
    unlisted = frozenset({"FTM", "KAS", "JTO"})
    ratio_metrics = ()
    oi_scale = 0.18
    funding_decimals = 10
    funding_interval_hours = 1  # "The funding rate on Hyperliquid is paid every hour": the hourly rate is served
    oi_decimals = 2
    row_symbol_keys = ("name",)  # universe entries name their coin; contexts carry no name

    # ------------------------------------------------------------------ routing and limits
    def route_request(self, method: str, path: str, body: Any) -> tuple[str, str | None] | None:
        if path != INFO_PATH or method != "POST":
            return None
        kind = body.get("type") if isinstance(body, dict) else None
        return (kind if kind in READS else BAD_BODY), None

    def endpoints(self) -> frozenset[str]:
        return frozenset({*READS, BAD_BODY})

    def request_symbol(self, request: Request) -> str | None:
        return None  # every read here is about the whole universe

    def request_costs(self, endpoint: str, params: Mapping[str, str]) -> list[tuple[str, int]]:
        return [("weight", 20)]  # §2.0 "All other documented info requests have weight 20"

    # ------------------------------------------------------------------ listing and numbers
    def instruments(self, state: SimState) -> list[Instrument]:
        listing = []
        for base in state.symbols:
            if base in self.unlisted:
                continue
            served = MULTIPLIED.get(base, base)
            listing.append(Instrument(self.name, served, base, quote="USDC", status="delisted" if base == DELISTED
                                      else "listed", tradable=base != DELISTED, multiplier=1000 if served != base
                                      else 1, venue_base=served))  # fmt: skip
        return listing

    def open_interest_strings(self, state: SimState, instrument: Instrument, ts_ms: int) -> dict[str, str]:
        if not instrument.tradable:
            return {"coins": fmt(0, self.oi_decimals)}  # a delisted market holds no positions
        return super().open_interest_strings(state, instrument, ts_ms)

    # ------------------------------------------------------------------ wire
    def handle(self, request: Request, state: SimState) -> Reply:
        if request.endpoint == BAD_BODY:
            return Reply(422, text=DESERIALIZE_ERROR, content_type="text/plain; charset=utf-8")
        dex = request.body.get("dex") or ""
        if dex:
            # Copies: faults edit the rows of a reply in place.
            universe, contexts = (
                ([dict(e) for e in HIP3_UNIVERSE], [dict(c) for c in HIP3_CONTEXTS]) if dex == "xyz" else ([], [])
            )
        else:
            universe, contexts = self._first_dex(request, state)
        meta = {"universe": universe, "marginTables": MARGIN_TABLES, "collateralToken": 0}
        return Reply(200, meta if request.endpoint == "meta" else [meta, contexts])

    def _first_dex(self, request: Request, state: SimState) -> tuple[list[dict], list[dict]]:
        universe, contexts = [], []
        now = request.now_ms
        for instrument in state.instruments(self.name):
            entry: dict[str, Any] = {"name": instrument.instrument_id, "szDecimals": self.oi_decimals,
                                     "maxLeverage": 50 if instrument.base in ("BTC", "ETH") else 10}  # fmt: skip
            if not instrument.tradable:
                entry.update(isDelisted=True, marginMode="strictIsolated", onlyIsolated=True)
            universe.append(entry)
            mark = state.mark_price_string(self.name, instrument.instrument_id, now)
            decimals = state.price_decimals(instrument.base, instrument.multiplier)
            oracle = state.index_price_string(instrument.base, now, instrument.multiplier)
            coins = state.open_interest_strings(self.name, instrument.instrument_id, now)["coins"]
            thin = not instrument.tradable  # no book: the nullable fields are null (§2.1)
            step = float(mark) * 0.0001
            contexts.append({
                "funding": state.funding_rate_string(self.name, instrument.instrument_id, now),
                "openInterest": coins, "prevDayPx": fmt(float(mark) * 0.99, decimals),
                "dayNtlVlm": fmt(float(coins) * float(mark) * 0.8, 2),
                "premium": None if thin else fmt((float(mark) - float(oracle)) / float(oracle), 8),
                "oraclePx": oracle, "markPx": mark, "midPx": None if thin else mark,
                "impactPxs": None if thin else [fmt(float(mark) - step, decimals), fmt(float(mark) + step, decimals)],
                "dayBaseVlm": fmt(float(coins) * 0.8, 2),
            })  # fmt: skip
        return universe, contexts

    # ------------------------------------------------------------------ errors
    def error_body(self, status: int, now_ms: int) -> Any:
        return None  # bodies are not documented; a 500 for an unknown coin is observed as "null"

    def error_envelope(self, code: Any, msg: str | None, now_ms: int) -> Any:
        return {"code": 400 if code is None else code, "msg": msg or "bad request", "data": None}

    def rate_limited(self, rejection: Rejection, client: str, now_ms: int) -> Reply:
        return Reply(429, None)

    def locate_rows(self, endpoint: str, body: Any) -> tuple[list | None, list]:
        """The contexts hold the data; faults operate on the universe entries and the contexts (a fault for one
        symbol finds its universe entry by ``name``; the contexts, aligned by index, carry none)."""
        if isinstance(body, list) and len(body) == 2 and isinstance(body[1], list):
            return body[1], [*body[0].get("universe", []), *body[1]]
        if isinstance(body, dict):  # meta
            return None, body.get("universe", [])
        return None, []

    def empty(self, endpoint: str, body: Any) -> Any:
        if isinstance(body, list) and len(body) == 2:
            body[0]["universe"].clear()
            body[1].clear()
        return body


VENUE = Hyperliquid()
