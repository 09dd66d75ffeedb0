-- Migration 003: alert state and delivery records (positioning.alerts).
-- An alert fires when its condition becomes true for an interval (a crossing), not on every run while it holds.
-- Which conditions held at which interval is kept here, so re-runs and backfills never send twice.

-- ops.alert_evaluations
-- grain: one row per evaluated interval (ts). keys: ts (kept unique by delete + insert). Re-evaluating an interval (a re-run) replaces its row.
-- The interval an evaluation compares with is the latest evaluated ts before it. backfill = the interval was older
-- than the latest evaluated one (or the run was a backfill) when it was evaluated: its events were not sent
-- unless alertOnBackfill was set.
CREATE TABLE IF NOT EXISTS ops.alert_evaluations (
    ts           TIMESTAMP NOT NULL,
    run_id       VARCHAR NOT NULL,
    previous_ts  TIMESTAMP,              -- the interval compared with (NULL for the first evaluation)
    backfill     BOOLEAN NOT NULL,
    rules        VARCHAR[] NOT NULL,     -- the rules that were on, e.g. ls_threshold:3, skew:EXTREME_LONG
    events       INTEGER NOT NULL,       -- how many alerts fired (crossings) at this interval
    sent         INTEGER NOT NULL,       -- how many of them were delivered by this evaluation
    evaluated_at TIMESTAMP NOT NULL
);

-- ops.alert_state
-- grain: one row per (ts, rule, scope) whose condition HOLDS at interval ts (absent = does not hold).
-- keys: (ts, rule, scope), unique (an interval's rows are replaced as a whole). rule: e.g. 'ls_threshold:3' (avg L/S on the far side of 3 from 1.0),
-- 'long_threshold:3', 'short_threshold:0.5', 'skew:EXTREME_LONG', 'signal:SQUEEZE_RISK', 'venue_failing:3',
-- 'quality_blocked'. scope: the symbol (BTC) or 'venue:<venue>' / 'pipeline'.
-- since_ts: the first interval of the current unbroken run of the condition; value: the number that made it
-- hold (the ratio, the signal score, the count of failed runs). carried = the interval had no data for the scope
-- (symbol missing, quality gate blocked): the previous state is carried forward so that a gap never re-alerts.
CREATE TABLE IF NOT EXISTS ops.alert_state (
    ts       TIMESTAMP NOT NULL,
    rule     VARCHAR NOT NULL,
    scope    VARCHAR NOT NULL,
    since_ts TIMESTAMP NOT NULL,
    value    DOUBLE,
    carried  BOOLEAN NOT NULL
);

-- ops.alerts (created by 001; stable interface: one row per alert attempt). Added here: which rule and run made
-- the attempt, the line sent, and Telegram's answer. An attempt = one alert in one delivery try of one task run
-- (HTTP retries inside that try are counted in http_attempts). An alert already delivered for (ts, rule, symbol)
-- is never attempted again.
ALTER TABLE ops.alerts ADD COLUMN IF NOT EXISTS rule VARCHAR;
ALTER TABLE ops.alerts ADD COLUMN IF NOT EXISTS run_id VARCHAR;
ALTER TABLE ops.alerts ADD COLUMN IF NOT EXISTS message VARCHAR;
ALTER TABLE ops.alerts ADD COLUMN IF NOT EXISTS attempted_at TIMESTAMP;
ALTER TABLE ops.alerts ADD COLUMN IF NOT EXISTS telegram_message_id BIGINT;
ALTER TABLE ops.alerts ADD COLUMN IF NOT EXISTS http_attempts INTEGER;
