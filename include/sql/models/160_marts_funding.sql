-- model: marts.funding
-- layer: mart. What holding the crowded side costs: every venue's funding rate on one 8-hour scale and the
--        open-interest-weighted rate across venues (where the money is, not one vote per venue).
-- grain: one row per (ts, symbol) with a funding rate at some venue (funding is current-only at every venue, so
--        a past interval loaded from history endpoints has none).
-- keys: (ts, symbol). Incremental on ts (no lookback).
-- definitions:
--   <venue>_funding_8h         the venue's funding rate scaled to 8 hours: funding_rate x 8 / funding_interval_hours
--                              (Binance 8 h unless fundingInfo lists the symbol, OKX next minus this funding time,
--                              Bitget fundInterval, Bybit fundingIntervalHour, Hyperliquid 1 h); a rate whose
--                              interval no source gives is left out. Strike's funding (separate long and short
--                              rates) is not mapped: its column is NULL.
--   venues_with_funding        venues with an 8-hour rate
--   mean_funding_8h            their plain mean (each venue weighs the same)
--   oi_weighted_funding_8h     sum(oi_usd x funding_8h) / sum(oi_usd) over the venues with both
--   funding_oi_usd             that sum(oi_usd): how much open interest the weighted rate speaks for
--   oi_weighted_funding_apr_pct  oi_weighted_funding_8h x 3 x 365 x 100 (simple, not compounded)
--   funding_spread_8h          max - min of the venues' 8-hour rates (the cross-venue carry); NULL below 2 venues
WITH venues AS (
    SELECT
        ts,
        symbol,
        venue,
        oi_usd,
        funding_rate * 8 / funding_interval_hours AS funding_8h
    FROM stg.venue_interval
    WHERE ts IN (SELECT ts FROM _touched_intervals)
        AND funding_rate IS NOT NULL AND funding_interval_hours > 0
)

SELECT
    ts,
    symbol,
{%- for venue in venues %}
    max(funding_8h) FILTER (WHERE venue = '{{ venue }}') AS {{ venue }}_funding_8h,
{%- endfor %}
    count(*)::INTEGER AS venues_with_funding,
    avg(funding_8h) AS mean_funding_8h,
    sum(funding_8h * oi_usd) FILTER (WHERE oi_usd > 0) / sum(oi_usd) FILTER (WHERE oi_usd > 0)
        AS oi_weighted_funding_8h,
    sum(oi_usd) FILTER (WHERE oi_usd > 0) AS funding_oi_usd,
    sum(funding_8h * oi_usd) FILTER (WHERE oi_usd > 0) / sum(oi_usd) FILTER (WHERE oi_usd > 0) * 3 * 365 * 100
        AS oi_weighted_funding_apr_pct,
    CASE WHEN count(*) >= 2 THEN max(funding_8h) - min(funding_8h) END AS funding_spread_8h
FROM venues
GROUP BY ts, symbol
