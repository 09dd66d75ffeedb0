-- model: stg.venue_interval
-- layer: staging. core.fact_positioning (long: one row per metric) pivoted to one row per venue, units kept;
--        no business rules here, so every later model reads one typed row per (ts, symbol, venue).
-- grain: one row per (ts, symbol, venue) with at least one fact in the interval.
-- keys: (ts, symbol, venue). Incremental on ts: only the intervals in _touched_intervals are rebuilt.
-- definitions (units as in core.fact_positioning):
--   mark_price             USD per coin (the venue's mark)
--   oi_usd, oi_usd_source  open interest in USD; 'venue' = reported, 'mark' = oi_coins x this venue's mark
--   oi_coins               open interest in base coins (NULL at a venue that reports USD only)
--   oi_long_usd/short_usd  the long and short sides of oi_usd where the venue splits it, else NULL
--   funding_rate           fraction per funding interval
--   funding_interval_hours hours one funding payment covers (the venue's figure per instrument, else its default)
--   ls_*                   long/short ratios as the venue reports them (positioning.rows.RATIO_METRICS says who
--                          reports which)
--   oi_usd_change_24h_pct  a venue's coin-level OI (USD) change over 24 h, percent (only with includeOiChange24h)
--   taker_buy_sell         taker buy volume / taker sell volume of the latest bucket ended at ts; taker_period
--                          is that bucket's length in the venue's spelling (flow, not positioning)
WITH facts AS (
    SELECT ts, venue, symbol, metric, period, value, usd_source, long_share, short_share
    FROM core.fact_positioning
    WHERE ts IN (SELECT ts FROM _touched_intervals)
)

SELECT
    ts,
    symbol,
    venue,
    max(value) FILTER (WHERE metric = 'mark_price') AS mark_price,
    max(value) FILTER (WHERE metric = 'oi_usd') AS oi_usd,
    max(usd_source) FILTER (WHERE metric = 'oi_usd') AS oi_usd_source,
    max(value) FILTER (WHERE metric = 'oi_coins') AS oi_coins,
    max(value * long_share) FILTER (WHERE metric = 'oi_usd') AS oi_long_usd,
    max(value * short_share) FILTER (WHERE metric = 'oi_usd') AS oi_short_usd,
    max(value) FILTER (WHERE metric = 'funding_rate') AS funding_rate,
    max(value) FILTER (WHERE metric = 'funding_interval_hours') AS funding_interval_hours,
    max(value) FILTER (WHERE metric = 'ls_top_position') AS ls_top_position,
    max(value) FILTER (WHERE metric = 'ls_top_account') AS ls_top_account,
    max(value) FILTER (WHERE metric = 'ls_global_account') AS ls_global_account,
    max(value) FILTER (WHERE metric = 'ls_account') AS ls_account,
    max(value) FILTER (WHERE metric = 'ls_position') AS ls_position,
    max(value) FILTER (WHERE metric = 'ls_volume') AS ls_volume,
    max(value) FILTER (WHERE metric = 'ls_oi') AS ls_oi,
    max(value) FILTER (WHERE metric = 'oi_usd_change_24h_pct') AS oi_usd_change_24h_pct,
    max(value) FILTER (WHERE metric = 'taker_buy_sell') AS taker_buy_sell,
    max(period) FILTER (WHERE metric = 'taker_buy_sell') AS taker_period
FROM facts
GROUP BY ts, symbol, venue
