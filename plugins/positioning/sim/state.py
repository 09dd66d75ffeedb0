"""The simulated market: deterministic prices, open interest, funding and long/short ratios for four venues.

Every number is a pure function of ``(seed, venue, metric, symbol, period, time)`` computed in O(1) from
seeded hashes and a few sinusoids, so any test can recompute what the server served. The ``*_strings``
methods return exactly the strings the server puts on the wire; the public float methods parse those very
strings, so ``state.open_interest(...)["usd"] == float(served_oiUsd)`` holds bit for bit.

Time conventions (documented once, used everywhere):

* "current" values (mark price, OI, funding) are evaluated at the request's ``now`` quantised down to the
  second; the served ``ts``/``time`` field is the exact ``now`` in ms;
* history buckets are aligned to the epoch (UTC) in multiples of the period; a bucket's timestamp is its start,
  its value is evaluated at its start, and it is served only once it has fully ended (start + period <= now).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cached_property, lru_cache

VENUES = ("binance", "okx", "bitget", "strike")

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
# A synthetic long tail (listed on Binance, OKX and Bitget) so benchmarks can ask for 200 symbols, as a user
# tracking most of a venue's ~500 USDT perpetuals would.
LONG_TAIL = [f"TAIL{number:03d}" for number in range(1, 151)]
SYMBOLS: tuple[str, ...] = tuple(TOP50 + EXTRA_SYMBOLS + LONG_TAIL)

# Listing coverage. A symbol in UNLISTED[venue] is absent from that venue's listing endpoint entirely.
UNLISTED: dict[str, frozenset[str]] = {
    "binance": frozenset({"MKR", "KAS"}),
    "okx": frozenset({"TAO", "HYPE", "KAS", "MEME"}),
    "bitget": frozenset({"MKR", "ORDI", "ICP", "JTO", "ZRO"}),
}
# Present in the listing but not tradable: Binance status SETTLING, OKX state suspend, Bitget symbolStatus off.
NOT_TRADING: dict[str, str] = {"binance": "FTM", "okx": "FTM", "bitget": "MEME"}
STRIKE_MARKETS = ("BTC", "ETH", "SOL", "BNB", "XRP", "HYPE")
BINANCE_DELIVERY_ID = "BTCUSDT_260327"  # a quarterly (non-perpetual) contract listed beside the perps
BINANCE_DELIVERY_DATE = 1774598400000  # 2026-03-27 08:00 UTC
BINANCE_PERPETUAL_DELIVERY_DATE = 4133404800000  # year 2100: "no delivery" (venues.md §1.7)
OKX_INVERSE_ID = "BTC-USD-SWAP"  # coin-margined: ctVal 100 USD, must be filtered out by clients
OKX_USDC_ID = "BTC-USDC-SWAP"  # USDC-margined linear swap, must be filtered out by clients

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
    "ZRO": 2.3, "EIGEN": 1.3,
}  # fmt: skip
BASE_PRICES.update({name: round(0.05 * 1.05**number, 6) for number, name in enumerate(LONG_TAIL, start=1)})
# Binance OI in USD for the biggest markets; others get a seeded magnitude that decays with rank.
BINANCE_OI_USD = {"BTC": 9e9, "ETH": 5e9, "SOL": 1.6e9, "XRP": 1.1e9, "DOGE": 8e8, "BNB": 6e8}
VENUE_OI_SCALE = {"binance": 1.0, "okx": 0.45, "bitget": 0.32}
OKX_CONTRACT_VALUES = {"BTC": "0.01", "ETH": "0.1", "SOL": "1", "BNB": "0.01", "BCH": "0.1", "LTC": "1"}

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
PERIOD_MS: dict[str, int] = {
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
    "1H": HOUR_MS,  # OKX spelling
    "1D": DAY_MS,  # OKX spelling
    "1Dutc": DAY_MS,  # Bitget long-short spelling
}
FUNDING_INTERVAL_MS = 8 * HOUR_MS

# Metric names as the venues' endpoints name them.
RATIO_METRICS: dict[str, tuple[str, ...]] = {
    "binance": ("topLongShortPositionRatio", "topLongShortAccountRatio", "globalLongShortAccountRatio"),
    "okx": ("long-short-account-ratio",),
    "bitget": ("account-long-short", "position-long-short", "long-short"),
    "strike": ("oi",),
}


@dataclass(frozen=True)
class Instrument:
    """One entry of a venue's listing endpoint (including the entries clients must filter out)."""

    venue: str
    instrument_id: str
    base: str
    quote: str = "USDT"
    kind: str = "perpetual"  # perpetual | delivery | inverse | usdc
    status: str = ""  # the venue's own status string
    tradable: bool = True  # a live linear USDT perpetual: what listed() returns
    contract_value: str = "1"  # OKX ctVal (base coin, or USD for inverse); "1" elsewhere


def period_ms(period: str) -> int:
    """Length of a period string in ms (any venue's spelling); KeyError for an unknown period."""
    return PERIOD_MS[period]


def bucket_start(period: str, ts_ms: int) -> int:
    """Start (ms, epoch-aligned UTC) of the ``period`` bucket containing ``ts_ms``."""
    length = period_ms(period)
    return ts_ms // length * length


def fmt(value: float | Decimal, decimals: int) -> str:
    """Fixed-point string as the venues send numbers."""
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN))
    return f"{value:.{decimals}f}"


def _second(ts_ms: int) -> int:
    return ts_ms // 1000 * 1000


class SimState:
    """The deterministic market served by :class:`~positioning.sim.server.VenueSimulator`.

    Public methods (all pure functions of the seed and their arguments; ``symbol`` is a base symbol such as
    ``"BTC"`` or a venue instrument id such as ``"BTC-USDT-SWAP"``):

    * ``listed(venue) -> dict[base, instrument_id]``: the live linear USDT perpetuals (Strike: its 6 markets);
    * ``instruments(venue) -> list[Instrument]``: everything the listing endpoint serves;
    * ``contract_value(symbol) -> float``: OKX ``ctVal``;
    * ``index_price(symbol, ts_ms)``, ``mark_price(venue, symbol, ts_ms)`` -> float;
    * ``funding_rate(venue, symbol, ts_ms) -> float`` (Strike: the long side's hourly rate);
    * ``open_interest(venue, symbol, ts_ms) -> dict``: ``coins``, ``usd`` (+ ``contracts`` on OKX,
      ``long_usd``/``short_usd``/``skew`` on Strike where ``coins`` is None);
    * ``ratio(venue, metric, symbol, period, bucket_start_ms) -> dict``: ``ratio``, ``long_share``,
      ``short_share`` (Strike: metric ``"oi"``, period ignored, evaluated at ``ts``);
    * ``binance_oi_hist(symbol, period, bucket_ms) -> dict``: ``coins``, ``usd`` (openInterestHist row);
    * ``okx_oi_volume(symbol, period, bucket_ms) -> dict``: ``oi_usd``, ``volume_usd``.
    """

    def __init__(self, seed: int = 7):
        self.seed = int(seed)
        self.symbols: tuple[str, ...] = SYMBOLS
        self._unit = lru_cache(maxsize=200_000)(self._unit_uncached)

    # ------------------------------------------------------------------ randomness
    def _unit_uncached(self, *parts: object) -> float:
        """A uniform number in [0, 1) fixed by the seed and ``parts``."""
        digest = hashlib.blake2b(repr((self.seed, *parts)).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def _signed(self, *parts: object) -> float:
        """A uniform number in [-1, 1)."""
        return 2.0 * self._unit(*parts) - 1.0

    def _wave(self, ts_ms: int, key: tuple, components: tuple[tuple[float, float], ...]) -> float:
        """Sum of sinusoids (period_hours, amplitude) with seeded phases: a smooth O(1) random-walk stand-in."""
        total = 0.0
        for index, (hours, amplitude) in enumerate(components):
            phase = 2 * math.pi * self._unit(*key, "phase", index)
            total += amplitude * math.sin(2 * math.pi * ts_ms / (hours * HOUR_MS) + phase)
        return total

    def _interpolated_noise(self, ts_ms: int, key: tuple, step_ms: int) -> float:
        """Hash noise per ``step_ms`` knot, linearly interpolated between knots (continuous in time)."""
        knot, offset = divmod(ts_ms, step_ms)
        left, right = self._signed(*key, knot), self._signed(*key, knot + 1)
        return left + (right - left) * offset / step_ms

    # ------------------------------------------------------------------ listings
    @cached_property
    def _instruments(self) -> dict[str, list[Instrument]]:
        result: dict[str, list[Instrument]] = {venue: [] for venue in VENUES}
        for base in SYMBOLS:
            if base not in UNLISTED["binance"]:
                trading = base != NOT_TRADING["binance"]
                result["binance"].append(
                    Instrument("binance", f"{base}USDT", base, status="TRADING" if trading else "SETTLING",
                               tradable=trading)
                )  # fmt: skip
            if base not in UNLISTED["okx"]:
                live = base != NOT_TRADING["okx"]
                result["okx"].append(
                    Instrument("okx", f"{base}-USDT-SWAP", base, status="live" if live else "suspend",
                               tradable=live, contract_value=self._okx_ct_val(base))
                )  # fmt: skip
            if base not in UNLISTED["bitget"]:
                normal = base != NOT_TRADING["bitget"]
                result["bitget"].append(
                    Instrument("bitget", f"{base}USDT", base, status="normal" if normal else "off", tradable=normal)
                )
        result["binance"].insert(
            1, Instrument("binance", BINANCE_DELIVERY_ID, "BTC", kind="delivery", status="TRADING", tradable=False)
        )
        result["okx"].insert(
            1, Instrument("okx", OKX_INVERSE_ID, "BTC", quote="USD", kind="inverse", status="live",
                          tradable=False, contract_value="100")
        )  # fmt: skip
        result["okx"].insert(
            2, Instrument("okx", OKX_USDC_ID, "BTC", quote="USDC", kind="usdc", status="live",
                          tradable=False, contract_value="0.0001")
        )  # fmt: skip
        result["strike"] = [Instrument("strike", f"{base}-USD", base, quote="USD") for base in STRIKE_MARKETS]
        return result

    @cached_property
    def _by_id(self) -> dict[tuple[str, str], Instrument]:
        index: dict[tuple[str, str], Instrument] = {}
        for venue, instruments in self._instruments.items():
            for instrument in instruments:
                index[(venue, instrument.instrument_id)] = instrument
                if instrument.kind == "perpetual":
                    index.setdefault((venue, instrument.base), instrument)
        return index

    def instruments(self, venue: str) -> list[Instrument]:
        """Every entry the venue's listing endpoint serves, in served order."""
        return list(self._instruments[venue])

    def listed(self, venue: str) -> dict[str, str]:
        """Base symbol -> instrument id of the venue's live linear USDT perpetuals (Strike: its markets)."""
        return {i.base: i.instrument_id for i in self._instruments[venue] if i.tradable}

    def instrument(self, venue: str, symbol: str) -> Instrument | None:
        """The instrument for a base symbol or an instrument id, or None when the venue does not list it."""
        return self._by_id.get((venue, symbol))

    def _require(self, venue: str, symbol: str) -> Instrument:
        instrument = self.instrument(venue, symbol)
        if instrument is None:
            raise KeyError(f"{venue} does not list {symbol}")
        return instrument

    def _okx_ct_val(self, base: str) -> str:
        """A power of ten making one contract worth roughly $10-$100, as OKX sizes its swaps."""
        if base in OKX_CONTRACT_VALUES:
            return OKX_CONTRACT_VALUES[base]
        exponent = math.floor(math.log10(100 / BASE_PRICES[base]))
        return fmt(Decimal(10) ** exponent, max(0, -exponent))

    def contract_value(self, symbol: str) -> float:
        """OKX ``ctVal`` of the symbol's swap (base coins per contract; USD for the inverse swap)."""
        return float(self._require("okx", symbol).contract_value)

    # ------------------------------------------------------------------ prices
    def price_decimals(self, base: str) -> int:
        """Decimals of served prices: about seven significant digits."""
        return min(12, max(1, 6 - math.floor(math.log10(BASE_PRICES[base]))))

    def _volatility(self, base: str) -> float:
        if base == "BTC":
            return 1.0
        if base == "ETH":
            return 1.3
        return 1.5 + self._unit("vol", base)

    def _index_price(self, base: str, ts_ms: int) -> float:
        key = ("price", base)
        swing = self._wave(ts_ms, key, ((2, 0.002), (9, 0.005), (41, 0.012), (127, 0.025), (311, 0.04), (887, 0.06)))
        jitter = 0.001 * self._interpolated_noise(ts_ms, (*key, "noise"), 5 * MINUTE_MS)
        return BASE_PRICES[base] * math.exp(self._volatility(base) * (swing + jitter))

    def index_price_string(self, symbol: str, ts_ms: int) -> str:
        base = self._base(symbol)
        return fmt(self._index_price(base, _second(ts_ms)), self.price_decimals(base))

    def index_price(self, symbol: str, ts_ms: int) -> float:
        """Index (spot) price at ``ts_ms`` (quantised to the second)."""
        return float(self.index_price_string(symbol, ts_ms))

    def mark_price_string(self, venue: str, symbol: str, ts_ms: int) -> str:
        instrument = self._require(venue, symbol)
        ts = _second(ts_ms)
        basis = 0.0004 * self._signed("basis", venue, instrument.instrument_id) + 0.0001 * math.sin(
            2 * math.pi * (ts / HOUR_MS + self._unit("basis-phase", venue, instrument.base))
        )  # |basis| <= 0.05%
        return fmt(self._index_price(instrument.base, ts) * (1 + basis), self.price_decimals(instrument.base))

    def mark_price(self, venue: str, symbol: str, ts_ms: int) -> float:
        """The venue's mark price at ``ts_ms``: the index price times a tiny venue basis (<= 0.05%)."""
        return float(self.mark_price_string(venue, symbol, ts_ms))

    # ------------------------------------------------------------------ funding
    def funding_rate_string(self, venue: str, symbol: str, ts_ms: int) -> str:
        instrument = self._require(venue, symbol)
        epoch = ts_ms // FUNDING_INTERVAL_MS
        lean = 0.0001 * (1 + self._signed("funding-lean", instrument.base))
        rate = lean + 0.00025 * self._signed("funding", venue, instrument.instrument_id, epoch)
        if venue == "strike":
            return fmt(rate / 8, 6)  # hourly
        return fmt(rate, {"binance": 8, "okx": 16, "bitget": 6}[venue])

    def funding_rate(self, venue: str, symbol: str, ts_ms: int) -> float:
        """Current funding rate (decimal per interval; Strike: the long side's hourly rate)."""
        return float(self.funding_rate_string(venue, symbol, ts_ms))

    def next_funding_time(self, ts_ms: int) -> int:
        return (ts_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS

    # ------------------------------------------------------------------ open interest
    def _base(self, symbol: str) -> str:
        if symbol in BASE_PRICES:
            return symbol
        for venue in VENUES:
            instrument = self._by_id.get((venue, symbol))
            if instrument is not None:
                return instrument.base
        raise KeyError(f"unknown symbol {symbol}")

    def _oi_usd_magnitude(self, base: str) -> float:
        if base in BINANCE_OI_USD:
            return BINANCE_OI_USD[base]
        rank = SYMBOLS.index(base)
        return 4e8 * math.exp(-rank / 25) * (0.5 + self._unit("oi-size", base))

    def _coins(self, venue: str, instrument: Instrument, ts_ms: int) -> float:
        """Venue OI in base coins: a per-venue magnitude with a slow plausible drift."""
        base = instrument.base
        scale = VENUE_OI_SCALE[venue] * (0.8 + 0.4 * self._unit("oi-venue", venue, base))
        if instrument.kind != "perpetual":
            scale *= 0.02  # side contracts are small: a client that forgets to filter them is visibly off
        drift = self._wave(ts_ms, ("oi", venue, instrument.instrument_id), ((7, 0.03), (53, 0.08), (199, 0.12)))
        return self._oi_usd_magnitude(base) / BASE_PRICES[base] * scale * math.exp(drift)

    def open_interest_strings(self, venue: str, symbol: str, ts_ms: int) -> dict[str, str]:
        """Served strings: binance/bitget ``coins``; okx ``contracts``/``coins``/``usd``; strike long/short/total."""
        instrument = self._require(venue, symbol)
        ts = _second(ts_ms)
        if venue == "strike":
            return self._strike_oi_strings(instrument, ts)
        coins = self._coins(venue, instrument, ts)
        if venue == "binance":
            return {"coins": fmt(coins, 3)}
        if venue == "bitget":
            return {"coins": fmt(coins, 4)}
        mark = Decimal(self.mark_price_string("okx", instrument.instrument_id, ts))
        ct_val = Decimal(instrument.contract_value)
        if instrument.kind == "inverse":
            contracts = Decimal(fmt(coins * float(mark) / float(ct_val), 0))
            usd = contracts * ct_val
            return {"contracts": format(contracts, "f"), "coins": fmt(usd / mark, 8), "usd": fmt(usd, 2)}
        contracts = Decimal(fmt(coins / float(ct_val), 2))
        coins_exact = contracts * ct_val  # oi × ctVal = oiCcy exactly
        return {"contracts": format(contracts, "f"), "coins": format(coins_exact, "f"),
                "usd": fmt(coins_exact * mark, 4)}  # fmt: skip

    def open_interest(self, venue: str, symbol: str, ts_ms: int) -> dict[str, float | None]:
        """Current OI: ``coins`` (base units), ``usd`` (= coins × this venue's mark; OKX: served oiUsd),
        ``contracts`` (OKX: oi); Strike: ``long_usd``, ``short_usd``, ``usd`` (= total), ``skew``, coins None."""
        served = {k: float(v) for k, v in self.open_interest_strings(venue, symbol, ts_ms).items()}
        if venue == "strike":
            return {"coins": None, "usd": served["total"], "long_usd": served["long"],
                    "short_usd": served["short"], "skew": served["skew"]}  # fmt: skip
        if venue == "okx":
            return served
        return {"coins": served["coins"], "usd": served["coins"] * self.mark_price(venue, symbol, ts_ms)}

    def _strike_oi_strings(self, instrument: Instrument, ts: int) -> dict[str, str]:
        total = (
            self._oi_usd_magnitude(instrument.base)
            / 3000
            * math.exp(self._wave(ts, ("strike-oi", instrument.base), ((5, 0.05), (37, 0.15))))
        )
        shares = self._shares(self._ratio_value("strike", "oi", instrument.base, 5 * MINUTE_MS, ts))
        long_cents = round(total * float(shares["long_share"]) * 100)
        short_cents = round(total * 100) - long_cents
        total_cents = long_cents + short_cents  # total_oi = long_oi + short_oi exactly
        skew = (long_cents - short_cents) / total_cents
        return {"long": fmt(Decimal(long_cents) / 100, 2), "short": fmt(Decimal(short_cents) / 100, 2),
                "total": fmt(Decimal(total_cents) / 100, 2), "skew": fmt(skew, 4)}  # fmt: skip

    def binance_oi_hist_strings(self, symbol: str, period: str, bucket_ms: int) -> dict[str, str]:
        instrument = self._require("binance", symbol)
        coins = Decimal(fmt(self._coins("binance", instrument, bucket_ms), 3))
        mark = Decimal(self.mark_price_string("binance", instrument.instrument_id, bucket_ms))
        supply = self._oi_usd_magnitude(instrument.base) * 40 / BASE_PRICES[instrument.base]
        return {"coins": fmt(coins, 8), "usd": fmt(coins * mark, 8), "supply": fmt(supply, 3)}

    def binance_oi_hist(self, symbol: str, period: str, bucket_ms: int) -> dict[str, float]:
        """openInterestHist row: ``coins`` (sumOpenInterest) and ``usd`` (= coins × Binance mark at the bucket)."""
        served = self.binance_oi_hist_strings(symbol, period, bucket_ms)
        return {"coins": float(served["coins"]), "usd": float(served["usd"])}

    def okx_oi_volume_strings(self, symbol: str, period: str, bucket_ms: int) -> dict[str, str]:
        instrument = self._require("okx", symbol)
        coins = self._coins("okx", instrument, bucket_ms) * 1.08  # swaps plus the coin's dated futures
        oi_usd = coins * self._index_price(instrument.base, bucket_ms)
        turnover = 2.0 * period_ms(period) / DAY_MS * (0.5 + self._unit("okx-vol", instrument.base, bucket_ms))
        return {"oi_usd": fmt(oi_usd, 4), "volume_usd": fmt(oi_usd * turnover, 4)}

    def okx_oi_volume(self, symbol: str, period: str, bucket_ms: int) -> dict[str, float]:
        """OKX rubik open-interest-volume row of a coin: ``oi_usd`` and ``volume_usd`` of the bucket."""
        return {k: float(v) for k, v in self.okx_oi_volume_strings(symbol, period, bucket_ms).items()}

    # ------------------------------------------------------------------ long/short ratios
    def _ratio_center(self, base: str) -> float:
        if base in EXTREME_LONG:
            return math.log(3.3)
        if base in EXTREME_SHORT:
            return math.log(0.32)
        return 0.25 + 0.45 * self._signed("ratio-center", base)

    def _ratio_value(self, venue: str, metric: str, base: str, length_ms: int, bucket_ms: int) -> float:
        key = ("ratio", venue, metric, base)
        variation = (
            0.1 * self._signed(*key, "offset")
            + self._wave(bucket_ms, key, ((11, 0.08), (97, 0.12)))
            + 0.04 * self._signed(*key, length_ms, bucket_ms)
        )
        if base in EXTREME_LONG or base in EXTREME_SHORT:
            variation *= 0.4  # stay beyond the skew-label thresholds (>= 2.5, <= 0.4) at all times
        log_ratio = self._ratio_center(base) + variation
        return min(RATIO_MAX, max(RATIO_MIN, math.exp(log_ratio)))

    @staticmethod
    def _shares(ratio: float) -> dict[str, str]:
        """Shares rounded to 4 decimals summing to exactly 1, and the ratio recomputed from them."""
        long_share = Decimal(fmt(ratio / (1 + ratio), 4))
        short_share = Decimal(1) - long_share
        return {"ratio": fmt(long_share / short_share, 4), "long_share": fmt(long_share, 4),
                "short_share": fmt(short_share, 4)}  # fmt: skip

    def ratio_strings(self, venue: str, metric: str, symbol: str, period: str, bucket_ms: int) -> dict[str, str]:
        if metric not in RATIO_METRICS[venue]:
            raise KeyError(f"{venue} has no ratio metric {metric}")
        base = self._base(symbol)
        if venue == "strike":
            strings = self._strike_oi_strings(self._require("strike", base), _second(bucket_ms))
            long_oi, short_oi = Decimal(strings["long"]), Decimal(strings["short"])
            return {"ratio": fmt(long_oi / short_oi, 4), "long_share": fmt(long_oi / (long_oi + short_oi), 4),
                    "short_share": fmt(short_oi / (long_oi + short_oi), 4)}  # fmt: skip
        return self._shares(self._ratio_value(venue, metric, base, period_ms(period), bucket_ms))

    def ratio(self, venue: str, metric: str, symbol: str, period: str, bucket_start_ms: int) -> dict[str, float]:
        """Long/short of one bucket: ``ratio`` (= long_share/short_share to 4 decimals), ``long_share``,
        ``short_share`` (sum exactly 1). ``metric`` is the endpoint name (see RATIO_METRICS)."""
        served = self.ratio_strings(venue, metric, symbol, period, bucket_start_ms)
        return {k: float(v) for k, v in served.items()}

    # ------------------------------------------------------------------ strike extras
    def strike_volume_strings(self, symbol: str, ts_ms: int) -> dict[str, str]:
        base = self._base(symbol)
        total = float(self._strike_oi_strings(self._require("strike", base), _second(ts_ms))["total"])
        day = ts_ms // DAY_MS
        return {"volume_24h": fmt(total * (3 + 4 * self._unit("strike-vol", base, day)), 2),
                "volume_1h": fmt(total * (0.1 + 0.2 * self._unit("strike-vol-1h", base, ts_ms // HOUR_MS)), 2),
                "volume_total": fmt(total * 400 + day * 1000.0, 2)}  # fmt: skip
