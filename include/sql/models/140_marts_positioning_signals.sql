-- model: marts.positioning_signals
-- lookback: 30 days
-- layer: mart. The seed product's "why this matters" rules made explicit, with the numbers that triggered
--        each and a score to rank by. Thresholds live in one place: positioning.settings.SignalThresholds
--        (environment POSITIONING_SIGNAL_*), passed in as the _settings columns signal_*.
-- grain: one row per (ts, symbol) of marts.skew_history (every symbol, firing or not).
-- keys: (ts, symbol). Incremental with a 30-day lookback: it reads marts.skew_history and marts.oi_change at the
--        same ts, whose rows depend on the 30 days before it, so it is rewritten over the same intervals.
-- inputs (copied into the row, so a signal shows what triggered it):
--   total_oi_usd, total_oi_pct_30d, total_oi_change_4h_pct, mark_price_change_4h_pct   from marts.oi_change
--   consensus_ls_ratio, consensus_z_30d, consensus_pct_30d                           from marts.skew_history
-- rules (comparisons inclusive: a value exactly at its threshold fires; a rule whose inputs are NULL does not
-- fire). "Large OI" = total_oi_pct_30d >= signal_large_oi_percentile (the symbol's top quintile by default);
-- "extreme long/short" = consensus_z_30d >= signal_skew_extreme_z / <= -signal_skew_extreme_z:
--   cascade_down_risk   large OI and extreme long: crowded longs with a lot of money in, primed for a cascade
--                       score (z / signal_skew_extreme_z) x (oi_pct / signal_large_oi_percentile)
--   squeeze_risk        large OI and extreme short: primed for a short squeeze
--                       score (-z / signal_skew_extreme_z) x (oi_pct / signal_large_oi_percentile)
--   short_capitulation  total_oi_change_4h_pct <= -signal_capitulation_oi_drop_pct and
--                       mark_price_change_4h_pct >= signal_capitulation_price_rise_pct: shorts closing into a rise
--                       score (-oi_change / signal_capitulation_oi_drop_pct)
--                             x (price_change / signal_capitulation_price_rise_pct)
--   buildup             total_oi_change_4h_pct >= signal_buildup_oi_rise_pct and
--                       abs(mark_price_change_4h_pct) <= signal_buildup_price_flat_pct: both sides loading up
--                       score oi_change / signal_buildup_oi_rise_pct
--   Every score is 1.0 exactly at its thresholds and grows with how far beyond them the numbers are, so the
--   four kinds rank on one scale; a score is NULL when its rule does not fire.
--   signals             the names of the firing rules (CASCADE_DOWN_RISK, SQUEEZE_RISK, SHORT_CAPITULATION,
--                       BUILDUP), in that order; signal_count how many
--   top_signal, top_score   the firing rule with the highest score (ties: the order above), NULL when none fires
WITH skew AS (
    SELECT ts, symbol, consensus_ls_ratio, consensus_z_30d, consensus_pct_30d
    FROM marts.skew_history
    WHERE ts IN (SELECT ts FROM _touched_intervals)
),

oi AS (
    SELECT ts, symbol, total_oi_usd, total_oi_pct_30d, total_oi_change_4h_pct, mark_price_change_4h_pct
    FROM marts.oi_change
    WHERE ts IN (SELECT ts FROM _touched_intervals)
),

inputs AS (
    SELECT
        k.ts,
        k.symbol,
        o.total_oi_usd,
        o.total_oi_pct_30d,
        k.consensus_ls_ratio,
        k.consensus_z_30d,
        k.consensus_pct_30d,
        o.total_oi_change_4h_pct,
        o.mark_price_change_4h_pct
    FROM skew AS k
    LEFT JOIN oi AS o ON k.ts = o.ts AND k.symbol = o.symbol
),

rules AS (
    SELECT
        i.*,
        coalesce(
            i.total_oi_pct_30d >= s.signal_large_oi_percentile AND i.consensus_z_30d >= s.signal_skew_extreme_z, false
        ) AS cascade_down_risk,
        coalesce(
            i.total_oi_pct_30d >= s.signal_large_oi_percentile AND i.consensus_z_30d <= -s.signal_skew_extreme_z, false
        ) AS squeeze_risk,
        coalesce(
            i.total_oi_change_4h_pct <= -s.signal_capitulation_oi_drop_pct
            AND i.mark_price_change_4h_pct >= s.signal_capitulation_price_rise_pct,
            false
        ) AS short_capitulation,
        coalesce(
            i.total_oi_change_4h_pct >= s.signal_buildup_oi_rise_pct
            AND abs(i.mark_price_change_4h_pct) <= s.signal_buildup_price_flat_pct,
            false
        ) AS buildup,
        s.*
    FROM inputs AS i
    CROSS JOIN _settings AS s
),

scored AS (
    SELECT
        *,
        CASE WHEN cascade_down_risk THEN
            (consensus_z_30d / signal_skew_extreme_z) * (total_oi_pct_30d / signal_large_oi_percentile)
        END AS cascade_down_risk_score,
        CASE WHEN squeeze_risk THEN
            (-consensus_z_30d / signal_skew_extreme_z) * (total_oi_pct_30d / signal_large_oi_percentile)
        END AS squeeze_risk_score,
        CASE WHEN short_capitulation THEN
            (-total_oi_change_4h_pct / signal_capitulation_oi_drop_pct)
            * (mark_price_change_4h_pct / signal_capitulation_price_rise_pct)
        END AS short_capitulation_score,
        CASE WHEN buildup THEN total_oi_change_4h_pct / signal_buildup_oi_rise_pct END AS buildup_score
    FROM rules
),

ranked AS (
    SELECT
        *,
        greatest(cascade_down_risk_score, squeeze_risk_score, short_capitulation_score, buildup_score) AS top_score
    FROM scored
)

SELECT
    ts,
    symbol,
    total_oi_usd,
    total_oi_pct_30d,
    consensus_ls_ratio,
    consensus_z_30d,
    consensus_pct_30d,
    total_oi_change_4h_pct,
    mark_price_change_4h_pct,
    cascade_down_risk,
    cascade_down_risk_score,
    squeeze_risk,
    squeeze_risk_score,
    short_capitulation,
    short_capitulation_score,
    buildup,
    buildup_score,
    list_filter(
        [
            CASE WHEN cascade_down_risk THEN 'CASCADE_DOWN_RISK' END,
            CASE WHEN squeeze_risk THEN 'SQUEEZE_RISK' END,
            CASE WHEN short_capitulation THEN 'SHORT_CAPITULATION' END,
            CASE WHEN buildup THEN 'BUILDUP' END
        ],
        lambda name: name IS NOT NULL
    ) AS signals,
    (cascade_down_risk::INTEGER + squeeze_risk::INTEGER + short_capitulation::INTEGER + buildup::INTEGER)
        AS signal_count,
    CASE top_score
        WHEN cascade_down_risk_score THEN 'CASCADE_DOWN_RISK'
        WHEN squeeze_risk_score THEN 'SQUEEZE_RISK'
        WHEN short_capitulation_score THEN 'SHORT_CAPITULATION'
        WHEN buildup_score THEN 'BUILDUP'
    END AS top_signal,
    top_score
FROM ranked
