"""Per-venue views of the market under the names tests have always used (``state.binance_oi_hist(...)``).

:class:`~positioning.sim.state.SimState` inherits them so that its own module stays venue-agnostic; each method
delegates to the rule in its venue's module, which is where the numbers are defined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from positioning.sim.venues import binance, okx, strike

if TYPE_CHECKING:
    from positioning.sim.state import SimState


class VenueViews:
    def contract_value(self: SimState, symbol: str) -> float:
        """OKX ``ctVal`` of the symbol's swap (base coins per contract; USD for the inverse swap)."""
        return okx.VENUE.contract_value(self, symbol)

    def binance_oi_hist_strings(self: SimState, symbol: str, period: str, bucket_ms: int) -> dict[str, str]:
        return binance.VENUE.oi_hist_strings(self, symbol, period, bucket_ms)

    def binance_oi_hist(self: SimState, symbol: str, period: str, bucket_ms: int) -> dict[str, float]:
        """openInterestHist row: ``coins`` (sumOpenInterest × the instrument's multiplier: coins of the asset) and
        ``usd`` (sumOpenInterestValue = served units × Binance mark at the bucket)."""
        served = binance.VENUE.oi_hist_strings(self, symbol, period, bucket_ms)
        multiplier = self.multiplier(binance.VENUE.name, symbol)
        return {"coins": float(served["coins"]) * multiplier, "usd": float(served["usd"])}

    def okx_oi_volume_strings(self: SimState, symbol: str, period: str, bucket_ms: int) -> dict[str, str]:
        return okx.VENUE.oi_volume_strings(self, symbol, period, bucket_ms)

    def okx_oi_volume(self: SimState, symbol: str, period: str, bucket_ms: int) -> dict[str, float]:
        """OKX rubik open-interest-volume row of a coin: ``oi_usd`` and ``volume_usd`` of the bucket."""
        return {k: float(v) for k, v in okx.VENUE.oi_volume_strings(self, symbol, period, bucket_ms).items()}

    def strike_volume_strings(self: SimState, symbol: str, ts_ms: int) -> dict[str, str]:
        return strike.VENUE.volume_strings(self, symbol, ts_ms)
