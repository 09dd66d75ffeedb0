"""Long/short ratios on the venue's scale or on the shares': which figure a ratio fact publishes.

A venue that sends a ratio also sends the long and short shares it was computed from (Binance, OKX, Bitget). Bitget
has been seen live sending ``longShortAccountRatio`` one hundredth of its own shares' quotient
(``{"longAccountRatio":"0.58","shortAccountRatio":"0.42","longShortAccountRatio":"0.0138"}``: 0.58 / 0.42 = 1.381).
Such a ratio is not wrong data but a figure on another scale: when the venue's ratio times 100 (or divided by 100)
equals the quotient of its shares within the gate's ``ratio_vs_shares_tolerance`` (or within the rounding of the
figure as printed: Bitget's four decimals on that scale are two significant digits), the quotient is published,
``ratio_source`` says ``shares`` and ``venue_ratio`` keeps what the venue sent; the gate records a warning
(``ratio_on_shares_scale``) naming venue, endpoint, symbol and factor. A ratio that disagrees with its shares in
any other way keeps the venue's figure, and the gate quarantines it (``ratio_matches_shares``).
"""

from __future__ import annotations

import polars as pl

# The scales a venue's ratio has been seen on, as factors that bring it to the shares' quotient.
SCALE_FACTORS = (100.0, 0.01)
FROM_VENUE, FROM_SHARES, FROM_OI_SIDES = "venue", "shares", "oi_sides"
MAX_ROUNDING = 0.05  # the most a printed figure's rounding may account for, relative to the shares' quotient


def default_tolerance() -> float:
    """The gate's ``ratio_vs_shares_tolerance`` (the environment may override it)."""
    from positioning.quality.config import QualityConfig

    return QualityConfig.from_env().ratio_vs_shares_tolerance


def on_shares_scale(ratios: pl.DataFrame, tolerance: float | None = None) -> pl.DataFrame:
    """``ratios`` (columns ``ratio``, ``long_share``, ``short_share``) with ``venue_ratio`` (the venue's figure),
    ``ratio_source`` and ``ratio`` replaced by the shares' quotient where the venue's figure is on a x100 or
    x0.01 scale (see the module docstring)."""
    tolerance = default_tolerance() if tolerance is None else tolerance
    quotient = pl.col("long_share") / pl.col("short_share")

    def agrees(factor: float) -> pl.Expr:
        # Within the tolerance, or within the rounding of the figure the venue printed (Bitget prints 4 decimals:
        # "0.0031" x 100 stands for anything from 0.305 to 0.315, 1.6 % around 0.31).
        # The rounding allowance is capped at 5 %: a figure without two significant digits ("0", "0.0") says nothing.
        rounding = pl.min_horizontal(factor * _half_unit("ratio"), MAX_ROUNDING * quotient)
        allowed = pl.max_horizontal(tolerance * quotient, rounding)
        return ((pl.col("ratio") * factor - quotient).abs() <= allowed).fill_null(False)

    rescaled = pl.lit(False)
    for factor in SCALE_FACTORS:
        rescaled = rescaled | agrees(factor)
    as_sent = ((pl.col("ratio") / quotient - 1).abs() <= tolerance).fill_null(False)
    rescaled = rescaled & ~as_sent & (pl.col("ratio") > 0) & (pl.col("short_share") > 0)
    return ratios.with_columns(
        venue_ratio=pl.col("ratio"),
        ratio_source=pl.when(rescaled).then(pl.lit(FROM_SHARES)).otherwise(pl.lit(FROM_VENUE)),
        ratio=pl.when(rescaled).then(quotient).otherwise(pl.col("ratio")),
    )


def _half_unit(column: str) -> pl.Expr:
    """Half a unit of the last decimal of a figure as the venue printed it (its shortest decimal form: 0.00005 for
    0.0138); 0 for a figure in exponent form (no rounding is assumed)."""
    decimals = pl.col(column).cast(pl.String).str.extract(r"^-?\d+\.(\d+)$", 1).str.len_chars()
    return pl.when(decimals.is_not_null()).then(0.5 * pl.lit(10.0).pow(-decimals.cast(pl.Float64))).otherwise(0.0)
