-- model: intermediate.symbol_interval
-- layer: intermediate. The venues of one symbol side by side, with the two cross-venue long/short aggregates
--        every mart uses; marts.symbol_snapshot, skew_history, oi_change and positioning_signals read this.
-- grain: one row per (ts, symbol) with at least one venue row in stg.venue_interval.
-- keys: (ts, symbol). Incremental on ts: only the intervals in _touched_intervals are rebuilt.
-- definitions:
--   mark_price             median of the venues' mark prices (USD per coin)
--   <venue>_oi_usd         open interest in USD at that venue, NULL when the venue has none
--   total_oi_usd           sum of the venues' oi_usd (NULL when no venue has OI); venues_with_oi counts them
--   strike_long_oi_usd     Strike's long and short sides of its OI (USD)
--   strike_short_oi_usd
--   binance_top_trader_ls  Binance ls_top_position; binance_top_account_ls ls_top_account;
--   binance_global_account_ls ls_global_account; okx_ls OKX ls_account; bitget_ls Bitget ls_account;
--   strike_ls              Strike ls_oi (long OI / short OI)
--   avg_ls_ratio           arithmetic mean of the available ones among binance_top_trader_ls,
--                          binance_global_account_ls and okx_ls (the seed product's figure);
--                          ls_metrics_count says how many were averaged
--   consensus_ls_ratio     log-space consensus of all six ratios above: exp(mean(ln r)) over the available
--                          ones with r > 0 (a geometric mean: 2.0 and 0.5 average to 1.0, as they should);
--                          consensus_ratio_count says how many; the ratio itself when only one is available
--   okx_oi_24h_change_pct  OKX coin-level OI (USD) change over 24 h (NULL unless includeOiChange24h)
WITH venues AS (
    SELECT *
    FROM stg.venue_interval
    WHERE ts IN (SELECT ts FROM _touched_intervals)
),

per_symbol AS (
    SELECT
        ts,
        symbol,
        median(mark_price) AS mark_price,
        max(oi_usd) FILTER (WHERE venue = 'binance') AS binance_oi_usd,
        max(oi_usd) FILTER (WHERE venue = 'okx') AS okx_oi_usd,
        max(oi_usd) FILTER (WHERE venue = 'bitget') AS bitget_oi_usd,
        max(oi_usd) FILTER (WHERE venue = 'strike') AS strike_oi_usd,
        count(oi_usd) AS venues_with_oi,
        max(oi_long_usd) FILTER (WHERE venue = 'strike') AS strike_long_oi_usd,
        max(oi_short_usd) FILTER (WHERE venue = 'strike') AS strike_short_oi_usd,
        max(ls_top_position) FILTER (WHERE venue = 'binance') AS binance_top_trader_ls,
        max(ls_top_account) FILTER (WHERE venue = 'binance') AS binance_top_account_ls,
        max(ls_global_account) FILTER (WHERE venue = 'binance') AS binance_global_account_ls,
        max(ls_account) FILTER (WHERE venue = 'okx') AS okx_ls,
        max(ls_account) FILTER (WHERE venue = 'bitget') AS bitget_ls,
        max(ls_oi) FILTER (WHERE venue = 'strike') AS strike_ls,
        max(oi_usd_change_24h_pct) FILTER (WHERE venue = 'okx') AS okx_oi_24h_change_pct
    FROM venues
    GROUP BY ts, symbol
),

sums AS (
    SELECT
        *,
        -- the same arithmetic, in the same order, as the seed product's snapshot (bit-identical results)
        coalesce(binance_oi_usd, 0) + coalesce(okx_oi_usd, 0) + coalesce(bitget_oi_usd, 0)
            + coalesce(strike_oi_usd, 0) AS oi_sum,
        (binance_top_trader_ls IS NOT NULL)::INTEGER + (binance_global_account_ls IS NOT NULL)::INTEGER
            + (okx_ls IS NOT NULL)::INTEGER AS ls_metrics_count,
        coalesce(binance_top_trader_ls, 0) + coalesce(binance_global_account_ls, 0) + coalesce(okx_ls, 0) AS ls_sum,
        list_filter(
            [binance_top_trader_ls, binance_top_account_ls, binance_global_account_ls, okx_ls, bitget_ls, strike_ls],
            lambda r: r > 0
        ) AS usable_ratios
    FROM per_symbol
)

SELECT
    ts,
    symbol,
    mark_price,
    CASE WHEN venues_with_oi > 0 THEN oi_sum END AS total_oi_usd,
    binance_oi_usd,
    okx_oi_usd,
    bitget_oi_usd,
    strike_oi_usd,
    venues_with_oi::INTEGER AS venues_with_oi,
    strike_long_oi_usd,
    strike_short_oi_usd,
    binance_top_trader_ls,
    binance_top_account_ls,
    binance_global_account_ls,
    okx_ls,
    bitget_ls,
    strike_ls,
    CASE WHEN ls_metrics_count > 0 THEN ls_sum / ls_metrics_count END AS avg_ls_ratio,
    ls_metrics_count,
    CASE
        WHEN len(usable_ratios) = 1 THEN usable_ratios[1]
        WHEN len(usable_ratios) > 1 THEN exp(list_avg(list_transform(usable_ratios, lambda r: ln(r))))
    END AS consensus_ls_ratio,
    len(usable_ratios)::INTEGER AS consensus_ratio_count,
    okx_oi_24h_change_pct
FROM sums
