"""Storage: what the alert task reads from and writes to the warehouse (DuckDB), and this run's manifests.

* ``ops.alert_evaluations``: the evaluated intervals (one row each: previous interval, backfill, rules, counts);
* ``ops.alert_state``: per evaluated interval, the (rule, scope) pairs whose condition holds;
* ``ops.alerts``: every delivery attempt of an alert (delivered or not, and why);
* read only: ``marts.symbol_snapshot``, ``marts.positioning_signals``, ``ops.extract_runs``,
  ``quality.validation_runs`` and the run's extract manifests.

Every function takes an open connection (the caller holds ``positioning.warehouse.writer``); only
:func:`save_evaluation` and :func:`record_attempts` write, each in one transaction.

No name in this module may be a table's name (``positioning_signals``, ``symbol_snapshot``...): when a table does
not exist yet, DuckDB's replacement scan looks the name up among the calling module's Python objects and fails
with InvalidInputException instead of the CatalogException :func:`rows` expects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from positioning.alerts.rules import AlertEvent, StateRow

if TYPE_CHECKING:
    from positioning.alerts.deliver import Outcome


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    """Rows as dicts; a table that does not exist yet (first run failed before creating it) has no rows."""
    try:
        cursor = con.execute(sql, params)
    except duckdb.CatalogException:
        return []
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# ------------------------------------------------------------------------------------------------ alert state


def previous_interval(con: duckdb.DuckDBPyConnection, ts: datetime) -> datetime | None:
    row = con.execute("SELECT max(ts) FROM ops.alert_evaluations WHERE ts < ?", [ts]).fetchone()
    return row[0] if row else None


def latest_interval(con: duckdb.DuckDBPyConnection) -> datetime | None:
    row = con.execute("SELECT max(ts) FROM ops.alert_evaluations").fetchone()
    return row[0] if row else None


def load_state(con: duckdb.DuckDBPyConnection, ts: datetime | None) -> dict[tuple[str, str], StateRow]:
    if ts is None:
        return {}
    found = con.execute(
        "SELECT rule, scope, since_ts, value, carried FROM ops.alert_state WHERE ts = ?", [ts]
    ).fetchall()
    return {(r[0], r[1]): StateRow(*r) for r in found}


def save_evaluation(
    con: duckdb.DuckDBPyConnection,
    ts: datetime,
    run_id: str,
    previous_ts: datetime | None,
    backfill: bool,
    rule_names: Sequence[str],
    state: Sequence[StateRow],
    events: int,
) -> None:
    """Replace the state and the evaluation row of ``ts`` (a re-run overwrites them; ``sent`` starts at 0)."""
    con.execute("BEGIN TRANSACTION")
    con.execute("DELETE FROM ops.alert_state WHERE ts = ?", [ts])
    if state:
        con.executemany(
            "INSERT INTO ops.alert_state VALUES (?, ?, ?, ?, ?, ?)",
            [[ts, s.rule, s.scope, s.since_ts, s.value, s.carried] for s in state],
        )
    con.execute("DELETE FROM ops.alert_evaluations WHERE ts = ?", [ts])
    con.execute(
        "INSERT INTO ops.alert_evaluations VALUES (?, ?, ?, ?, ?, ?, 0, now()::TIMESTAMP)",
        [ts, run_id, previous_ts, backfill, list(rule_names), events],
    )
    con.execute("COMMIT")


# ----------------------------------------------------------------------------------------------- ops.alerts


def delivered_keys(con: duckdb.DuckDBPyConnection, ts: datetime) -> set[tuple[str, str, str]]:
    """(rule, scope, kind) of the alerts of ``ts`` an earlier run delivered (never sent again)."""
    return {
        (r[0], r[1], r[2])
        for r in con.execute("SELECT rule, symbol, kind FROM ops.alerts WHERE ts = ? AND delivered", [ts]).fetchall()
    }


def record_attempts(
    con: duckdb.DuckDBPyConnection,
    ts: datetime,
    run_id: str,
    events: Sequence[AlertEvent],
    outcomes: Sequence[Outcome],
    lines: Sequence[str],
    attempted_at: datetime,
) -> int:
    """One ``ops.alerts`` row per attempted alert (``lines``: its rendered HTML line); counts the delivered ones
    into ``ops.alert_evaluations.sent``. Returns how many were delivered."""
    con.execute("BEGIN TRANSACTION")
    con.executemany(
        "INSERT INTO ops.alerts (ts, symbol, kind, value, threshold, delivered, error, sent_at, rule, run_id, "
        "message, attempted_at, telegram_message_id, http_attempts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [
                ts,
                event.scope,
                event.kind,
                event.value,
                event.rule.threshold,
                outcome.delivered,
                outcome.error,
                outcome.sent_at,
                event.rule.name,
                run_id,
                line,
                attempted_at,
                outcome.message_id,
                outcome.http_attempts,
            ]
            for event, outcome, line in zip(events, outcomes, lines, strict=True)
        ],
    )
    sent = sum(outcome.delivered for outcome in outcomes)
    con.execute("UPDATE ops.alert_evaluations SET sent = sent + ? WHERE ts = ?", [sent, ts])
    con.execute("COMMIT")
    return sent


# ------------------------------------------------------------------------------------------------ rule inputs


def read_snapshot(con: duckdb.DuckDBPyConnection, ts: datetime | None) -> list[dict[str, Any]]:
    """The ``marts.symbol_snapshot`` columns the symbol rules read, by symbol (none for ``ts=None``)."""
    return rows(
        con, "SELECT symbol, avg_ls_ratio, skew_label FROM marts.symbol_snapshot WHERE ts = ? ORDER BY symbol", [ts]
    )


def read_signals(con: duckdb.DuckDBPyConnection, ts: datetime) -> list[dict[str, Any]]:
    return rows(con, "SELECT * FROM marts.positioning_signals WHERE ts = ? ORDER BY symbol", [ts])


def blocked_validations(con: duckdb.DuckDBPyConnection, ts: datetime, run_id: str) -> list[dict[str, Any]]:
    """The run's ``quality.validation_runs`` that blocked publication (``suite``, ``summary``)."""
    return rows(
        con,
        "SELECT suite, summary FROM quality.validation_runs WHERE ts = ? AND run_id = ? AND blocked",
        [ts, run_id],
    )


def venue_runs(
    con: duckdb.DuckDBPyConnection, ts: datetime, lookback: int, current: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Per venue, its latest try per interval up to ``ts``, newest first (at most ``lookback``); ``current`` (this
    run's manifests) wins for ``ts`` itself, since a blocked load writes no ops rows."""
    found = rows(
        con,
        """
        SELECT ts, venue, status, error FROM (
            SELECT ts, venue, status, error,
                   row_number() OVER (PARTITION BY ts, venue ORDER BY finished_at DESC NULLS LAST, attempt DESC) AS n
            FROM ops.extract_runs WHERE ts <= ?
        ) WHERE n = 1
        QUALIFY row_number() OVER (PARTITION BY venue ORDER BY ts DESC) <= ?
        ORDER BY venue, ts DESC
        """,
        [ts, lookback],
    )
    runs: dict[str, list[dict[str, Any]]] = {}
    for row in found:
        runs.setdefault(row["venue"], []).append(row)
    for venue, run in current.items():
        history = [r for r in runs.get(venue, []) if r["ts"] != ts]
        runs[venue] = [{"ts": ts, "venue": venue, "status": run["status"], "error": run.get("fatal")}, *history]
    return runs


# -------------------------------------------------------------------------------------------------- manifests


def manifest_dir(data: Path, ts: datetime, run_id: str) -> Path:
    """Where the run's extract manifests for interval ``ts`` (naive UTC) live: the one place that knows."""
    from positioning.ingest.manifests import ManifestStore

    return ManifestStore(data).run_dir(ts.replace(tzinfo=UTC), run_id)


def current_manifests(data: Path, ts: datetime, run_id: str) -> dict[str, dict[str, Any]]:
    """This run's latest extract try per venue, from its manifests (empty when there are none). Read directly,
    not through positioning.warehouse.load, whose imports (great-expectations) would cost the alert task seconds;
    an unreadable manifest is skipped."""
    latest: dict[str, dict[str, Any]] = {}
    for path in sorted(manifest_dir(data, ts, run_id).glob("venue=*__try=*.json")):
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            venue, attempt = manifest["venue"], manifest["attempt"]
        except (OSError, ValueError, KeyError):
            continue
        if venue not in latest or attempt > latest[venue]["attempt"]:
            latest[venue] = manifest
    return latest
