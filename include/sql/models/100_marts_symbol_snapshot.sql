-- model: marts.symbol_snapshot
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
WITH facts AS (
    SELECT ts, venue, symbol, metric, value
    FROM core.fact_positioning
    WHERE ts IN (SELECT ts FROM _touched_intervals)
),

per_symbol AS (
    SELECT
        ts,
        symbol,
        median(value) FILTER (WHERE metric = 'mark_price') AS mark_price,
        max(value) FILTER (WHERE metric = 'oi_usd' AND venue = 'binance') AS binance_oi_usd,
        max(value) FILTER (WHERE metric = 'oi_usd' AND venue = 'okx') AS okx_oi_usd,
        max(value) FILTER (WHERE metric = 'oi_usd' AND venue = 'bitget') AS bitget_oi_usd,
        max(value) FILTER (WHERE metric = 'oi_usd' AND venue = 'strike') AS strike_oi_usd,
        count(*) FILTER (WHERE metric = 'oi_usd') AS venues_with_oi,
        max(value) FILTER (WHERE metric = 'ls_top_position' AND venue = 'binance') AS binance_top_trader_ls,
        max(value) FILTER (WHERE metric = 'ls_top_account' AND venue = 'binance') AS binance_top_account_ls,
        max(value) FILTER (WHERE metric = 'ls_global_account' AND venue = 'binance') AS binance_global_account_ls,
        max(value) FILTER (WHERE metric = 'ls_account' AND venue = 'okx') AS okx_ls,
        max(value) FILTER (WHERE metric = 'ls_account' AND venue = 'bitget') AS bitget_ls,
        max(value) FILTER (WHERE metric = 'ls_oi' AND venue = 'strike') AS strike_ls,
        max(value) FILTER (WHERE metric = 'oi_usd_change_24h_pct' AND venue = 'okx') AS okx_oi_24h_change_pct
    FROM facts
    GROUP BY ts, symbol
),

averaged AS (
    SELECT
        *,
        (coalesce(binance_oi_usd, 0) + coalesce(okx_oi_usd, 0) + coalesce(bitget_oi_usd, 0)
            + coalesce(strike_oi_usd, 0)) AS oi_sum,
        (binance_top_trader_ls IS NOT NULL)::INTEGER + (binance_global_account_ls IS NOT NULL)::INTEGER
            + (okx_ls IS NOT NULL)::INTEGER AS ls_metrics_count,
        coalesce(binance_top_trader_ls, 0) + coalesce(binance_global_account_ls, 0) + coalesce(okx_ls, 0) AS ls_sum
    FROM per_symbol
)

SELECT
    a.ts,
    a.symbol,
    a.mark_price,
    CASE WHEN a.venues_with_oi > 0 THEN a.oi_sum END AS total_oi_usd,
    a.binance_oi_usd,
    a.okx_oi_usd,
    a.bitget_oi_usd,
    a.strike_oi_usd,
    a.venues_with_oi::INTEGER AS venues_with_oi,
    a.binance_top_trader_ls,
    a.binance_top_account_ls,
    a.binance_global_account_ls,
    a.okx_ls,
    a.bitget_ls,
    a.strike_ls,
    CASE WHEN a.ls_metrics_count > 0 THEN a.ls_sum / a.ls_metrics_count END AS avg_ls_ratio,
    a.ls_metrics_count,
    CASE
        WHEN a.ls_metrics_count = 0 THEN 'NO_DATA'
        WHEN a.ls_sum / a.ls_metrics_count >= s.skew_extreme_long THEN 'EXTREME_LONG'
        WHEN a.ls_sum / a.ls_metrics_count >= s.skew_long_skewed THEN 'LONG_SKEWED'
        WHEN a.ls_sum / a.ls_metrics_count <= s.skew_extreme_short THEN 'EXTREME_SHORT'
        WHEN a.ls_sum / a.ls_metrics_count <= s.skew_short_skewed THEN 'SHORT_SKEWED'
        ELSE 'NEUTRAL'
    END AS skew_label,
    CASE
        WHEN a.ls_metrics_count > 0
            THEN (a.ls_sum / a.ls_metrics_count - 1) / (a.ls_sum / a.ls_metrics_count + 1) * 100
    END AS imbalance_pct,
    a.okx_oi_24h_change_pct
FROM averaged AS a
CROSS JOIN _settings AS s
