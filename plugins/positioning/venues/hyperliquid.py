"""Hyperliquid perpetuals (first perp dex): endpoint, limits, errors, request plan and pure parsers
(venues-more.md §2).

Every read is ``POST /info`` with a JSON body ``{"type": ...}``; one ``metaAndAssetCtxs`` call per run gives the
universe and, aligned by index, every perp's context: ``openInterest`` (coins), ``markPx``, ``oraclePx``,
``funding``, ``dayNtlVlm``. Responses are bare JSON (a two-element array here, no envelope); decimals are strings,
``premium``/``midPx``/``impactPxs`` may be null. The payload carries no time: the loader passes the response's
received time (``params["_received_at_ms"]``, the Strike convention) and the parser uses it.

* OI in USD is not reported: it is ``openInterest × markPx`` (``usd_source`` ``mark``), computed by the loader.
* Funding is the current **hourly** rate (Hyperliquid pays funding every hour). The fact ``funding_rate`` is
  "decimal per funding interval", so it is stored as sent, and its interval is one hour (Binance/OKX/Bitget:
  8 h, Bybit: ``fundingIntervalHour``); multiply by 8 to compare with an 8-hour venue.
* ``k``-prefixed names (``kPEPE``) trade in thousands of the token (:data:`MULTIPLIED_ASSETS`).
* Delisted assets stay in the universe (``isDelisted: true``) keeping their index: listed as not trading, so a
  requested one is skipped with that reason. Builder-deployed (HIP-3) ``dex:COIN`` perps are not crypto
  positioning of the first dex and are ignored (they only appear when another ``dex`` is asked for).
* The oracle price and day volume stay in the raw files (the row types have no slot for them).

Past intervals: there is no OI history endpoint (§2.5), so a past run fetches the one call (for the venue's clock
and the symbol mapping) and records every metric as "not available for this interval".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from positioning.ingest.endpoints import Endpoint, EnvelopeError
from positioning.ingest.limits import RateLimit
from positioning.rows import Instrument, MarkPrice, OpenInterest, ParseError, field, number, optional_number
from positioning.rows import timestamp_ms as read_timestamp_ms
from positioning.venues.base import ExtractRequest, Listing, VenueExtract, VenueSpec, fetch_listing, snapshot_only

if TYPE_CHECKING:
    from positioning.ingest.http import VenueClient


VENUE = "hyperliquid"
PAST_UNAVAILABLE = ("oi_coins", "oi_usd", "mark_price", "funding_rate")

# §2.0 "REST requests share an aggregated weight limit of 1200 per minute"; metaAndAssetCtxs weighs 20.
LIMITS = {"weight": RateLimit(1200, 60.0, "§2.0 1200 weight / min / IP")}
META_AND_ASSET_CTXS = Endpoint(
    "metaAndAssetCtxs", "/info", {"weight": 20}, method="POST", request_body={"type": "metaAndAssetCtxs"}
)
RECEIVED_AT_PARAM = "_received_at_ms"
HIP3_SEPARATOR = ":"  # §2.0 builder-deployed perps "always have name in the format {dex}:{coin}"
# Universe names listed in thousands of the token: name -> (the asset, coins per unit). Data, not a rule
# (a leading lower-case k is not guaranteed to mean thousands for every future name).
MULTIPLIED_ASSETS = {f"k{asset}": (asset, 1000.0) for asset in ("PEPE", "SHIB", "BONK", "FLOKI", "LUNC", "NEIRO")}


def envelope_error(payload: Any) -> EnvelopeError | None:
    """A JSON error object ``{"code": ..., "msg": ...}`` (the official SDK's reading of a 4xx body); success
    bodies are arrays here. Rate limits come as HTTP 429, which the shared client handles."""
    if isinstance(payload, dict) and "code" in payload and "msg" in payload:
        return EnvelopeError(str(payload.get("code")), str(payload.get("msg", "")))
    return None


# ----------------------------------------------------------------------------------------------- parsers


def _universe_and_contexts(payload: Any, endpoint: str) -> list[tuple[dict, dict]]:
    """``(universe entry, context)`` pairs, aligned by index (contexts carry no name)."""
    if not isinstance(payload, list) or len(payload) != 2:
        raise ParseError(VENUE, endpoint, f"expected a two-element array [meta, assetCtxs], got {str(payload)[:60]!r}")
    meta, contexts = payload
    universe = field(meta, "universe", VENUE, endpoint)
    if not isinstance(universe, list) or not isinstance(contexts, list):
        raise ParseError(VENUE, endpoint, "expected universe and assetCtxs arrays", field="universe")
    if len(universe) != len(contexts):
        raise ParseError(
            VENUE, endpoint, f"{len(universe)} universe entries but {len(contexts)} contexts", field="assetCtxs"
        )
    for entry in universe:
        if not isinstance(entry, dict):
            raise ParseError(VENUE, endpoint, f"expected a JSON object, got {str(entry)[:40]!r}", field="universe")
    return list(zip(universe, contexts, strict=True))


def _name(entry: dict, endpoint: str) -> str:
    value = field(entry, "name", VENUE, endpoint)
    if not isinstance(value, str) or not value:
        raise ParseError(VENUE, endpoint, f"expected a name, got {value!r}", field="name")
    return value


def _instrument(name: str, delisted: bool) -> Instrument:
    symbol, multiplier = MULTIPLIED_ASSETS.get(name, (name.upper(), 1.0))
    return Instrument(
        venue=VENUE,
        symbol=symbol,
        instrument=name,
        contract_value=None,  # "1 unit of underlying spot asset"
        quote="USDC",  # USDC margined, USDT denominated (§2.0)
        status="delisted" if delisted else "listed",
        tradable=not delisted,
        multiplier=multiplier,
    )


def parse_listing(payload: Any, params: Mapping[str, Any] | None = None) -> list[Instrument]:
    """The first dex's perps, delisted ones as not trading; HIP-3 ``dex:COIN`` names are left out."""
    endpoint = META_AND_ASSET_CTXS.name
    result = []
    for entry, _context in _universe_and_contexts(payload, endpoint):
        name = _name(entry, endpoint)
        if HIP3_SEPARATOR not in name:
            result.append(_instrument(name, entry.get("isDelisted") is True))
    return result


def _timestamp_ms(params: Mapping[str, Any] | None, endpoint: str) -> int:
    received = (params or {}).get(RECEIVED_AT_PARAM)
    if received is None:
        raise ParseError(VENUE, endpoint, "the payload has no timestamp; pass the response's received time as a "
                         "parser param", field=RECEIVED_AT_PARAM)  # fmt: skip
    return read_timestamp_ms(received, VENUE, endpoint, RECEIVED_AT_PARAM)


def parse_meta_and_asset_ctxs(
    payload: Any, params: Mapping[str, Any] | None = None
) -> list[Instrument | OpenInterest | MarkPrice]:
    """The listing rows (they carry each name's multiplier), then OpenInterest (coins) and MarkPrice (mark,
    hourly funding) rows of every live first-dex perp, stamped with the response's received time."""
    endpoint = META_AND_ASSET_CTXS.name
    pairs = _universe_and_contexts(payload, endpoint)
    rows: list[Instrument | OpenInterest | MarkPrice] = list(parse_listing(payload))
    ts_ms = _timestamp_ms(params, endpoint)
    for entry, context in pairs:
        name = _name(entry, endpoint)
        if HIP3_SEPARATOR in name or entry.get("isDelisted") is True:
            continue
        coins = number(field(context, "openInterest", VENUE, endpoint), VENUE, endpoint, "openInterest")
        rows.append(OpenInterest(venue=VENUE, instrument=name, ts_ms=ts_ms, coins=coins))
        rows.append(
            MarkPrice(
                venue=VENUE,
                instrument=name,
                ts_ms=ts_ms,
                mark_price=optional_number(context, "markPx", VENUE, endpoint),
                funding_rate=optional_number(context, "funding", VENUE, endpoint),
            )
        )
    return rows


PARSERS = {META_AND_ASSET_CTXS.name: parse_meta_and_asset_ctxs}


# ---------------------------------------------------------------------------------------------- requests


def past_unavailable() -> dict[str, str]:
    """What this venue cannot give for any past interval (metric -> reason); the bulk fill records it too."""
    return snapshot_only(VENUE, META_AND_ASSET_CTXS.name, PAST_UNAVAILABLE)


async def extract(client: VenueClient, request: ExtractRequest) -> VenueExtract:
    """One ``metaAndAssetCtxs`` call: it is the listing and carries every perp's OI, mark and funding."""
    result, request, _ = await fetch_listing(client, VENUE, LISTING, request)
    if not result.fatal and request.is_past:
        result.history = True
        result.unavailable = past_unavailable()
    return result


LISTING = Listing(META_AND_ASSET_CTXS, None, parse_listing)


SPEC = VenueSpec(
    funding_interval_hours=1.0,  # [HL-DOC funding] "paid every hour": the served rate is hourly
    name=VENUE,
    title="Hyperliquid",
    param="includeHyperliquid",
    param_help="Hyperliquid perps: OI in coins (USD = OI x mark), mark and hourly funding of every perp from one "
    "POST /info call; no long/short ratio, no history.",
    public_url="https://api.hyperliquid.xyz",
    limits=LIMITS,
    envelope_error=envelope_error,
    listing=LISTING,
    parsers=PARSERS,
    plan=extract,
    past_unavailable=past_unavailable,
    colour="#10b981",
)
