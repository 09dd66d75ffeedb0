-- Migration 001: the warehouse's schemas and its core, ops and quality tables.
-- Marts are created by their models (include/sql/models), not here.

CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS ops;
CREATE SCHEMA IF NOT EXISTS quality;
CREATE SCHEMA IF NOT EXISTS marts;

-- core.dim_instrument
-- grain: one row per (venue, instrument): a venue's listed USDT perpetual (Strike: USD market).
-- keys: (venue, instrument); symbol is the base asset (BTC). contract_value = base coins per contract
-- (OKX ctVal; NULL where a contract is one coin). Refreshed from each run's listing responses.
CREATE TABLE IF NOT EXISTS core.dim_instrument (
    venue          VARCHAR NOT NULL,
    instrument     VARCHAR NOT NULL,
    symbol         VARCHAR NOT NULL,
    contract_value DOUBLE,
    quote          VARCHAR,
    status         VARCHAR,
    tradable       BOOLEAN,
    first_seen     TIMESTAMP NOT NULL,
    last_seen      TIMESTAMP NOT NULL,
    PRIMARY KEY (venue, instrument)
);

-- core.fact_positioning
-- grain: one row per (ts, venue, symbol, metric, period).
-- ts: the run's data-interval end (UTC); source_ts: the venue's own timestamp of the value (for ratios the
-- latest bucket at or before ts). period: the venue's bucket spelling for ratios and history, '' otherwise.
-- metric / unit:
--   oi_contracts  contracts   venue-reported open interest in contracts (OKX)
--   oi_coins      coin        open interest in base coins (reported, or contracts x ctVal)
--   oi_usd        USD         usd_source = 'venue' (reported) or 'mark' (oi_coins x mark_price, same venue)
--                             Strike: long_share/short_share = long OI / total and short OI / total
--   mark_price    USD         USD per base coin
--   funding_rate  fraction    current funding rate per funding interval (0.0001 = 0.01 %)
--   ls_*          ratio       long/short ratios (see positioning.rows.RATIO_METRICS); long_share/short_share
--                             are the venue's long and short fractions where it reports them
--   oi_usd_change_24h_pct  percent  OKX coin-level OI (USD) change over 24 h
CREATE TABLE IF NOT EXISTS core.fact_positioning (
    ts          TIMESTAMP NOT NULL,
    venue       VARCHAR NOT NULL,
    symbol      VARCHAR NOT NULL,
    metric      VARCHAR NOT NULL,
    period      VARCHAR NOT NULL,
    instrument  VARCHAR,
    value       DOUBLE,
    unit        VARCHAR NOT NULL,
    usd_source  VARCHAR,
    long_share  DOUBLE,
    short_share DOUBLE,
    source_ts   TIMESTAMP,
    run_id      VARCHAR NOT NULL,
    loaded_at   TIMESTAMP NOT NULL
);

-- ops.extract_runs
-- grain: one row per (run_id, venue, attempt): how one extract task went.
CREATE TABLE IF NOT EXISTS ops.extract_runs (
    ts              TIMESTAMP NOT NULL,
    run_id          VARCHAR NOT NULL,
    venue           VARCHAR NOT NULL,
    attempt         INTEGER NOT NULL,
    status          VARCHAR NOT NULL,  -- ok | partial | failed
    error           VARCHAR,
    requests_sent   INTEGER,
    failed_requests INTEGER,
    symbols_mapped  INTEGER,
    symbols_skipped INTEGER,
    started_at      TIMESTAMP,
    finished_at     TIMESTAMP,
    manifest_path   VARCHAR
);

-- ops.extract_failures
-- grain: one row per (run_id, venue, attempt, endpoint, symbol) that did not succeed after retries:
-- which venue and endpoint failed and why (HTTP status, error text, the raw files holding the responses).
CREATE TABLE IF NOT EXISTS ops.extract_failures (
    ts         TIMESTAMP NOT NULL,
    run_id     VARCHAR NOT NULL,
    venue      VARCHAR NOT NULL,
    attempt    INTEGER NOT NULL,
    endpoint   VARCHAR NOT NULL,
    symbol     VARCHAR,
    status     INTEGER,
    attempts   INTEGER,
    retryable  BOOLEAN,
    error      VARCHAR,
    raw_paths  VARCHAR[]
);

-- ops.parse_errors
-- grain: one row per raw file of a run that was received but could not be parsed (missing field...).
CREATE TABLE IF NOT EXISTS ops.parse_errors (
    ts       TIMESTAMP NOT NULL,
    run_id   VARCHAR NOT NULL,
    venue    VARCHAR NOT NULL,
    endpoint VARCHAR NOT NULL,
    raw_path VARCHAR NOT NULL,
    error    VARCHAR NOT NULL
);

-- ops.skipped_symbols
-- grain: one row per (ts, venue, symbol) requested but not listed (or not trading) on that venue.
CREATE TABLE IF NOT EXISTS ops.skipped_symbols (
    ts     TIMESTAMP NOT NULL,
    venue  VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    reason VARCHAR NOT NULL
);

-- ops.alerts (stable interface): one row per alert attempt.
CREATE TABLE IF NOT EXISTS ops.alerts (
    ts        TIMESTAMP NOT NULL,
    symbol    VARCHAR,   -- or a scope such as 'venue:binance'
    kind      VARCHAR NOT NULL,
    value     DOUBLE,
    threshold DOUBLE,
    delivered BOOLEAN NOT NULL,
    error     VARCHAR,
    sent_at   TIMESTAMP
);
