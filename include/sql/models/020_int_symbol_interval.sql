-- model: intermediate.symbol_interval
-- layer: intermediate. The venues of one symbol side by side, with the two cross-venue long/short aggregates
--        every mart uses; marts.symbol_snapshot, skew_history, oi_change and positioning_signals read this.
-- grain: one row per (ts, symbol) with at least one venue row in stg.venue_interval.
-- keys: (ts, symbol). Incremental on ts: only the intervals in _touched_intervals are rebuilt.
-- definitions (the venue columns are generated from the venue registry, positioning.registry: one set per
-- registered venue, in registry order; each adapter's ``columns`` declares its ratios and extra values):
--   mark_price             median of the venues' mark prices (USD per coin)
--   <venue>_oi_usd         open interest in USD at that venue, NULL when the venue has none
--   total_oi_usd           sum of the venues' oi_usd (NULL when no venue has OI); venues_with_oi counts them
--   <ratio columns>        each venue's long/short ratios, named by its adapter (design.md lists them)
--   avg_ls_ratio           arithmetic mean of the available ratios the adapters mark ``seed_average`` (the seed
--                          product's figure: the top-trader position, global account and currency account ratios);
--                          ls_metrics_count says how many were averaged
--   consensus_ls_ratio     log-space consensus of every ratio column: exp(mean(ln r)) over the available
--                          ones with r > 0 (a geometric mean: 2.0 and 0.5 average to 1.0, as they should);
--                          consensus_ratio_count says how many; the ratio itself when only one is available
--   <value columns>        other per-venue values an adapter declares (a side split of OI, a 24 h OI change)
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
{%- for venue in venues %}
        max(oi_usd) FILTER (WHERE venue = '{{ venue }}') AS {{ venue }}_oi_usd,
{%- endfor %}
        count(oi_usd) AS venues_with_oi,
{%- for c in ratio_columns + value_columns %}
        max({{ c.source }}) FILTER (WHERE venue = '{{ c.venue }}') AS {{ c.name }},
{%- endfor %}
    FROM venues
    GROUP BY ts, symbol
),

sums AS (
    SELECT
        *,
        -- the same arithmetic, in the same order, as the seed product's snapshot (bit-identical results)
        {% for venue in venues %}coalesce({{ venue }}_oi_usd, 0){{ " + " if not loop.last }}{% endfor %} AS oi_sum,
        {% for c in seed_columns %}({{ c.name }} IS NOT NULL)::INTEGER{{ " + " if not loop.last }}{% endfor %}
            AS ls_metrics_count,
        {% for c in seed_columns %}coalesce({{ c.name }}, 0){{ " + " if not loop.last }}{% endfor %} AS ls_sum,
        list_filter(
            [{% for c in ratio_columns %}{{ c.name }}{{ ", " if not loop.last }}{% endfor %}]::DOUBLE[],
            lambda r: r > 0
        ) AS usable_ratios
    FROM per_symbol
)

SELECT
    ts,
    symbol,
    mark_price,
    CASE WHEN venues_with_oi > 0 THEN oi_sum END AS total_oi_usd,
{%- for venue in venues %}
    {{ venue }}_oi_usd,
{%- endfor %}
    venues_with_oi::INTEGER AS venues_with_oi,
{%- for c in ratio_columns %}
    {{ c.name }},
{%- endfor %}
    CASE WHEN ls_metrics_count > 0 THEN ls_sum / ls_metrics_count END AS avg_ls_ratio,
    ls_metrics_count,
    CASE
        WHEN len(usable_ratios) = 1 THEN usable_ratios[1]
        WHEN len(usable_ratios) > 1 THEN exp(list_avg(list_transform(usable_ratios, lambda r: ln(r))))
    END AS consensus_ls_ratio,
    len(usable_ratios)::INTEGER AS consensus_ratio_count{{ "," if value_columns }}
{%- for c in value_columns %}
    {{ c.name }}{{ "," if not loop.last }}
{%- endfor %}
FROM sums
