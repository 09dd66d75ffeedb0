-- model: marts.symbol_snapshot
-- layer: mart (stable interface, design.md). Reads intermediate.symbol_interval.
-- grain: one row per (ts, symbol): the seed product's output row for one data interval, plus Bitget, Strike
--        and Binance's top-trader account ratio.
-- keys: (ts, symbol). Incremental on ts: only the intervals in _touched_intervals are rebuilt.
-- definitions:
--   ts                    the run's data-interval end, UTC
--   mark_price            median of the venues' mark prices (USD per coin)
--   <venue>_oi_usd        open interest in USD at that venue (NULL when the venue has none); total_oi_usd sums them
--   venues_with_oi        how many venues reported OI
--   binance_top_trader_ls Binance top-trader long/short ratio by positions; binance_top_account_ls by accounts;
--   binance_global_account_ls all accounts; okx_ls OKX currency account ratio; bitget_ls Bitget account ratio;
--   strike_ls             Strike long OI / short OI
--   avg_ls_ratio          arithmetic mean of the available ones among binance_top_trader_ls,
--                         binance_global_account_ls and okx_ls (as the seed product computes it);
--                         ls_metrics_count says how many were averaged
--   imbalance_pct         (avg_ls_ratio - 1) / (avg_ls_ratio + 1) x 100
--   skew_label            from avg_ls_ratio and the thresholds in _settings (positioning.settings.SkewThresholds)
--   okx_oi_24h_change_pct OKX coin-level OI (USD) change over 24 h; NULL unless includeOiChange24h
-- The sortBy orders over this table are views marts.snapshot_<sortBy> (positioning.marts.SORT_ORDERS).
WITH symbols AS (
    SELECT *
    FROM intermediate.symbol_interval
    WHERE ts IN (SELECT ts FROM _touched_intervals)
)

SELECT
    i.ts,
    i.symbol,
    i.mark_price,
    i.total_oi_usd,
    i.binance_oi_usd,
    i.okx_oi_usd,
    i.bitget_oi_usd,
    i.strike_oi_usd,
    i.venues_with_oi,
    i.binance_top_trader_ls,
    i.binance_top_account_ls,
    i.binance_global_account_ls,
    i.okx_ls,
    i.bitget_ls,
    i.strike_ls,
    i.avg_ls_ratio,
    i.ls_metrics_count,
    CASE
        WHEN i.ls_metrics_count = 0 THEN 'NO_DATA'
        WHEN i.avg_ls_ratio >= s.skew_extreme_long THEN 'EXTREME_LONG'
        WHEN i.avg_ls_ratio >= s.skew_long_skewed THEN 'LONG_SKEWED'
        WHEN i.avg_ls_ratio <= s.skew_extreme_short THEN 'EXTREME_SHORT'
        WHEN i.avg_ls_ratio <= s.skew_short_skewed THEN 'SHORT_SKEWED'
        ELSE 'NEUTRAL'
    END AS skew_label,
    (i.avg_ls_ratio - 1) / (i.avg_ls_ratio + 1) * 100 AS imbalance_pct,
    i.okx_oi_24h_change_pct
FROM symbols AS i
CROSS JOIN _settings AS s
