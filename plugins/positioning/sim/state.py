"""The simulated market: deterministic prices, open interest, funding and long/short ratios of any venue.

Every number is a pure function of ``(seed, venue, metric, symbol, period, time)`` computed in O(1) from
seeded hashes and a few sinusoids, so any test can recompute what the server served. The ``*_strings``
methods return exactly the strings the server puts on the wire; the public float methods parse those very
strings, so ``state.open_interest(...)["usd"] == float(served_oiUsd)`` holds bit for bit.

This module knows no venue by name: magnitudes are shared, and each registered venue
(:mod:`positioning.sim.venues`) supplies its listing, its OI scale and how it spells numbers, so a venue
registered by a test is priced like the built-in ones.

Time conventions (documented once, used everywhere):

* "current" values (mark price, OI, funding) are evaluated at the request's ``now`` quantised down to the
  second; the served ``ts``/``time`` field is the exact ``now`` in ms;
* history buckets are aligned to the epoch (UTC) in multiples of the period; a bucket's timestamp is its start,
  its value is evaluated at its start, and it is served only once it has fully ended (start + period <= now).
"""

from __future__ import annotations

import hashlib
import math
from decimal import Decimal
from functools import lru_cache

from positioning.sim import venues
from positioning.sim.common import DAY_MS, HOUR_MS, MINUTE_MS, PERIOD_MS, bucket_start, fmt, period_ms, second
from positioning.sim.venues.base import Instrument, SimVenue
from positioning.sim.venues.views import VenueViews

__all__ = ["DAY_MS", "HOUR_MS", "MINUTE_MS", "PERIOD_MS", "SYMBOLS", "TOP50", "UNLISTED",
           "Instrument", "SimState", "bucket_start", "fmt", "period_ms"]  # fmt: skip

# The product's bundled top-50 (positioning/data/top50.txt), then a dozen more so the universe is wider.
TOP50 = [
    "BTC",
    "ETH",
    "SOL",
    "XRP",
    "DOGE",
    "BNB",
    "ADA",
    "HYPE",
    "LINK",
    "AVAX",
    "SUI",
    "LTC",
    "DOT",
    "TRX",
    "BCH",
    "TON",
    "NEAR",
    "APT",
    "ARB",
    "OP",
    "UNI",
    "AAVE",
    "ETC",
    "FIL",
    "ATOM",
    "INJ",
    "SEI",
    "TIA",
    "WLD",
    "PEPE",
    "SHIB",
    "WIF",
    "ENA",
    "ONDO",
    "JUP",
    "RENDER",
    "FET",
    "TAO",
    "XLM",
    "HBAR",
    "ICP",
    "ALGO",
    "STX",
    "IMX",
    "LDO",
    "CRV",
    "MKR",
    "SAND",
    "GALA",
    "ORDI",
]
EXTRA_SYMBOLS = ["KAS", "FTM", "RUNE", "JTO", "PYTH", "STRK", "BONK", "FLOKI", "MEME", "NOT", "ZRO", "EIGEN"]
# A synthetic long tail (listed by every venue that lists the whole universe) so benchmarks can ask for 200
# symbols, as a user tracking most of a venue's ~500 USDT perpetuals would.
LONG_TAIL = [f"TAIL{number:03d}" for number in range(1, 151)]
# Last, so that the long tail keeps its ranks: an asset whose name starts with a digit and is no multiple (the
# trap of guessing a multiplier from a leading number: 1INCHUSDT is 1INCH, 1000PEPEUSDT is PEPE).
DIGIT_NAMED = ["1INCH"]
SYMBOLS: tuple[str, ...] = tuple(TOP50 + EXTRA_SYMBOLS + LONG_TAIL + DIGIT_NAMED)

# Listing coverage of the built-in venues: a symbol in UNLISTED[venue] is absent from that venue's listing.
UNLISTED: dict[str, frozenset[str]] = {venue.name: venue.unlisted for venue in venues.all() if venue.unlisted}

# Symbols whose long/short ratios sit persistently at the extremes, so skew labels vary across the universe.
EXTREME_LONG = frozenset({"PEPE", "WIF", "BONK", "FLOKI"})
EXTREME_SHORT = frozenset({"ORDI", "GALA", "SAND"})
RATIO_MIN, RATIO_MAX = 0.3, 4.0

BASE_PRICES: dict[str, float] = {
    "BTC": 90000, "ETH": 3000, "SOL": 150, "XRP": 2.2, "DOGE": 0.16, "BNB": 620, "ADA": 0.7, "HYPE": 25,
    "LINK": 15, "AVAX": 22, "SUI": 3.2, "LTC": 95, "DOT": 4.5, "TRX": 0.24, "BCH": 420, "TON": 3.1,
    "NEAR": 2.8, "APT": 5.5, "ARB": 0.45, "OP": 0.8, "UNI": 8.5, "AAVE": 260, "ETC": 20, "FIL": 2.9,
    "ATOM": 4.6, "INJ": 13, "SEI": 0.25, "TIA": 2.6, "WLD": 1.2, "PEPE": 0.00001, "SHIB": 0.000013,
    "WIF": 0.8, "ENA": 0.45, "ONDO": 0.9, "JUP": 0.55, "RENDER": 3.8, "FET": 0.6, "TAO": 380, "XLM": 0.3,
    "HBAR": 0.2, "ICP": 5.2, "ALGO": 0.22, "STX": 0.7, "IMX": 0.55, "LDO": 1.1, "CRV": 0.6, "MKR": 1500,
    "SAND": 0.3, "GALA": 0.017, "ORDI": 9.5, "KAS": 0.08, "FTM": 0.55, "RUNE": 1.4, "JTO": 2.1,
    "PYTH": 0.15, "STRK": 0.16, "BONK": 0.000018, "FLOKI": 0.00009, "MEME": 0.0025, "NOT": 0.0021,
    "ZRO": 2.3, "EIGEN": 1.3, "1INCH": 0.35,
}  # fmt: skip
BASE_PRICES.update({name: round(0.05 * 1.05**number, 6) for number, name in enumerate(LONG_TAIL, start=1)})
BASE_PRICES.update({name: round(0.05 * 1.05**number, 6) for number, name in enumerate(LONG_TAIL, start=1)})
# Reference OI in USD (scale 1.0) of the biggest markets; others get a seeded magnitude that decays with rank.
# A venue's OI is this times its SimVenue.oi_scale and a seeded per-venue factor.
MAJOR_OI_USD = {"BTC": 9e9, "ETH": 5e9, "SOL": 1.6e9, "XRP": 1.1e9, "DOGE": 8e8, "BNB": 6e8}


class SimState(VenueViews):
    """The deterministic market served by :class:`~positioning.sim.server.VenueSimulator`.

    Public methods (all pure functions of the seed and their arguments; ``venue`` is a registered venue's name,
    ``symbol`` a base symbol such as ``"BTC"`` or a venue instrument id such as ``"BTC-USDT-SWAP"``):

    * ``listed(venue) -> dict[base, instrument_id]``: the venue's live linear perpetuals (its tradable entries);
    * ``instruments(venue) -> list[Instrument]``: everything the listing endpoint serves;
    * ``index_price(symbol, ts_ms)``, ``mark_price(venue, symbol, ts_ms)`` -> float;
    * ``funding_rate(venue, symbol, ts_ms) -> float`` (in the venue's unit: per 8 h by default);
    * ``open_interest(venue, symbol, ts_ms) -> dict``: ``coins``, ``usd`` and whatever else the venue serves
      (contracts; or long/short USD and skew with ``coins`` None: see the venue's ``open_interest``);
    * ``ratio(venue, metric, symbol, period, bucket_start_ms) -> dict``: ``ratio``, ``long_share``,
      ``short_share`` (``metric`` is one of the venue's ``ratio_metrics``);
    * views of single venues' extra endpoints, inherited from :class:`~positioning.sim.venues.views.VenueViews`
      (contract values, OI history rows).

    The "building blocks" section is what venue modules compute their own numbers from.
    """

    def __init__(self, seed: int = 7):
        self.seed = int(seed)
        self.symbols: tuple[str, ...] = SYMBOLS
        self.unit = lru_cache(maxsize=200_000)(self._unit_uncached)
        # venue name -> (the venue the listing was built for, its entries, entries by instrument id and base)
        self._listings: dict[str, tuple[SimVenue, list[Instrument], dict[str, Instrument]]] = {}

    # ------------------------------------------------------------------ randomness
    def _unit_uncached(self, *parts: object) -> float:
        """A uniform number in [0, 1) fixed by the seed and ``parts`` (``self.unit`` is the cached version)."""
        digest = hashlib.blake2b(repr((self.seed, *parts)).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def _signed(self, *parts: object) -> float:
        """A uniform number in [-1, 1)."""
        return 2.0 * self.unit(*parts) - 1.0

    def wave(self, ts_ms: int, key: tuple, components: tuple[tuple[float, float], ...]) -> float:
        """Sum of sinusoids (period_hours, amplitude) with seeded phases: a smooth O(1) random-walk stand-in."""
        total = 0.0
        for index, (hours, amplitude) in enumerate(components):
            phase = 2 * math.pi * self.unit(*key, "phase", index)
            total += amplitude * math.sin(2 * math.pi * ts_ms / (hours * HOUR_MS) + phase)
        return total

    def _interpolated_noise(self, ts_ms: int, key: tuple, step_ms: int) -> float:
        """Hash noise per ``step_ms`` knot, linearly interpolated between knots (continuous in time)."""
        knot, offset = divmod(ts_ms, step_ms)
        left, right = self._signed(*key, knot), self._signed(*key, knot + 1)
        return left + (right - left) * offset / step_ms

    # ------------------------------------------------------------------ listings
    def _listing(self, venue: str) -> tuple[SimVenue, list[Instrument], dict[str, Instrument]]:
        rules = venues.get(venue)
        cached = self._listings.get(venue)
        if cached is None or cached[0] is not rules:  # rebuilt if a test re-registers the name
            instruments = rules.instruments(self)
            index: dict[str, Instrument] = {}
            for instrument in instruments:
                index[instrument.instrument_id] = instrument
                if instrument.kind == "perpetual":
                    index.setdefault(instrument.base, instrument)
            cached = self._listings[venue] = (rules, instruments, index)
        return cached

    def instruments(self, venue: str) -> list[Instrument]:
        """Every entry the venue's listing endpoint serves, in served order."""
        return list(self._listing(venue)[1])

    def listed(self, venue: str) -> dict[str, str]:
        """Base symbol -> instrument id of the venue's tradable entries (its live linear perpetuals)."""
        return {i.base: i.instrument_id for i in self._listing(venue)[1] if i.tradable}

    def instrument(self, venue: str, symbol: str) -> Instrument | None:
        """The instrument for a base symbol or an instrument id, or None when the venue does not list it."""
        try:
            return self._listing(venue)[2].get(symbol)
        except venues.UnknownVenueError:
            return None

    def require(self, venue: str, symbol: str) -> Instrument:
        """:meth:`instrument`, or KeyError when the venue does not list ``symbol``."""
        return self._listed_instrument(venue, symbol)[1]

    def _listed_instrument(self, venue: str, symbol: str) -> tuple[SimVenue, Instrument]:
        rules, _instruments, index = self._listing(venue)
        instrument = index.get(symbol)
        if instrument is None:
            raise KeyError(f"{venue} does not list {symbol}")
        return rules, instrument

    def base_symbol(self, symbol: str) -> str:
        """The base symbol of a base symbol or of any registered venue's instrument id."""
        if symbol in BASE_PRICES:
            return symbol
        for venue in venues.all():
            instrument = self._listing(venue.name)[2].get(symbol)
            if instrument is not None:
                return instrument.base
        raise KeyError(f"unknown symbol {symbol}")

    # ------------------------------------------------------------------ prices
    def base_price(self, base: str) -> float:
        """The symbol's price level around which its index price moves."""
        return BASE_PRICES[base]

    def price_decimals(self, base: str, multiplier: int = 1) -> int:
        """Decimals of served prices (of ``multiplier`` coins): about seven significant digits."""
        return min(12, max(1, 6 - math.floor(math.log10(BASE_PRICES[base] * multiplier))))

    def _volatility(self, base: str) -> float:
        if base == "BTC":
            return 1.0
        if base == "ETH":
            return 1.3
        return 1.5 + self.unit("vol", base)

    def raw_index_price(self, base: str, ts_ms: int) -> float:
        """The index price at exactly ``ts_ms``, unrounded (what served prices are rounded from)."""
        key = ("price", base)
        swing = self.wave(ts_ms, key, ((2, 0.002), (9, 0.005), (41, 0.012), (127, 0.025), (311, 0.04), (887, 0.06)))
        jitter = 0.001 * self._interpolated_noise(ts_ms, (*key, "noise"), 5 * MINUTE_MS)
        return BASE_PRICES[base] * math.exp(self._volatility(base) * (swing + jitter))

    def index_price_string(self, symbol: str, ts_ms: int, multiplier: int = 1) -> str:
        """The served index price (of ``multiplier`` coins)."""
        base = self.base_symbol(symbol)
        return fmt(self.raw_index_price(base, second(ts_ms)) * multiplier, self.price_decimals(base, multiplier))

    def index_price(self, symbol: str, ts_ms: int) -> float:
        """Index (spot) price at ``ts_ms`` (quantised to the second)."""
        return float(self.index_price_string(symbol, ts_ms))

    def mark_price_string(self, venue: str, symbol: str, ts_ms: int) -> str:
        instrument = self.require(venue, symbol)
        ts = second(ts_ms)
        basis = 0.0004 * self._signed("basis", venue, instrument.instrument_id) + 0.0001 * math.sin(
            2 * math.pi * (ts / HOUR_MS + self.unit("basis-phase", venue, instrument.base))
        )  # |basis| <= 0.05%
        multiplier = instrument.multiplier
        price = self.raw_index_price(instrument.base, ts) * (1 + basis) * multiplier
        return fmt(price, self.price_decimals(instrument.base, multiplier))

    def mark_price(self, venue: str, symbol: str, ts_ms: int) -> float:
        """The venue's mark price at ``ts_ms`` as served (of one venue unit: a thousand PEPE on ``1000PEPEUSDT``):
        the index price times a tiny venue basis (<= 0.05%)."""
        return float(self.mark_price_string(venue, symbol, ts_ms))

    def multiplier(self, venue: str, symbol: str) -> int:
        """Coins per unit the venue quotes ``symbol`` in (1000 for Binance ``1000PEPEUSDT``, else 1)."""
        return self.require(venue, symbol).multiplier

    def coin_mark_price(self, venue: str, symbol: str, ts_ms: int) -> float:
        """The venue's mark price per coin of the asset (the served mark ÷ the multiplier)."""
        return self.mark_price(venue, symbol, ts_ms) / self.multiplier(venue, symbol)

    # ------------------------------------------------------------------ funding
    def funding_interval_hours(self, venue: str, symbol: str) -> int:
        """Hours between the venue's funding payments on this instrument (its funding rate is per that)."""
        rules, instrument = self._listed_instrument(venue, symbol)
        return rules.funding_intervals.get(instrument.base, rules.funding_interval_hours)

    def funding_rate_string(self, venue: str, symbol: str, ts_ms: int) -> str:
        """The rate per the instrument's funding interval: an 8-hour-equivalent draw scaled to the interval."""
        rules, instrument = self._listed_instrument(venue, symbol)
        hours = self.funding_interval_hours(venue, symbol)
        epoch = ts_ms // (hours * HOUR_MS)
        lean = 0.0001 * (1 + self._signed("funding-lean", instrument.base))
        rate_8h = lean + 0.00025 * self._signed("funding", venue, instrument.instrument_id, epoch)
        return rules.funding_string(rate_8h * hours / 8)

    def funding_rate(self, venue: str, symbol: str, ts_ms: int) -> float:
        """Current funding rate as the venue serves it (decimal per the instrument's funding interval)."""
        return float(self.funding_rate_string(venue, symbol, ts_ms))

    def funding_rate_8h(self, venue: str, symbol: str, ts_ms: int) -> float:
        """The served rate scaled to 8 hours (what marts.funding compares venues on)."""
        return self.funding_rate(venue, symbol, ts_ms) * 8 / self.funding_interval_hours(venue, symbol)

    @staticmethod
    def next_funding_time(ts_ms: int, hours: int = 8) -> int:
        return (ts_ms // (hours * HOUR_MS) + 1) * hours * HOUR_MS

    # ------------------------------------------------------------------ open interest
    def oi_usd_magnitude(self, base: str) -> float:
        """Reference OI of the symbol in USD (scale 1.0), before venue scale and drift."""
        if base in MAJOR_OI_USD:
            return MAJOR_OI_USD[base]
        rank = SYMBOLS.index(base)
        return 4e8 * math.exp(-rank / 25) * (0.5 + self.unit("oi-size", base))

    def oi_coins(self, venue: str, instrument: Instrument, ts_ms: int) -> float:
        """Venue OI in base coins, unrounded: the venue's share of the magnitude with a slow plausible drift."""
        base = instrument.base
        scale = venues.get(venue).oi_scale * (0.8 + 0.4 * self.unit("oi-venue", venue, base))
        if instrument.kind != "perpetual":
            scale *= 0.02  # side contracts are small: a client that forgets to filter them is visibly off
        drift = self.wave(ts_ms, ("oi", venue, instrument.instrument_id), ((7, 0.03), (53, 0.08), (199, 0.12)))
        return self.oi_usd_magnitude(base) / BASE_PRICES[base] * scale * math.exp(drift)

    def open_interest_strings(self, venue: str, symbol: str, ts_ms: int) -> dict[str, str]:
        """Served OI strings (``coins`` unless the venue serves another shape, see its open_interest_strings)."""
        rules, instrument = self._listed_instrument(venue, symbol)
        return rules.open_interest_strings(self, instrument, second(ts_ms))

    def open_interest(self, venue: str, symbol: str, ts_ms: int) -> dict[str, float | None]:
        """Current OI: ``coins`` (base units), ``usd`` (by default coins × this venue's mark) and the venue's
        other served fields, as its ``SimVenue.open_interest`` maps them."""
        served = {k: float(v) for k, v in self.open_interest_strings(venue, symbol, ts_ms).items()}
        return venues.get(venue).open_interest(self, symbol, served, ts_ms)

    # ------------------------------------------------------------------ taker flow
    def taker_volumes(self, venue: str, symbol: str, period: str, bucket_ms: int) -> tuple[float, float]:
        """Taker (buy, sell) volume of one bucket in coins, unrounded: a few percent of the venue's OI per hour,
        buy/sell within about 1.4x of balance either way (flow, unlike positioning, does not sit at extremes)."""
        _rules, instrument = self._listed_instrument(venue, symbol)
        length = period_ms(period)
        key = ("taker", venue, instrument.instrument_id)
        per_hour = self.oi_coins(venue, instrument, bucket_ms) * 0.05 * (0.5 + self.unit(*key, bucket_ms))
        volume = per_hour * length / HOUR_MS
        log_ratio = self.wave(bucket_ms, key, ((5, 0.12), (41, 0.1))) + 0.08 * self._signed(*key, length, bucket_ms)
        ratio = math.exp(log_ratio)
        return volume * ratio / (1 + ratio), volume / (1 + ratio)

    # ------------------------------------------------------------------ long/short ratios
    def _ratio_center(self, base: str) -> float:
        if base in EXTREME_LONG:
            return math.log(3.3)
        if base in EXTREME_SHORT:
            return math.log(0.32)
        return 0.25 + 0.45 * self._signed("ratio-center", base)

    def ratio_value(self, venue: str, metric: str, base: str, length_ms: int, bucket_ms: int) -> float:
        """Unrounded long/short ratio of one bucket, within [RATIO_MIN, RATIO_MAX]."""
        key = ("ratio", venue, metric, base)
        variation = (
            0.1 * self._signed(*key, "offset")
            + self.wave(bucket_ms, key, ((11, 0.08), (97, 0.12)))
            + 0.04 * self._signed(*key, length_ms, bucket_ms)
        )
        if base in EXTREME_LONG or base in EXTREME_SHORT:
            variation *= 0.4  # stay beyond the skew-label thresholds (>= 2.5, <= 0.4) at all times
        log_ratio = self._ratio_center(base) + variation
        return min(RATIO_MAX, max(RATIO_MIN, math.exp(log_ratio)))

    @staticmethod
    def shares(ratio: float) -> dict[str, str]:
        """Shares rounded to 4 decimals summing to exactly 1, and the ratio recomputed from them."""
        long_share = Decimal(fmt(ratio / (1 + ratio), 4))
        short_share = Decimal(1) - long_share
        return {"ratio": fmt(long_share / short_share, 4), "long_share": fmt(long_share, 4),
                "short_share": fmt(short_share, 4)}  # fmt: skip

    def ratio_strings(self, venue: str, metric: str, symbol: str, period: str, bucket_ms: int) -> dict[str, str]:
        rules = venues.get(venue)
        if rules.ratio_metrics is not None and metric not in rules.ratio_metrics:
            raise KeyError(f"{venue} has no ratio metric {metric}")
        return rules.ratio_strings(self, metric, self.base_symbol(symbol), period, bucket_ms)

    def ratio(self, venue: str, metric: str, symbol: str, period: str, bucket_start_ms: int) -> dict[str, float]:
        """Long/short of one bucket: ``ratio`` (= long_share/short_share to 4 decimals), ``long_share``,
        ``short_share`` (sum exactly 1). ``metric`` is the endpoint name (the venue's ``ratio_metrics``)."""
        served = self.ratio_strings(venue, metric, symbol, period, bucket_start_ms)
        return {k: float(v) for k, v in served.items()}
