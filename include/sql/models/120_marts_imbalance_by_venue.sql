-- model: marts.imbalance_by_venue
-- layer: mart. How long each venue's traders are, and how much the venues disagree. A venue that splits its
--        open interest into long and short sides has long OI / short OI as its ratio.
-- grain: one row per (ts, symbol, venue) of stg.venue_interval with a ratio or OI.
-- keys: (ts, symbol, venue). Incremental on ts (no lookback: nothing here looks at other intervals).
-- definitions:
--   ratio_basis            what the venue's ratio counts (its adapter's ratio_basis): 'top_traders_and_accounts',
--                          'accounts' or 'open_interest'
--   ls_ratio               the venue's long/short ratio: exp(mean(ln r)) of its available ratios with r > 0 (the
--                          ratio columns its adapter declares), the ratio itself when there is one; ratios_used
--                          counts them
--   long_share             ls_ratio / (1 + ls_ratio): the long fraction the ratio implies
--   imbalance_pct          (ls_ratio - 1) / (ls_ratio + 1) x 100; for a side split = (long - short) / total x 100
--   oi_usd                 the venue's open interest in USD; long_oi_usd / short_oi_usd its sides (where split)
--   venues_with_ratio      venues of this (ts, symbol) with an ls_ratio
--   mean_imbalance_pct     mean of those venues' imbalance_pct (each venue weighs the same)
--   oi_weighted_imbalance_pct  the same weighted by oi_usd (venues with both a ratio and OI)
--   imbalance_deviation_pct    imbalance_pct - mean_imbalance_pct: how far this venue sits from the others
--   imbalance_dispersion_pct   population standard deviation of the venues' imbalance_pct (percentage points):
--                              how much the venues disagree; NULL with fewer than 2 venues
--   imbalance_range_pct    max - min of the venues' imbalance_pct; NULL with fewer than 2 venues
WITH venues AS (
    SELECT
        ts,
        symbol,
        venue,
        oi_usd,
        oi_long_usd,
        oi_short_usd,
        CASE venue
{%- for venue in venues %}
            WHEN '{{ venue }}' THEN '{{ ratio_basis[venue] }}'
{%- endfor %}
        END AS ratio_basis,
        list_filter(
            CASE venue
{%- for venue in venues %}
                WHEN '{{ venue }}' THEN [{{ venue_ratios[venue] | join(", ") }}]::DOUBLE[]
{%- endfor %}
            END,
            lambda r: r > 0
        ) AS usable_ratios
    FROM stg.venue_interval
    WHERE ts IN (SELECT ts FROM _touched_intervals)
),

rated AS (
    SELECT
        *,
        CASE
            WHEN len(usable_ratios) = 1 THEN usable_ratios[1]
            WHEN len(usable_ratios) > 1 THEN exp(list_avg(list_transform(usable_ratios, lambda r: ln(r))))
        END AS ls_ratio
    FROM venues
),

with_imbalance AS (
    SELECT
        *,
        (ls_ratio - 1) / (ls_ratio + 1) * 100 AS imbalance_pct
    FROM rated
    WHERE ls_ratio IS NOT NULL OR oi_usd IS NOT NULL
),

cross_venue AS (
    SELECT
        ts,
        symbol,
        count(imbalance_pct) AS venues_with_ratio,
        avg(imbalance_pct) AS mean_imbalance_pct,
        sum(imbalance_pct * oi_usd) FILTER (WHERE imbalance_pct IS NOT NULL AND oi_usd IS NOT NULL)
            / sum(oi_usd) FILTER (WHERE imbalance_pct IS NOT NULL AND oi_usd IS NOT NULL) AS oi_weighted_imbalance_pct,
        stddev_pop(imbalance_pct) AS dispersion,
        max(imbalance_pct) - min(imbalance_pct) AS spread
    FROM with_imbalance
    GROUP BY ts, symbol
)

SELECT
    v.ts,
    v.symbol,
    v.venue,
    v.ratio_basis,
    v.ls_ratio,
    len(v.usable_ratios)::INTEGER AS ratios_used,
    v.ls_ratio / (1 + v.ls_ratio) AS long_share,
    v.imbalance_pct,
    v.oi_usd,
    v.oi_long_usd AS long_oi_usd,
    v.oi_short_usd AS short_oi_usd,
    c.venues_with_ratio::INTEGER AS venues_with_ratio,
    c.mean_imbalance_pct,
    c.oi_weighted_imbalance_pct,
    v.imbalance_pct - c.mean_imbalance_pct AS imbalance_deviation_pct,
    CASE WHEN c.venues_with_ratio >= 2 THEN c.dispersion END AS imbalance_dispersion_pct,
    CASE WHEN c.venues_with_ratio >= 2 THEN c.spread END AS imbalance_range_pct
FROM with_imbalance AS v
INNER JOIN cross_venue AS c ON v.ts = c.ts AND v.symbol = c.symbol
