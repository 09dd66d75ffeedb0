-- model: marts.skew_history
-- lookback: 30 days
-- layer: mart. Every venue's long/short ratio per interval with the consensus's rolling z-score and percentile
--        within the symbol's OWN history, so "extreme" means extreme for that market, not a fixed number.
-- grain: one row per (ts, symbol) of intermediate.symbol_interval.
-- keys: (ts, symbol). Incremental with a 30-day lookback: the runner rewrites the touched intervals and every
--        later interval whose 30-day window contains one; inputs are read from _lookback_ranges only.
-- definitions:
--   <ratio columns> (every venue's), avg_ls_ratio, ls_metrics_count   as in marts.symbol_snapshot
--   imbalance_pct            of avg_ls_ratio: (r - 1) / (r + 1) x 100 (as in marts.symbol_snapshot)
--   consensus_ls_ratio       exp(mean(ln r)) over all available ratios (intermediate.symbol_interval);
--                            consensus_ratio_count says how many
--   consensus_imbalance_pct  (c - 1) / (c + 1) x 100 of the consensus c
--   consensus_log            ln(consensus_ls_ratio): the series the rolling statistics are taken on (ratios are
--                            multiplicative: 2.0 and 0.5 are equally far from balanced)
--   Rolling windows, per symbol: the 7 (30) days up to and including ts, i.e. rows with
--   ts - 7 days <= ts' <= ts (169 hourly intervals for 7 days, 721 for 30), among rows with a consensus:
--   consensus_obs_7d/_30d    how many observations the window holds
--   consensus_z_7d/_30d      (consensus_log - mean) / stddev_samp over the window (the current row included);
--                            NULL below _settings.signal_window_min_observations or when stddev_samp < 1e-9
--                            (a flat history has no meaningful z-score)
--   consensus_pct_7d/_30d    percentile of the current consensus within the window:
--                            100 x count(window values <= current) / count(window values), ties counted as <=
--                            (100 = the highest of the window; DuckDB's framed cume_dist); NULL below
--                            signal_window_min_observations
WITH history AS (
    SELECT i.ts, i.symbol, ln(i.consensus_ls_ratio) AS consensus_log
    FROM intermediate.symbol_interval AS i
    INNER JOIN _lookback_ranges AS r ON i.ts BETWEEN r.lo AND r.hi  -- disjoint ranges: no duplicates
    WHERE i.consensus_ls_ratio > 0
),

rolling AS (
    SELECT
        ts,
        symbol,
        consensus_log,
        count(*) OVER last_7d AS obs_7d,
        avg(consensus_log) OVER last_7d AS mean_7d,
        stddev_samp(consensus_log) OVER last_7d AS stddev_7d,
        cume_dist(ORDER BY consensus_log) OVER last_7d AS cume_7d,
        count(*) OVER last_30d AS obs_30d,
        avg(consensus_log) OVER last_30d AS mean_30d,
        stddev_samp(consensus_log) OVER last_30d AS stddev_30d,
        cume_dist(ORDER BY consensus_log) OVER last_30d AS cume_30d
    FROM history
    WINDOW
        last_7d AS (PARTITION BY symbol ORDER BY ts RANGE BETWEEN INTERVAL 7 DAYS PRECEDING AND CURRENT ROW),
        last_30d AS (PARTITION BY symbol ORDER BY ts RANGE BETWEEN INTERVAL 30 DAYS PRECEDING AND CURRENT ROW)
),

touched AS (
    SELECT *
    FROM intermediate.symbol_interval
    WHERE ts IN (SELECT ts FROM _touched_intervals)
)

SELECT
    t.ts,
    t.symbol,
{%- for c in ratio_columns %}
    t.{{ c.name }},
{%- endfor %}
    t.avg_ls_ratio,
    t.ls_metrics_count,
    (t.avg_ls_ratio - 1) / (t.avg_ls_ratio + 1) * 100 AS imbalance_pct,
    t.consensus_ls_ratio,
    t.consensus_ratio_count,
    (t.consensus_ls_ratio - 1) / (t.consensus_ls_ratio + 1) * 100 AS consensus_imbalance_pct,
    w.consensus_log,
    w.obs_7d::INTEGER AS consensus_obs_7d,
    CASE
        WHEN w.obs_7d >= s.signal_window_min_observations AND w.stddev_7d >= 1e-9
            THEN (w.consensus_log - w.mean_7d) / w.stddev_7d
    END AS consensus_z_7d,
    CASE WHEN w.obs_7d >= s.signal_window_min_observations THEN 100 * w.cume_7d END AS consensus_pct_7d,
    w.obs_30d::INTEGER AS consensus_obs_30d,
    CASE
        WHEN w.obs_30d >= s.signal_window_min_observations AND w.stddev_30d >= 1e-9
            THEN (w.consensus_log - w.mean_30d) / w.stddev_30d
    END AS consensus_z_30d,
    CASE WHEN w.obs_30d >= s.signal_window_min_observations THEN 100 * w.cume_30d END AS consensus_pct_30d
FROM touched AS t
LEFT JOIN rolling AS w ON t.ts = w.ts AND t.symbol = w.symbol
CROSS JOIN _settings AS s
