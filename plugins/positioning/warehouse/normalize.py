"""Parsed rows of one interval (:mod:`positioning.warehouse.parse`) → the rows of ``core.fact_positioning`` and
``core.dim_instrument`` (polars).

The cross-payload work, with polars: symbol mapping, contract → coin
conversion, USD from the same venue's mark price where the venue reports none, the latest ratio bucket at or
before the interval end, and the rules an adapter declares (``positioning.venues.base.VenueSpec``): OI history
that is the venue's own OI, a coin-level OI history feeding the 24 h change, OI split into long/short sides.

Buckets (ratios, OI history): the value of an interval is the latest bucket that has *ended* at or before the
interval end (bucket start + period <= end; venues stamp a bucket with its start) and started no earlier than
one interval plus one period before the end (the window every plan requests). Live runs, past-interval runs and
the bulk history fill all apply this one rule through :func:`bucket_facts`, vectorised over many interval ends
(a polars as-of join), so that they give the same facts for the same interval.

Units: OKX counts OI in contracts of ``contract_value`` coins; a venue that lists an asset in multiples
(Binance ``1000PEPEUSDT``) counts OI in thousands of coins and prices a thousand: its ``multiplier`` turns both
into coins and USD per coin, and leaves USD unchanged.

Per-instrument OI history (``instrument_oi_history``) becomes ``oi_coins`` and ``oi_usd`` (venue-reported USD)
with the history period; a coin-level OI history (``oi_change_period``) only feeds the 24 h change.
A (venue, metric) that a manifest lists as ``unavailable`` for its interval never becomes a fact, even if a
response happens to carry a current value for it (a listing that also carries current values).
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from positioning import registry
from positioning.ingest.manifests import Manifest
from positioning.periods import period_seconds
from positioning.rows import (
    FundingInterval,
    FundingRate,
    Instrument,
    LongShortRatio,
    MarkPrice,
    OpenInterest,
    OpenInterestHistory,
)
from positioning.warehouse.parse import ParsedRows, rows_frame
from positioning.warehouse.ratios import FROM_OI_SIDES, on_shares_scale

FACT_SCHEMA = {
    "ts": pl.Datetime("us"),
    "venue": pl.String,
    "symbol": pl.String,
    "metric": pl.String,
    "period": pl.String,
    "instrument": pl.String,
    "value": pl.Float64,
    "unit": pl.String,
    "usd_source": pl.String,
    "long_share": pl.Float64,
    "short_share": pl.Float64,
    "source_ts": pl.Datetime("us"),
    "ratio_source": pl.String,
    "venue_ratio": pl.Float64,
    "source": pl.String,  # 'rest' (the venue's API) or 'archive' (positioning.ingest.archive_fill)
}
ROW_TYPES = (Instrument, OpenInterest, MarkPrice, FundingRate, FundingInterval, LongShortRatio, OpenInterestHistory)
DAY_MS = 86_400_000
HOUR_MS = 3_600_000


def _latest(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return frame.sort("ts_ms").group_by(keys, maintain_order=True).last()


def symbol_map(manifests: list[Manifest]) -> pl.DataFrame:
    """(venue, base symbol, venue instrument) of every instrument the manifests mapped."""
    pairs = [
        (manifest.venue, symbol, instrument)
        for manifest in manifests
        for symbol, instrument in manifest.instruments.items()
    ]
    return pl.DataFrame(pairs, schema=["venue", "symbol", "instrument"], orient="row")


def _fact(frame: pl.DataFrame, metric: str | pl.Expr, value: pl.Expr, unit: str, **extra: pl.Expr) -> pl.DataFrame:
    columns = {
        "venue": pl.col("venue"),
        "symbol": pl.col("symbol"),
        "metric": metric if isinstance(metric, pl.Expr) else pl.lit(metric),
        "period": extra.pop("period", pl.lit("")),
        "instrument": extra.pop("instrument", pl.col("instrument")),
        "value": value,
        "unit": pl.lit(unit),
        "usd_source": extra.pop("usd_source", pl.lit(None, pl.String)),
        "long_share": extra.pop("long_share", pl.lit(None, pl.Float64)),
        "short_share": extra.pop("short_share", pl.lit(None, pl.Float64)),
        "source_ts": pl.from_epoch(pl.col("ts_ms"), time_unit="ms").cast(pl.Datetime("us")),
        "ratio_source": extra.pop("ratio_source", pl.lit(None, pl.String)),
        "venue_ratio": extra.pop("venue_ratio", pl.lit(None, pl.Float64)),
        "source": extra.pop("source", pl.lit("rest")),
        **extra,  # end_ms: the interval end of a row of a multi-interval (history) build
    }
    return frame.filter(value.is_not_null()).select(**columns)


def _key_map(mapped: pl.DataFrame) -> pl.DataFrame:
    """Ratio and history keys are instruments (Binance, Bitget) or base coins (OKX currency statistics)."""
    return pl.concat(
        [
            mapped.rename({"instrument": "key"}).with_columns(instrument=pl.col("key")),
            mapped.with_columns(key=pl.col("symbol")).select("venue", "symbol", "key", "instrument"),
        ],
        how="diagonal",
    ).unique(["venue", "key"])


def _with_period_ms(frame: pl.DataFrame) -> pl.DataFrame:
    periods = {p: (period_seconds(p) or 0) * 1000 for p in frame["period"].unique().to_list()}
    return frame.with_columns(
        period_ms=pl.col("period").replace_strict(periods, default=0, return_dtype=pl.Int64),
    )


def latest_ended(rows: pl.DataFrame, keys: list[str], ends_ms: list[int], interval_ms: int) -> pl.DataFrame:
    """For every interval end and every ``keys`` group: the latest row whose bucket ended at or before the end
    and started no earlier than ``end - interval - period``; column ``end_ms`` says which end. Vectorised."""
    rows = _with_period_ms(rows).with_columns(ended_ms=pl.col("ts_ms") + pl.col("period_ms"))
    rows = rows.unique([*keys, "ts_ms"], keep="last").sort("ended_ms")
    ends = pl.DataFrame({"end_ms": sorted(set(ends_ms))}, schema={"end_ms": pl.Int64})
    grid = rows.select(keys).unique().join(ends, how="cross").sort("end_ms")
    # Both sides are sorted on the as-of key globally, hence within every group.
    joined = grid.join_asof(
        rows, left_on="end_ms", right_on="ended_ms", by=keys, strategy="backward", check_sortedness=False
    )
    return joined.filter(
        pl.col("ts_ms").is_not_null() & (pl.col("ts_ms") >= pl.col("end_ms") - interval_ms - pl.col("period_ms"))
    )


def bucket_facts(
    symbols: pl.DataFrame,
    parsed: ParsedRows,
    ends_ms: list[int],
    interval_ms: int = HOUR_MS,
    ratio_tolerance: float | None = None,
) -> pl.DataFrame:
    """Facts from bucketed series (ratios, instrument OI history, OKX 24 h OI change) for every interval end in
    ``ends_ms``; column ``end_ms`` is the interval end each row belongs to. A ratio on a x100 scale against its own
    shares publishes the shares' quotient (:mod:`positioning.warehouse.ratios`; ``ratio_tolerance`` defaults to
    the gate's)."""
    key_map = _key_map(symbols)
    ratio_rows = parsed.frame(LongShortRatio)
    # One metric at a time (metric is a grouping key, so the result is the same): a 30-day 5-minute history is
    # over a million ratio rows, and each step of latest_ended holds a copy of what it is given.
    metrics = ratio_rows["metric"].unique(maintain_order=True).to_list()
    parts = [ratio_rows.filter(pl.col("metric") == metric) for metric in metrics] or [ratio_rows]
    ratio_keys = ["venue", "symbol", "metric", "period"]
    ratios = pl.concat(
        [latest_ended(part.join(key_map, on=["venue", "key"]), ratio_keys, ends_ms, interval_ms) for part in parts],
        how="vertical",
    )
    ratios = on_shares_scale(ratios, ratio_tolerance)
    history = parsed.frame(OpenInterestHistory)
    instrument_oi = [spec.name for spec in registry.specs() if spec.instrument_oi_history]
    multipliers = instrument_units(parsed).select("venue", key="instrument", multiplier="multiplier")
    oi_rows = (
        history.filter(pl.col("venue").is_in(instrument_oi))
        .join(symbols.rename({"instrument": "key"}).with_columns(instrument=pl.col("key")), on=["venue", "key"])
        .join(multipliers, on=["venue", "key"], how="left")
        .with_columns(coins=pl.col("coins") * pl.col("multiplier").fill_null(1.0))
    )
    oi = latest_ended(oi_rows, ["venue", "symbol", "period"], ends_ms, interval_ms)
    parts = [
        _fact(
            ratios,
            pl.col("metric"),
            pl.col("ratio"),
            "ratio",
            period=pl.col("period"),
            long_share=pl.col("long_share"),
            short_share=pl.col("short_share"),
            ratio_source=pl.col("ratio_source"),
            venue_ratio=pl.col("venue_ratio"),
            end_ms=pl.col("end_ms"),
        ),
        _fact(oi, "oi_coins", pl.col("coins"), "coin", period=pl.col("period"), end_ms=pl.col("end_ms")),
        _fact(
            oi,
            "oi_usd",
            pl.col("usd"),
            "USD",
            period=pl.col("period"),
            usd_source=pl.lit("venue"),
            end_ms=pl.col("end_ms"),
        ),
        *(
            _oi_change_24h(history, symbols, spec.name, spec.oi_change_period, ends_ms, interval_ms)
            for spec in registry.specs()
            if spec.oi_change_period
        ),
    ]
    return pl.concat(parts, how="vertical_relaxed")


def unavailable_pairs(manifests: list[Manifest]) -> pl.DataFrame:
    """(venue, metric) pairs the manifests say the venue cannot give for their interval."""
    pairs = [(m.venue, metric) for m in manifests for metric in m.unavailable]
    return pl.DataFrame(pairs, schema={"venue": pl.String, "metric": pl.String}, orient="row").unique()


def build_facts(
    manifests: list[Manifest], parsed: ParsedRows, interval_end: datetime, interval_ms: int | None = None
) -> pl.DataFrame:
    """The fact rows of one interval (without ts/run_id/loaded_at, which the loader adds)."""
    end_ms = int(interval_end.timestamp() * 1000)
    mapped = symbol_map(manifests)
    if mapped.is_empty():
        return empty_facts()
    if interval_ms is None:
        starts = [m.interval_start for m in manifests if m.interval_start]
        interval_ms = end_ms - int(min(starts).timestamp() * 1000) if starts else HOUR_MS
    units = instrument_units(parsed)
    marks = (
        _latest(rows_frame(parsed.rows[MarkPrice], MarkPrice), ["venue", "instrument"])
        .join(mapped, on=["venue", "instrument"])
        .join(units.select("venue", "instrument", "multiplier"), on=["venue", "instrument"], how="left")
        .with_columns(mark_price=pl.col("mark_price") / pl.col("multiplier").fill_null(1.0))
    )
    oi = (
        _latest(rows_frame(parsed.rows[OpenInterest], OpenInterest), ["venue", "instrument"])
        .join(mapped, on=["venue", "instrument"])
        .join(units, on=["venue", "instrument"], how="left")
        .join(marks.select("venue", "instrument", "mark_price"), on=["venue", "instrument"], how="left")
        .with_columns(
            coins=pl.coalesce(
                pl.col("coins") * pl.col("multiplier").fill_null(1.0), pl.col("contracts") * pl.col("contract_value")
            )
        )
        .with_columns(
            usd_source=pl.when(pl.col("usd").is_not_null())
            .then(pl.lit("venue"))
            .when((pl.col("coins") * pl.col("mark_price")).is_not_null())
            .then(pl.lit("mark")),
            usd=pl.coalesce("usd", pl.col("coins") * pl.col("mark_price")),
        )
    )
    funding = pl.concat(
        [
            marks.select("venue", "symbol", "instrument", "ts_ms", "funding_rate"),
            _latest(rows_frame(parsed.rows[FundingRate], FundingRate), ["venue", "instrument"])
            .join(mapped, on=["venue", "instrument"])
            .select("venue", "symbol", "instrument", "ts_ms", "funding_rate"),
        ],
        how="vertical_relaxed",  # either side may be empty (a past interval has neither)
    ).filter(pl.col("funding_rate").is_not_null())
    funding = _latest(funding, ["venue", "symbol"])

    # Venues that split their OI into sides (Strike): the sides' quotient is their long/short ratio.
    sides_metric = {spec.name: spec.oi_sides_metric for spec in registry.specs() if spec.oi_sides_metric}
    split = oi.filter(
        pl.col("venue").is_in(list(sides_metric)) & pl.col("long_usd").is_not_null() & pl.col("short_usd").is_not_null()
    )
    parts = [
        _fact(oi, "oi_contracts", pl.col("contracts"), "contracts"),
        _fact(oi, "oi_coins", pl.col("coins"), "coin"),
        _fact(
            oi,
            "oi_usd",
            pl.col("usd"),
            "USD",
            usd_source=pl.col("usd_source"),
            long_share=pl.col("long_usd") / pl.col("usd"),
            short_share=pl.col("short_usd") / pl.col("usd"),
        ),
        _fact(marks, "mark_price", pl.col("mark_price"), "USD"),
        _fact(funding, "funding_rate", pl.col("funding_rate"), "fraction"),
        _fact(
            split,
            pl.col("venue").replace_strict(sides_metric, return_dtype=pl.String),
            pl.col("long_usd") / pl.col("short_usd"),
            "ratio",
            long_share=pl.col("long_usd") / (pl.col("long_usd") + pl.col("short_usd")),
            short_share=pl.col("short_usd") / (pl.col("long_usd") + pl.col("short_usd")),
            ratio_source=pl.lit(FROM_OI_SIDES),
        ),
        bucket_facts(mapped, parsed, [end_ms], interval_ms).drop("end_ms"),
    ]
    facts = pl.concat([part for part in parts if not part.is_empty()] or [parts[0]], how="vertical_relaxed")
    facts = facts.join(unavailable_pairs(manifests), on=["venue", "metric"], how="anti")
    return pl.concat([facts, funding_interval_facts(facts, parsed)], how="vertical_relaxed")


def funding_interval_facts(facts: pl.DataFrame, parsed: ParsedRows) -> pl.DataFrame:
    """``funding_interval_hours`` beside every published ``funding_rate`` (the hours its rate is per): the venue's
    own figure for the instrument (FundingInterval rows), else its adapter's default; none where neither says."""
    funding = facts.filter(pl.col("metric") == "funding_rate")
    declared = rows_frame(parsed.rows[FundingInterval], FundingInterval).unique(["venue", "instrument"], keep="last")
    defaults = pl.DataFrame(
        [(spec.name, spec.funding_interval_hours) for spec in registry.specs() if spec.funding_interval_hours],
        schema={"venue": pl.String, "default_hours": pl.Float64},
        orient="row",
    )
    return (
        funding.join(declared, on=["venue", "instrument"], how="left")
        .join(defaults, on="venue", how="left")
        .with_columns(value=pl.coalesce("hours", "default_hours"))
        .filter(pl.col("value").is_not_null())
        .with_columns(metric=pl.lit("funding_interval_hours"), unit=pl.lit("hours"))
        .select(facts.columns)
    )


def _oi_change_24h(
    history: pl.DataFrame, mapped: pl.DataFrame, venue: str, period: str, ends_ms: list[int], interval_ms: int
) -> pl.DataFrame:
    """A venue's coin-level OI (USD) change between the latest ``period`` bucket ended at or before each end and
    the bucket 24 h before it (the adapter's ``oi_change_period`` rule)."""
    history = history.filter((pl.col("venue") == venue) & (pl.col("period") == period) & pl.col("usd").is_not_null())
    coins = mapped.filter(pl.col("venue") == venue)
    latest = latest_ended(history, ["key"], ends_ms, interval_ms).select("key", "end_ms", "ts_ms", now_usd="usd")
    earlier = history.unique(["key", "ts_ms"], keep="last").select(
        "key", ts_ms=pl.col("ts_ms") + DAY_MS, then_usd="usd"
    )
    joined = (
        latest.join(earlier, on=["key", "ts_ms"])
        .join(coins, left_on="key", right_on="symbol")
        .with_columns(venue=pl.lit(venue), symbol=pl.col("key"))
    )
    return _fact(
        joined,
        "oi_usd_change_24h_pct",
        (pl.col("now_usd") - pl.col("then_usd")) / pl.col("then_usd") * 100,
        "percent",
        period=pl.lit(period),
        end_ms=pl.col("end_ms"),
    )


def empty_facts() -> pl.DataFrame:
    """The facts of an interval with no rows (without ts/run_id/loaded_at, which the loader adds)."""
    return pl.DataFrame(schema={k: v for k, v in FACT_SCHEMA.items() if k != "ts"})


def instrument_rows(parsed: ParsedRows) -> pl.DataFrame:
    frame = rows_frame(parsed.rows[Instrument], Instrument)
    return frame.unique(["venue", "instrument"], keep="last").select(
        "venue", "instrument", "symbol", "contract_value", "quote", "status", "tradable", "multiplier"
    )


def instrument_units(parsed: ParsedRows) -> pl.DataFrame:
    """(venue, instrument, contract_value, multiplier) from the listings: how a venue's OI and mark price become
    coins and USD per coin (contracts x ``contract_value`` = coins; venue units x ``multiplier`` = coins)."""
    return instrument_rows(parsed).select("venue", "instrument", "contract_value", "multiplier")


def now_utc() -> datetime:
    return datetime.now(UTC)
