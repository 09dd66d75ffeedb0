-- Migration 002: the quality gate's records (write -> audit -> publish, positioning.quality).
-- Every load validates its interval with great-expectations before anything reaches core.* or marts.*.
-- Checks, thresholds and levels are documented in positioning.quality (QualityConfig, CHECKS).

-- quality.validation_runs
-- grain: one row per (ts, run_id, suite): one expectation suite run on one interval by one load.
-- keys: validation_id ('<run_id>|<ts>|<suite>'), unique. Re-loading the same run replaces its rows; other runs'
-- rows are kept (the history of the gate). suites: positioning.fact_rows (row checks on the staged facts),
-- positioning.raw_rows (duplicate rows inside one venue response), positioning.venue_coverage (completeness, drift).
-- blocked = this suite stopped publication of the interval (a batch-level failure); data_docs_path = the
-- great-expectations Data Docs page of this run under $POSITIONING_DATA_DIR/exports/quality/.
CREATE TABLE IF NOT EXISTS quality.validation_runs (
    validation_id         VARCHAR NOT NULL,
    ts                    TIMESTAMP NOT NULL,   -- the interval end, as core.fact_positioning.ts
    interval_start        TIMESTAMP,
    run_id                VARCHAR NOT NULL,
    suite                 VARCHAR NOT NULL,
    success               BOOLEAN NOT NULL,     -- every expectation of the suite passed
    blocked               BOOLEAN NOT NULL,
    evaluated_expectations INTEGER NOT NULL,
    failed_expectations   INTEGER NOT NULL,
    rows_validated        INTEGER NOT NULL,
    rows_quarantined      INTEGER NOT NULL,     -- fact rows held back by this suite (distinct rows)
    started_at            TIMESTAMP NOT NULL,
    duration_ms           DOUBLE NOT NULL,
    ge_version            VARCHAR,
    data_docs_path        VARCHAR,
    summary               VARCHAR              -- human-readable: what failed
);

-- quality.expectation_results
-- grain: one row per (validation_id, expectation): the outcome of one expectation.
-- keys: (validation_id, expectation). level: 'quarantine' (row-level: failing rows are quarantined, the rest
-- publish), 'block' (batch-level: publication of the interval stops), 'warning' (recorded only).
-- observed_value: JSON (an aggregate such as a column max, or up to 20 unexpected values).
CREATE TABLE IF NOT EXISTS quality.expectation_results (
    validation_id      VARCHAR NOT NULL,
    ts                 TIMESTAMP NOT NULL,
    run_id             VARCHAR NOT NULL,
    suite              VARCHAR NOT NULL,
    expectation        VARCHAR NOT NULL,       -- the check's name, e.g. ratio_in_open_range
    expectation_type   VARCHAR NOT NULL,       -- the great-expectations type, e.g. expect_column_values_to_be_between
    column_name        VARCHAR,                -- the tested column of the audit frame (or a column list)
    level              VARCHAR NOT NULL,
    success            BOOLEAN NOT NULL,
    observed_value     VARCHAR,
    element_count      BIGINT,
    unexpected_count   BIGINT,
    unexpected_percent DOUBLE,
    exception          VARCHAR,                -- set when the expectation itself could not be evaluated
    description        VARCHAR
);

-- quality.quarantine
-- grain: one row per (ts, venue, symbol, metric, period, expectation): a staged fact row that broke a row-level
-- expectation and was therefore not published (a row breaking two expectations appears twice).
-- keys: (ts, venue, symbol, metric, period, expectation). The fact columns are those of core.fact_positioning;
-- tested_column/observed say what was measured (e.g. usd_over_coins_x_mark = 1.8), reason says it in words.
-- Re-running an interval replaces its quarantine together with its core rows.
CREATE TABLE IF NOT EXISTS quality.quarantine (
    ts             TIMESTAMP NOT NULL,
    run_id         VARCHAR NOT NULL,
    validation_id  VARCHAR NOT NULL,
    venue          VARCHAR,
    symbol         VARCHAR,
    metric         VARCHAR,
    period         VARCHAR,
    instrument     VARCHAR,
    value          DOUBLE,
    unit           VARCHAR,
    usd_source     VARCHAR,
    long_share     DOUBLE,
    short_share    DOUBLE,
    source_ts      TIMESTAMP,
    expectation    VARCHAR NOT NULL,
    tested_column  VARCHAR NOT NULL,
    observed       DOUBLE,
    reason         VARCHAR NOT NULL,
    quarantined_at TIMESTAMP NOT NULL
);
