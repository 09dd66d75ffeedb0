-- Migration 004: history and backfill (issue #7).

-- ops.interval_unavailable
-- grain: one row per (ts, venue, metric) a run could not get from the venue for that interval, and why:
--   kind 'snapshot_only'  the venue publishes the metric only as a current value (no history endpoint), and the
--                         interval is in the past (Bitget, Strike, current OI / mark / funding everywhere);
--   kind 'retention'      the venue has a history endpoint but no longer keeps this interval (Binance 30 days,
--                         OKX rubik 2 / 30 / 180 days at 5m / 1H / 1D).
-- Replaced per ts by every load of the interval. marts.coverage reads it to tell "not available from the venue"
-- from "missing" (a fact that should be there and is not). A (venue, metric) listed here for a ts keeps the facts
-- an earlier run stored for it (a live run's current values survive a later backfill of the same hour).
CREATE TABLE IF NOT EXISTS ops.interval_unavailable (
    ts      TIMESTAMP NOT NULL,
    venue   VARCHAR NOT NULL,
    metric  VARCHAR NOT NULL,
    kind    VARCHAR NOT NULL,
    reason  VARCHAR NOT NULL,
    run_id  VARCHAR NOT NULL
);

-- ops.bulk_fill_progress
-- grain: one row per (run_id, ts) the bulk history fill (`positioning backfill`) has published: its checkpoint.
-- A restarted fill skips the intervals listed here for its run id (bulk__<start>__<end>__<period>).
CREATE TABLE IF NOT EXISTS ops.bulk_fill_progress (
    run_id       VARCHAR NOT NULL,
    ts           TIMESTAMP NOT NULL,
    facts        INTEGER NOT NULL,
    published_at TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, ts)
);

-- marts.coverage_intervals and marts.coverage (views, always current)
-- Which intervals are present, missing or not available from the venue, so gaps are visible instead of silent.
-- Views rather than incremental models: gaps appear exactly when runs fail, and a failed run never reaches the
-- marts task, so a view over core and ops is the one place that cannot miss them.
-- Expected intervals: every hour (the DAG's schedule) from the first to the last interval in the warehouse, for
-- every (venue, metric) from the first interval it appeared in (as a fact or as "not available").
-- status: 'present'       at least one fact row (symbols = how many symbols have one);
--         'not_available' the venue cannot give it for that interval (ops.interval_unavailable: kind
--                         'snapshot_only' = no history endpoint and the interval is past, 'retention' = beyond
--                         what the venue keeps);
--         'missing'       neither: no run loaded it (failed, blocked by the quality gate, never run). Backfill it.
-- marts.coverage_intervals grain: one row per (ts, venue, metric).
CREATE OR REPLACE VIEW marts.coverage_intervals AS
WITH present AS (
    SELECT ts, venue, metric, count(DISTINCT symbol) AS symbols
    FROM core.fact_positioning
    GROUP BY ts, venue, metric
),
unavailable AS (
    SELECT ts, venue, metric, min(kind) AS kind, min(reason) AS reason
    FROM ops.interval_unavailable
    GROUP BY ts, venue, metric
),
seen AS (
    SELECT ts, venue, metric FROM present
    UNION ALL
    SELECT ts, venue, metric FROM unavailable
),
pairs AS (
    SELECT venue, metric, min(ts) AS first_ts FROM seen GROUP BY venue, metric
),
hours AS (
    SELECT unnest(generate_series(min(ts), max(ts), INTERVAL 1 HOUR)) AS ts FROM seen
)
SELECT
    h.ts,
    p.venue,
    p.metric,
    CASE
        WHEN f.ts IS NOT NULL THEN 'present'
        WHEN u.ts IS NOT NULL THEN 'not_available'
        ELSE 'missing'
    END AS status,
    coalesce(f.symbols, 0) AS symbols,
    CASE WHEN f.ts IS NULL THEN u.kind END AS unavailable_kind,
    CASE WHEN f.ts IS NULL THEN u.reason END AS unavailable_reason
FROM hours AS h
INNER JOIN pairs AS p ON h.ts >= p.first_ts
LEFT JOIN present AS f ON f.ts = h.ts AND f.venue = p.venue AND f.metric = p.metric
LEFT JOIN unavailable AS u ON u.ts = h.ts AND u.venue = p.venue AND u.metric = p.metric;

-- marts.coverage grain: one row per (day, venue, metric); day = the UTC day of the interval ends (ts).
-- intervals_* count the expected hourly intervals of that day by status; missing_intervals and
-- not_available_intervals list their ends as HH:MM; min/max_symbols over the present intervals.
CREATE OR REPLACE VIEW marts.coverage AS
SELECT
    date_trunc('day', ts) AS day,
    venue,
    metric,
    count(*) AS intervals_expected,
    count(*) FILTER (WHERE status = 'present') AS intervals_present,
    count(*) FILTER (WHERE status = 'not_available') AS intervals_not_available,
    count(*) FILTER (WHERE status = 'missing') AS intervals_missing,
    min(symbols) FILTER (WHERE status = 'present') AS min_symbols,
    max(symbols) FILTER (WHERE status = 'present') AS max_symbols,
    list(strftime(ts, '%H:%M') ORDER BY ts) FILTER (WHERE status = 'missing') AS missing_intervals,
    list(strftime(ts, '%H:%M') ORDER BY ts) FILTER (WHERE status = 'not_available') AS not_available_intervals,
    min(unavailable_reason) AS not_available_reason
FROM marts.coverage_intervals
GROUP BY ALL;
