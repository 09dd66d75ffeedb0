-- model: marts.oi_change
-- lookback: 30 days
-- layer: mart. Open interest in USD per venue and in total, its 1 h, 4 h and 24 h changes, each venue's share,
--        the mark price's changes over the same horizons, and where the total sits in the symbol's own 30 days.
-- grain: one row per (ts, symbol) of intermediate.symbol_interval.
-- keys: (ts, symbol). Incremental with a 30-day lookback (the percentile's window; the 24 h change is inside it).
-- definitions:
--   <venue>_oi_usd, total_oi_usd, venues_with_oi, mark_price   as in marts.symbol_snapshot
--   <venue>_oi_share_pct          <venue>_oi_usd / total_oi_usd x 100
--   <venue>_oi_change_<h>_pct     (oi now - oi h earlier) / oi h earlier x 100, h in 1h, 4h, 24h, where "h earlier"
--                                 is the interval with ts exactly h before (NULL when that interval or the venue's
--                                 OI in it is missing, or it was 0)
--   total_oi_change_<h>_pct       the same for the sum over the venues with OI at BOTH ends (like for like: a venue
--                                 missing in one of the two intervals, an outage, does not read as an OI move)
--   mark_price_change_<h>_pct     (mark_price now - h earlier) / h earlier x 100
--   total_oi_obs_30d              intervals with a total_oi_usd among ts - 30 days <= ts' <= ts (this symbol)
--   total_oi_pct_30d              100 x count(window totals <= current) / total_oi_obs_30d (ties counted as <=;
--                                 100 = the 30-day high); NULL below _settings.signal_window_min_observations
WITH history AS (
    SELECT i.ts, i.symbol, i.mark_price, i.total_oi_usd{% for venue in venues %}, i.{{ venue }}_oi_usd{% endfor %}
    FROM intermediate.symbol_interval AS i
    INNER JOIN _lookback_ranges AS r ON i.ts BETWEEN r.lo AND r.hi  -- disjoint ranges: no duplicates
),

venue_oi AS (
{%- for venue in venues %}
    SELECT ts, symbol, '{{ venue }}' AS venue, {{ venue }}_oi_usd AS oi_usd FROM history WHERE {{ venue }}_oi_usd IS NOT NULL
    {{- "\n    UNION ALL" if not loop.last }}
{%- endfor %}
),

venue_pairs AS (
    -- each touched venue value beside the same venue's value 1, 4 and 24 hours earlier
    SELECT
        now.ts,
        now.symbol,
        now.venue,
        now.oi_usd,
        ago_1h.oi_usd AS oi_usd_1h_ago,
        ago_4h.oi_usd AS oi_usd_4h_ago,
        ago_24h.oi_usd AS oi_usd_24h_ago
    FROM venue_oi AS now
    LEFT JOIN venue_oi AS ago_1h
        ON ago_1h.symbol = now.symbol AND ago_1h.venue = now.venue AND ago_1h.ts = now.ts - INTERVAL 1 HOUR
    LEFT JOIN venue_oi AS ago_4h
        ON ago_4h.symbol = now.symbol AND ago_4h.venue = now.venue AND ago_4h.ts = now.ts - INTERVAL 4 HOUR
    LEFT JOIN venue_oi AS ago_24h
        ON ago_24h.symbol = now.symbol AND ago_24h.venue = now.venue AND ago_24h.ts = now.ts - INTERVAL 24 HOUR
    WHERE now.ts IN (SELECT ts FROM _touched_intervals)
),

venue_changes AS (
    SELECT
        ts,
        symbol,
{%- for venue in venues %}{% for h in ["1h", "4h", "24h"] %}
        max(100 * (oi_usd - oi_usd_{{ h }}_ago) / oi_usd_{{ h }}_ago) FILTER (WHERE venue = '{{ venue }}' AND oi_usd_{{ h }}_ago <> 0)
            AS {{ venue }}_oi_change_{{ h }}_pct,
{%- endfor %}{% endfor %}
        -- like for like: only the venues with OI at both ends enter either sum
        sum(oi_usd) FILTER (WHERE oi_usd_1h_ago IS NOT NULL) AS common_now_1h,
        sum(oi_usd_1h_ago) AS common_then_1h,
        sum(oi_usd) FILTER (WHERE oi_usd_4h_ago IS NOT NULL) AS common_now_4h,
        sum(oi_usd_4h_ago) AS common_then_4h,
        sum(oi_usd) FILTER (WHERE oi_usd_24h_ago IS NOT NULL) AS common_now_24h,
        sum(oi_usd_24h_ago) AS common_then_24h
    FROM venue_pairs
    GROUP BY ts, symbol
),

total_oi_rank AS (
    SELECT
        ts,
        symbol,
        count(*) OVER last_30d AS obs_30d,
        cume_dist(ORDER BY total_oi_usd) OVER last_30d AS cume_30d
    FROM history
    WHERE total_oi_usd IS NOT NULL
    WINDOW last_30d AS (PARTITION BY symbol ORDER BY ts RANGE BETWEEN INTERVAL 30 DAYS PRECEDING AND CURRENT ROW)
),

touched AS (
    SELECT *
    FROM intermediate.symbol_interval
    WHERE ts IN (SELECT ts FROM _touched_intervals)
)

SELECT
    t.ts,
    t.symbol,
    t.mark_price,
    t.total_oi_usd,
    t.venues_with_oi,
{%- for venue in venues %}
    t.{{ venue }}_oi_usd,
{%- endfor %}
{%- for venue in venues %}
    100 * t.{{ venue }}_oi_usd / t.total_oi_usd AS {{ venue }}_oi_share_pct,
{%- endfor %}
    CASE WHEN c.common_then_1h <> 0 THEN 100 * (c.common_now_1h - c.common_then_1h) / c.common_then_1h END
        AS total_oi_change_1h_pct,
    CASE WHEN c.common_then_4h <> 0 THEN 100 * (c.common_now_4h - c.common_then_4h) / c.common_then_4h END
        AS total_oi_change_4h_pct,
    CASE WHEN c.common_then_24h <> 0 THEN 100 * (c.common_now_24h - c.common_then_24h) / c.common_then_24h END
        AS total_oi_change_24h_pct,
{%- for venue in venues %}{% for h in ["1h", "4h", "24h"] %}
    c.{{ venue }}_oi_change_{{ h }}_pct,
{%- endfor %}{% endfor %}
    100 * (t.mark_price - p1.mark_price) / nullif(p1.mark_price, 0) AS mark_price_change_1h_pct,
    100 * (t.mark_price - p4.mark_price) / nullif(p4.mark_price, 0) AS mark_price_change_4h_pct,
    100 * (t.mark_price - p24.mark_price) / nullif(p24.mark_price, 0) AS mark_price_change_24h_pct,
    r.obs_30d::INTEGER AS total_oi_obs_30d,
    CASE WHEN r.obs_30d >= s.signal_window_min_observations THEN 100 * r.cume_30d END AS total_oi_pct_30d
FROM touched AS t
LEFT JOIN venue_changes AS c ON t.ts = c.ts AND t.symbol = c.symbol
LEFT JOIN history AS p1 ON p1.symbol = t.symbol AND p1.ts = t.ts - INTERVAL 1 HOUR
LEFT JOIN history AS p4 ON p4.symbol = t.symbol AND p4.ts = t.ts - INTERVAL 4 HOUR
LEFT JOIN history AS p24 ON p24.symbol = t.symbol AND p24.ts = t.ts - INTERVAL 24 HOUR
LEFT JOIN total_oi_rank AS r ON t.ts = r.ts AND t.symbol = r.symbol
CROSS JOIN _settings AS s
