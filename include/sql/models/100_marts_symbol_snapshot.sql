-- model: marts.symbol_snapshot
-- layer: mart (stable interface, design.md). Reads intermediate.symbol_interval.
-- grain: one row per (ts, symbol): the seed product's output row for one data interval, with every
--        registered venue's OI and ratios.
-- keys: (ts, symbol). Incremental on ts: only the intervals in _touched_intervals are rebuilt.
-- definitions:
--   ts                    the run's data-interval end, UTC
--   mark_price            median of the venues' mark prices (USD per coin)
--   <venue>_oi_usd        open interest in USD at that venue (NULL when the venue has none); total_oi_usd sums them
--                         (one per registered venue, generated from positioning.registry)
--   venues_with_oi        how many venues reported OI
--   <ratio columns>       every venue's long/short ratios as its adapter names them (design.md lists them)
--   avg_ls_ratio          arithmetic mean of the available seed-average ratios (as the seed product computes it:
--                         the top-trader position, global account and currency account ratios); ls_metrics_count
--   imbalance_pct         (avg_ls_ratio - 1) / (avg_ls_ratio + 1) x 100
--   skew_label            from avg_ls_ratio and the thresholds in _settings (positioning.settings.SkewThresholds)
--   <value columns>       the per-venue values an adapter publishes to the snapshot (a 24 h OI change,
--                         NULL unless includeOiChange24h)
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
{%- for venue in venues %}
    i.{{ venue }}_oi_usd,
{%- endfor %}
    i.venues_with_oi,
{%- for c in ratio_columns %}
    i.{{ c.name }},
{%- endfor %}
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
    (i.avg_ls_ratio - 1) / (i.avg_ls_ratio + 1) * 100 AS imbalance_pct{{ "," if snapshot_values }}
{%- for c in snapshot_values %}
    i.{{ c.name }}{{ "," if not loop.last }}
{%- endfor %}
FROM symbols AS i
CROSS JOIN _settings AS s
