"""The alert task (:func:`run_alerts`): read the inputs, evaluate the rules, record the state, deliver, record."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from positioning.alerts.deliver import deliver
from positioning.alerts.render import render_line
from positioning.alerts.rules import (
    evaluate,
    gate_outcome,
    pipeline_conditions,
    rules_for,
    symbol_conditions,
    venue_conditions,
)

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("positioning")

VENUE_STREAK_LOOKBACK = 24


def naive_utc(moment: datetime) -> datetime:
    """``moment`` as the naive UTC timestamp the warehouse stores."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def run_alerts(
    interval_end: datetime,
    run_id: str,
    params: Mapping[str, Any],
    load_summary: Mapping[str, Any] | None,
    *,
    run_type: str | None = None,
    data: Path | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Any]:
    """Evaluate the rules at ``interval_end``, record the state, send what crossed, record every attempt.

    ``load_summary``: the load task's XCom (``None`` when it failed: then the quality tables say whether the gate
    blocked it). Returns a small JSON summary for XCom (no secrets: the token is never in it).
    """
    # Imported here, not at module level: importing positioning.alerts stays free of DuckDB and the venue registry.
    from positioning import warehouse
    from positioning.alerts import store
    from positioning.config import data_dir
    from positioning.params import RunConfig

    data = data or data_dir()
    config = RunConfig.from_params(dict(params))
    rules = rules_for(config)
    ts = naive_utc(interval_end)
    venue_rule = next((rule for rule in rules if rule.family == "venue_failing"), None)

    with warehouse.writer(data / "warehouse.duckdb", log=log.info) as con:
        previous_ts = store.previous_interval(con, ts)
        latest = store.latest_interval(con)
        backfill = run_type == "backfill" or (latest is not None and latest > ts)
        previous = store.load_state(con, previous_ts)
        snapshot = store.read_snapshot(con, ts)
        before = store.read_snapshot(con, previous_ts)
        signals = store.read_signals(con, ts)
        runs = {}
        if venue_rule is not None:  # enough history to count a streak of N (and say how long it was, up to a day)
            lookback = max(int(venue_rule.threshold or 0), VENUE_STREAK_LOOKBACK)
            runs = store.venue_runs(con, ts, lookback, store.current_manifests(data, ts, run_id))
        blocked_validations = store.blocked_validations(con, ts, run_id) if load_summary is None else []
        blocked, why, load_failed = gate_outcome(load_summary, blocked_validations)
        conditions = (
            symbol_conditions(rules, snapshot, signals, {r["symbol"]: r for r in before})
            + venue_conditions(venue_rule, runs, ts)
            + pipeline_conditions(blocked, why, load_failed)
        )
        events, state = evaluate(ts, rules, conditions, previous)
        delivered_before = store.delivered_keys(con, ts)
        store.save_evaluation(con, ts, run_id, previous_ts, backfill, [rule.name for rule in rules], state, len(events))

    already = [e for e in events if e.key in delivered_before]
    pending = [e for e in events if e.key not in delivered_before]
    for event in events:
        log.info("alert %s %s %s (value %s)", event.kind, event.scope, event.rule.name, event.value)
    summary: dict[str, Any] = {
        "ts": ts.isoformat(),
        "previous_ts": previous_ts.isoformat() if previous_ts else None,
        "backfill": backfill,
        "rules": [rule.name for rule in rules],
        "events": [e.to_json() for e in events],
        "already_delivered": len(already),
        "attempted": 0,
        "delivered": 0,
        "messages": 0,
        "not_delivered_reasons": [],
    }
    if already:
        log.info("alerts: %d alert(s) of %s were delivered by an earlier run: not sent again", len(already), ts)
    if backfill and not config.alert_on_backfill:
        if pending:
            log.info(
                "alerts: %s is a backfill (latest evaluated interval %s): %d alert(s) recorded in "
                "ops.alert_state, not sent (set alertOnBackfill to send them)",
                ts,
                latest,
                len(pending),
            )
        summary["suppressed_backfill"] = len(pending)
        return summary
    if not pending:
        log.info("alerts: nothing crossed at %s (%d rules)", ts, len(rules))
        return summary

    outcomes, texts = deliver(ts, pending, backfill=backfill, transport=transport, log_line=log.info)
    attempted_at = datetime.now(UTC).replace(tzinfo=None)
    with warehouse.writer(data / "warehouse.duckdb", log=log.info) as con:
        sent = store.record_attempts(
            con, ts, run_id, pending, outcomes, [render_line(event) for event in pending], attempted_at
        )
    summary.update(
        attempted=len(pending),
        delivered=sent,
        messages=len(texts),
        not_delivered_reasons=sorted({o.error for o in outcomes if not o.delivered and o.error}),
    )
    log.info("alerts: %d of %d alert(s) delivered in %d message(s)", sent, len(pending), len(texts))
    return summary
