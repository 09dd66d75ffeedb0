-- Migration 006: years of history from the Binance data archive (issue #17).

-- core.fact_positioning.source: where a value came from.
--   'rest'    the venue's API (a live run, a past-interval run or the bulk fill's history endpoints);
--   'archive' Binance's public data archive (data.binance.vision daily `metrics` files, 5-minute rows).
-- The fact's period is the source's native bucket (the archive's is '5m' whatever the fill's period). NULL on rows
-- loaded before this migration (all from the API).
ALTER TABLE core.fact_positioning ADD COLUMN IF NOT EXISTS source VARCHAR;

-- ops.source_disagreements: where the archive and the REST history both have a bucket (the day of overlap a fill
-- asks the archive for) and their values differ by more than the quality config's
-- archive_vs_rest_tolerance. The REST value is the one published; the archive's is kept here, never loaded.
-- grain: one row per (run_id, venue, key, metric, period, bucket_ts).
CREATE TABLE IF NOT EXISTS ops.source_disagreements (
    run_id         VARCHAR NOT NULL,
    venue          VARCHAR NOT NULL,
    key            VARCHAR NOT NULL,   -- the venue's instrument (BTCUSDT)
    metric         VARCHAR NOT NULL,
    period         VARCHAR NOT NULL,
    bucket_ts      TIMESTAMP NOT NULL, -- the bucket's start (UTC)
    archive_value  DOUBLE,
    rest_value     DOUBLE,
    relative_difference DOUBLE,        -- |archive / rest - 1|
    checked_at     TIMESTAMP NOT NULL
);

-- marts.coverage_intervals and marts.coverage, as in migration 004, plus the sources that filled each interval.
CREATE OR REPLACE VIEW marts.coverage_intervals AS
WITH present AS (
    SELECT ts, venue, metric, count(DISTINCT symbol) AS symbols,
           list(DISTINCT coalesce(source, 'rest') ORDER BY coalesce(source, 'rest')) AS sources
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
    CASE WHEN f.ts IS NULL THEN u.reason END AS unavailable_reason,
    f.sources
FROM hours AS h
INNER JOIN pairs AS p ON h.ts >= p.first_ts
LEFT JOIN present AS f ON f.ts = h.ts AND f.venue = p.venue AND f.metric = p.metric
LEFT JOIN unavailable AS u ON u.ts = h.ts AND u.venue = p.venue AND u.metric = p.metric;

-- marts.coverage: as in migration 004, plus intervals_from_rest / intervals_from_archive (present intervals with
-- at least one fact from that source).
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
    min(unavailable_reason) AS not_available_reason,
    count(*) FILTER (WHERE list_contains(sources, 'rest')) AS intervals_from_rest,
    count(*) FILTER (WHERE list_contains(sources, 'archive')) AS intervals_from_archive
FROM marts.coverage_intervals
GROUP BY ALL;
