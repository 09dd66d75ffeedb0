"""Raw files of one interval → the rows of ``core.fact_positioning`` and ``core.dim_instrument`` (polars).

Reads only what the run's manifests point at (the last attempt of each successful request), applies the venue
modules' pure parsers, then does the cross-payload work with polars: symbol mapping, contract → coin
conversion, USD from the same venue's mark price where the venue reports none, the latest ratio bucket at or
before the interval end, and the OKX 24 h OI change.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import polars as pl

from positioning.extract import venue_module
from positioning.raw import read_raw
from positioning.rows import (
    FundingRate,
    Instrument,
    LongShortRatio,
    MarkPrice,
    OpenInterest,
    OpenInterestHistory,
    ParseError,
)

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
}
ROW_TYPES = (Instrument, OpenInterest, MarkPrice, FundingRate, LongShortRatio, OpenInterestHistory)
DAY_MS = 86_400_000


@dataclass
class ParsedRows:
    rows: dict[type, list[Any]] = field(default_factory=lambda: defaultdict(list))
    errors: list[dict[str, Any]] = field(default_factory=list)
    # (venue, endpoint, raw_path, rows) per parsed raw file, before any de-duplication: the quality gate checks
    # that no response carries the same key twice (the facts keep only the latest row per key, so a venue that
    # repeats its rows would otherwise pass unnoticed).
    files: list[tuple[str, str, str, list[Any]]] = field(default_factory=list)


def _received_ms(meta: dict[str, Any]) -> int:
    """When the venue answered: its HTTP ``Date`` header (the venue's clock), else our receive time."""
    date = meta.get("headers", {}).get("date")
    if date:
        try:
            return int(parsedate_to_datetime(date).timestamp() * 1000)
        except (TypeError, ValueError):
            pass
    return int(datetime.fromisoformat(meta["received_at"]).timestamp() * 1000)


def parse_manifest(manifest: dict[str, Any], parsed: ParsedRows | None = None) -> ParsedRows:
    """Parse the final attempt of every successful request in one venue's manifest."""
    parsed = parsed or ParsedRows()
    module = venue_module(manifest["venue"])
    for request in manifest["requests"]:
        if not request["ok"] or not request["raw_paths"]:
            continue
        path = request["raw_paths"][-1]
        raw = read_raw(path)
        endpoint = raw.meta["endpoint"]
        parser = module.PARSERS.get(endpoint)
        if parser is None:
            continue
        params = {**raw.meta.get("params", {}), "_received_at_ms": _received_ms(raw.meta)}
        try:
            rows = parser(raw.json(), params)
        except (ParseError, ValueError, TypeError, KeyError) as exc:
            parsed.errors.append(
                {"venue": manifest["venue"], "endpoint": endpoint, "raw_path": str(path), "error": str(exc)}
            )
            continue
        parsed.files.append((manifest["venue"], endpoint, str(path), rows))
        for row in rows:
            parsed.rows[type(row)].append(row)
    return parsed


def _frame(rows: list[Any], row_type: type) -> pl.DataFrame:
    columns = [f.name for f in dataclasses.fields(row_type)]
    if not rows:
        schema = {name: (pl.Int64 if name.endswith("_ms") else pl.Float64) for name in columns}
        for name in ("venue", "instrument", "symbol", "key", "metric", "period", "quote", "status"):
            if name in schema:
                schema[name] = pl.String
        if "tradable" in schema:
            schema["tradable"] = pl.Boolean
        return pl.DataFrame(schema=schema)
    return pl.DataFrame(
        [dataclasses.astuple(row) for row in rows], schema=columns, orient="row", infer_schema_length=None
    )


def _latest(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return frame.sort("ts_ms").group_by(keys, maintain_order=True).last()


def _symbol_map(manifests: list[dict[str, Any]]) -> pl.DataFrame:
    pairs = [
        (manifest["venue"], symbol, instrument)
        for manifest in manifests
        for symbol, instrument in manifest.get("instruments", {}).items()
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
    }
    return frame.filter(value.is_not_null()).select(**columns)


def build_facts(manifests: list[dict[str, Any]], parsed: ParsedRows, interval_end: datetime) -> pl.DataFrame:
    """The fact rows of one interval (without ts/run_id/loaded_at, which the loader adds)."""
    end_ms = int(interval_end.timestamp() * 1000)
    symbol_map = _symbol_map(manifests)
    if symbol_map.is_empty():
        return pl.DataFrame(schema={k: v for k, v in FACT_SCHEMA.items() if k != "ts"})
    instruments = _frame(parsed.rows[Instrument], Instrument)
    contract_values = instruments.select("venue", "instrument", "contract_value").unique(["venue", "instrument"])

    marks = _latest(_frame(parsed.rows[MarkPrice], MarkPrice), ["venue", "instrument"]).join(
        symbol_map, on=["venue", "instrument"]
    )
    oi = (
        _latest(_frame(parsed.rows[OpenInterest], OpenInterest), ["venue", "instrument"])
        .join(symbol_map, on=["venue", "instrument"])
        .join(contract_values, on=["venue", "instrument"], how="left")
        .join(marks.select("venue", "instrument", "mark_price"), on=["venue", "instrument"], how="left")
        .with_columns(coins=pl.coalesce("coins", pl.col("contracts") * pl.col("contract_value")))
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
            _latest(_frame(parsed.rows[FundingRate], FundingRate), ["venue", "instrument"])
            .join(symbol_map, on=["venue", "instrument"])
            .select("venue", "symbol", "instrument", "ts_ms", "funding_rate"),
        ]
    ).filter(pl.col("funding_rate").is_not_null())
    funding = _latest(funding, ["venue", "symbol"])

    # Ratio keys are instruments (Binance, Bitget) or base coins (OKX currency statistics).
    key_map = pl.concat(
        [
            symbol_map.rename({"instrument": "key"}).with_columns(instrument=pl.col("key")),
            symbol_map.with_columns(key=pl.col("symbol")).select("venue", "symbol", "key", "instrument"),
        ],
        how="diagonal",
    ).unique(["venue", "key"])
    ratios = _frame(parsed.rows[LongShortRatio], LongShortRatio).filter(pl.col("ts_ms") <= end_ms)
    ratios = _latest(ratios.join(key_map, on=["venue", "key"]), ["venue", "symbol", "metric", "period"])

    strike_sides = oi.filter(pl.col("long_usd").is_not_null() & pl.col("short_usd").is_not_null())
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
            ratios,
            pl.col("metric"),
            pl.col("ratio"),
            "ratio",
            period=pl.col("period"),
            long_share=pl.col("long_share"),
            short_share=pl.col("short_share"),
        ),
        _fact(
            strike_sides,
            "ls_oi",
            pl.col("long_usd") / pl.col("short_usd"),
            "ratio",
            long_share=pl.col("long_usd") / (pl.col("long_usd") + pl.col("short_usd")),
            short_share=pl.col("short_usd") / (pl.col("long_usd") + pl.col("short_usd")),
        ),
        _oi_change_24h(parsed, symbol_map, end_ms),
    ]
    return pl.concat([part for part in parts if not part.is_empty()] or [parts[0]], how="vertical_relaxed")


def _oi_change_24h(parsed: ParsedRows, symbol_map: pl.DataFrame, end_ms: int) -> pl.DataFrame:
    """OKX coin-level OI (USD) change between the latest hourly bucket at or before the end and 24 h earlier."""
    history = _frame(parsed.rows[OpenInterestHistory], OpenInterestHistory).filter(
        (pl.col("venue") == "okx") & (pl.col("ts_ms") <= end_ms) & pl.col("usd").is_not_null()
    )
    okx_symbols = symbol_map.filter(pl.col("venue") == "okx")
    latest = _latest(history, ["key"]).select("key", "ts_ms", now_usd="usd")
    earlier = history.select("key", ts_ms=pl.col("ts_ms") + DAY_MS, then_usd="usd")
    joined = (
        latest.join(earlier, on=["key", "ts_ms"])
        .join(okx_symbols, left_on="key", right_on="symbol")
        .with_columns(venue=pl.lit("okx"), symbol=pl.col("key"))
    )
    return _fact(
        joined,
        "oi_usd_change_24h_pct",
        (pl.col("now_usd") - pl.col("then_usd")) / pl.col("then_usd") * 100,
        "percent",
        period=pl.lit("1H"),
    )


def instrument_rows(parsed: ParsedRows) -> pl.DataFrame:
    frame = _frame(parsed.rows[Instrument], Instrument)
    return frame.unique(["venue", "instrument"], keep="last").select(
        "venue", "instrument", "symbol", "contract_value", "quote", "status", "tradable"
    )


def now_utc() -> datetime:
    return datetime.now(UTC)
