"""Alerts: crossings, not spam. The body of the DAG's last task, ``alert`` (:func:`run_alerts`).

What fires
----------
Every rule is a condition per scope (a symbol, a venue, the pipeline) evaluated at one interval (``ts``). An alert
fires when the condition **becomes** true: it holds at ``ts`` and did not hold at the previous evaluated interval
(or there was none). While it keeps holding nothing is sent; once it stops, the next crossing alerts again.

=========================  ==============================================  ==========================================
rule (``ops.alert_state``)  condition                                       kind in ``ops.alerts`` (enter / leave)
=========================  ==============================================  ==========================================
``ls_threshold:<T>``       alertLsThreshold (the seed product's): avg_ls   ``ls_cross_above`` / ``ls_cross_below``
                           _ratio on the far side of T from 1.0 (>= T for  (both directions alert: "crosses")
                           T >= 1, <= T for T < 1)
``long_threshold:<T>``     alertLongThreshold: avg_ls_ratio >= T           ``heavy_long`` / silent
``short_threshold:<T>``    alertShortThreshold: avg_ls_ratio <= T          ``heavy_short`` / silent
``skew:EXTREME_LONG``      skew_label = EXTREME_LONG (alertOnExtremeSkew)  ``extreme_long`` / silent
``skew:EXTREME_SHORT``     skew_label = EXTREME_SHORT                      ``extreme_short`` / silent
``signal:<SIGNAL>``        the signal fires in marts.positioning_signals   ``signal_<signal>`` / silent
                           (alertOnSignals)
``venue_failing:<N>``      the venue's extract failed in each of its last  ``venue_failing`` / ``venue_recovered``
                           N runs (alertVenueFailures, default 3)
``quality_blocked``        the quality gate blocked publication            ``quality_blocked`` / ``quality_recovered``
``load_failed``            the load failed otherwise (nothing published)   ``load_failed`` / ``load_recovered``
=========================  ==============================================  ==========================================

A threshold is part of the rule's name, so changing it starts afresh ("who is beyond the new value now").
Turning a rule off forgets its state.

State and idempotency
---------------------
``ops.alert_state`` holds, per evaluated interval, the (rule, scope) pairs whose condition holds, and
``ops.alert_evaluations`` the evaluated intervals. An interval is compared with the latest evaluated interval
before it, so re-evaluating it (a re-run) computes the same alerts, and an alert already delivered for
(ts, rule, scope, kind) is never sent again. A scope without data at an interval (symbol missing, gate blocked)
carries its previous state forward, so a gap never re-alerts.

An interval older than the latest evaluated one, or a run of type ``backfill``, is a backfill: its state is
recorded (so later re-runs compare correctly) but its alerts are not sent, unless the param ``alertOnBackfill``
asks for it. Nobody is paged about the past.

Delivery
--------
All alerts of a run go out batched: one HTML message (split below 4096 UTF-16 units at line boundaries when
needed), operational alerts first. Every attempt is a row in ``ops.alerts`` (delivered or not, and why). Without a
bot token or chat id the alerts are computed and recorded as not delivered, with the reason; the task succeeds.
Telegram being down is recorded the same way and does not fail the task (a re-run retries what was not delivered).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx

from positioning.params import RunConfig
from positioning.telegram import escape

log = logging.getLogger("positioning")

SIGNALS = ("CASCADE_DOWN_RISK", "SQUEEZE_RISK", "SHORT_CAPITULATION", "BUILDUP")
SIGNAL_MEANING = {
    "CASCADE_DOWN_RISK": "large OI and extreme long: primed for a downside cascade",
    "SQUEEZE_RISK": "large OI and extreme short: primed for a short squeeze",
    "SHORT_CAPITULATION": "OI dropping while price rises: shorts capitulating",
    "BUILDUP": "OI rising with a flat price: both sides loading up",
}
PIPELINE = "pipeline"
VENUE_STREAK_LOOKBACK = 24
MAX_DETAIL = 300  # characters of an error text quoted in a message (messages stay short; the log has the rest)


# ------------------------------------------------------------------------------------------------------ rules


@dataclass(frozen=True)
class Rule:
    """One alert rule: its state name, the kinds it reports when its condition starts (and stops) holding."""

    name: str
    enter_kind: str
    exit_kind: str | None = None  # None: the condition ending is silent (the state just clears)
    threshold: float | None = None

    @property
    def family(self) -> str:
        return self.name.split(":", 1)[0]


def _number(value: float) -> str:
    return f"{value:g}"


def rules_for(config: RunConfig) -> list[Rule]:
    """The rules a run's params switch on (quality and load failures are always on)."""
    rules: list[Rule] = []
    if (t := config.alert_ls_threshold) > 0:
        above = t >= 1  # the far side of the threshold from a balanced 1.0 is where the crowd is
        rules.append(
            Rule(
                f"ls_threshold:{_number(t)}",
                "ls_cross_above" if above else "ls_cross_below",
                "ls_cross_below" if above else "ls_cross_above",
                t,
            )
        )
    if (t := config.alert_long_threshold) > 0:
        rules.append(Rule(f"long_threshold:{_number(t)}", "heavy_long", None, t))
    if (t := config.alert_short_threshold) > 0:
        rules.append(Rule(f"short_threshold:{_number(t)}", "heavy_short", None, t))
    if config.alert_on_extreme_skew:
        rules.append(Rule("skew:EXTREME_LONG", "extreme_long"))
        rules.append(Rule("skew:EXTREME_SHORT", "extreme_short"))
    if config.alert_on_signals:
        rules += [Rule(f"signal:{name}", f"signal_{name.lower()}") for name in SIGNALS]
    if config.alert_venue_failures > 0:
        n = config.alert_venue_failures
        rules.append(Rule(f"venue_failing:{n}", "venue_failing", "venue_recovered", float(n)))
    rules.append(Rule("quality_blocked", "quality_blocked", "quality_recovered"))
    rules.append(Rule("load_failed", "load_failed", "load_recovered"))
    return rules


# ------------------------------------------------------------------------------------------- pure evaluation


@dataclass(frozen=True)
class Condition:
    """Whether a rule's condition holds for a scope at one interval; ``holds=None``: no data to tell."""

    rule: str
    scope: str
    holds: bool | None
    value: float | None = None
    context: Mapping[str, Any] = field(default_factory=dict)  # for the message: previous ratio, error text...


@dataclass(frozen=True)
class StateRow:
    rule: str
    scope: str
    since_ts: datetime
    value: float | None
    carried: bool = False


@dataclass(frozen=True)
class AlertEvent:
    ts: datetime
    rule: Rule
    scope: str
    kind: str
    value: float | None
    entering: bool
    context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule.name, self.scope, self.kind)

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule.name, "scope": self.scope, "kind": self.kind, "value": self.value}


def evaluate(
    ts: datetime,
    rules: Iterable[Rule],
    conditions: Iterable[Condition],
    previous: Mapping[tuple[str, str], StateRow],
) -> tuple[list[AlertEvent], list[StateRow]]:
    """The alerts of interval ``ts`` and its new state, from its conditions and the previous interval's state.

    Enter: holds now, absent before. Leave (rules with an ``exit_kind``): present before, evaluated false now.
    Not evaluable now (``holds=None`` or no condition at all for a previously held scope): carried forward.
    """
    by_name = {rule.name: rule for rule in rules}
    events: list[AlertEvent] = []
    state: list[StateRow] = []
    seen: set[tuple[str, str]] = set()
    for condition in conditions:
        rule = by_name.get(condition.rule)
        if rule is None:
            continue
        key = (condition.rule, condition.scope)
        seen.add(key)
        before = previous.get(key)
        if condition.holds is None:
            if before is not None:
                state.append(StateRow(key[0], key[1], before.since_ts, before.value, carried=True))
            continue
        if condition.holds:
            state.append(StateRow(key[0], key[1], before.since_ts if before else ts, condition.value))
            if before is None:
                events.append(
                    AlertEvent(ts, rule, condition.scope, rule.enter_kind, condition.value, True, condition.context)
                )
        elif before is not None and rule.exit_kind:
            context = {**condition.context, "held_value": before.value, "held_since": before.since_ts}
            events.append(AlertEvent(ts, rule, condition.scope, rule.exit_kind, condition.value, False, context))
    for key, before in previous.items():
        if key not in seen and key[0] in by_name:  # no data for the scope now: keep what we knew
            state.append(StateRow(key[0], key[1], before.since_ts, before.value, carried=True))
    return events, state


def symbol_conditions(
    rules: Iterable[Rule],
    snapshot: Iterable[Mapping[str, Any]],
    signals: Iterable[Mapping[str, Any]] = (),
    previous_snapshot: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Condition]:
    """Conditions of the symbol rules from ``marts.symbol_snapshot`` (and ``marts.positioning_signals``) rows."""
    previous_snapshot = previous_snapshot or {}
    conditions: list[Condition] = []
    rules = list(rules)
    for row in snapshot:
        symbol, ratio, label = row["symbol"], row.get("avg_ls_ratio"), row.get("skew_label")
        before = previous_snapshot.get(symbol, {})
        context = {
            "ratio": ratio,
            "label": label,
            "previous_ratio": before.get("avg_ls_ratio"),
            "previous_label": before.get("skew_label"),
        }
        for rule in rules:
            holds: bool | None
            if rule.family in ("ls_threshold", "long_threshold", "short_threshold"):
                assert rule.threshold is not None
                if ratio is None:
                    holds = None
                elif rule.family == "long_threshold" or (rule.family == "ls_threshold" and rule.threshold >= 1):
                    holds = ratio >= rule.threshold
                else:
                    holds = ratio <= rule.threshold
                conditions.append(Condition(rule.name, symbol, holds, ratio, context))
            elif rule.family == "skew":
                holds = None if label in (None, "NO_DATA") else label == rule.name.split(":", 1)[1]
                conditions.append(Condition(rule.name, symbol, holds, ratio, context))
    signal_rules = [rule for rule in rules if rule.family == "signal"]
    for row in signals if signal_rules else ():
        firing = set(row.get("signals") or ())
        for rule in signal_rules:
            name = rule.name.split(":", 1)[1]
            score = row.get(f"{name.lower()}_score")
            context = {
                "score": score,
                "consensus_z_30d": row.get("consensus_z_30d"),
                "total_oi_pct_30d": row.get("total_oi_pct_30d"),
                "total_oi_change_4h_pct": row.get("total_oi_change_4h_pct"),
                "mark_price_change_4h_pct": row.get("mark_price_change_4h_pct"),
            }
            conditions.append(Condition(rule.name, row["symbol"], name in firing, score, context))
    return conditions


def venue_conditions(rule: Rule | None, runs: Mapping[str, list[Mapping[str, Any]]], ts: datetime) -> list[Condition]:
    """``venue_failing:<N>`` per venue from its runs, newest first (``{"ts", "status", "error"}``). A venue that did
    not run at ``ts`` (disabled this run) is not evaluated: its state carries."""
    if rule is None:
        return []
    needed = int(rule.threshold or 0)
    conditions = []
    for venue, history in sorted(runs.items()):
        if not history or history[0]["ts"] != ts:
            continue
        streak = 0
        for run in history:
            if run["status"] != "failed":
                break
            streak += 1
        conditions.append(
            Condition(
                rule.name,
                f"venue:{venue}",
                streak >= needed,
                float(streak),
                {"venue": venue, "error": history[0].get("error"), "streak": streak},
            )
        )
    return conditions


def pipeline_conditions(blocked: bool, blocked_detail: str | None, load_failed: bool) -> list[Condition]:
    return [
        Condition("quality_blocked", PIPELINE, blocked, None, {"detail": blocked_detail}),
        Condition("load_failed", PIPELINE, load_failed and not blocked, None, {}),
    ]


# --------------------------------------------------------------------------------------------------- messages


def _ratio(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}"


def _clip(text: Any, limit: int = MAX_DETAIL) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_line(event: AlertEvent) -> str:
    """One HTML line per alert; every dynamic value escaped."""
    c, kind, scope = event.context, event.kind, escape(event.scope)
    t = _number(event.rule.threshold) if event.rule.threshold is not None else ""
    was = f" (was {_ratio(c.get('previous_ratio'))})" if c.get("previous_ratio") is not None else ""
    if kind in ("ls_cross_above", "ls_cross_below"):
        arrow, word = ("▲", "above") if kind == "ls_cross_above" else ("▼", "below")
        return f"{arrow} <b>{scope}</b> avg L/S <b>{_ratio(event.value)}</b> crossed {word} {t}{was}"
    if kind == "heavy_long":
        return f"▲ <b>{scope}</b> heavy long: avg L/S <b>{_ratio(event.value)}</b> ≥ {t}{was}"
    if kind == "heavy_short":
        return f"▼ <b>{scope}</b> heavy short: avg L/S <b>{_ratio(event.value)}</b> ≤ {t}{was}"
    if kind in ("extreme_long", "extreme_short"):
        arrow = "▲" if kind == "extreme_long" else "▼"
        previous = c.get("previous_label")
        since = f", was {escape(previous)}" if previous else ""
        return f"{arrow} <b>{scope}</b> now <b>{escape(c.get('label'))}</b> (avg L/S {_ratio(event.value)}{since})"
    if kind.startswith("signal_"):
        name = event.rule.name.split(":", 1)[1]
        score = f" (score {event.value:.2f})" if event.value is not None else ""
        return f"⚡ <b>{scope}</b> {escape(name)}{score}: {escape(SIGNAL_MEANING.get(name, ''))}"
    if kind == "venue_failing":
        error = f": {escape(_clip(c['error']))}" if c.get("error") else ""
        streak = c.get("streak") or 0
        runs = "run" if streak == 1 else "runs"
        return f"⚠️ venue <b>{escape(c.get('venue'))}</b> failed {streak} {runs} in a row{error}"
    if kind == "venue_recovered":
        held = c.get("held_value")
        after = f" after {held:.0f} failed runs" if held else ""
        return f"✅ venue <b>{escape(c.get('venue'))}</b> recovered{after}"
    if kind == "quality_blocked":
        detail = f": {escape(_clip(c['detail']))}" if c.get("detail") else ""
        return f"⛔ quality gate <b>blocked</b> publication of this interval{detail}"
    if kind == "quality_recovered":
        return "✅ quality gate passed again: the interval was published"
    if kind == "load_failed":
        return "⛔ load <b>failed</b>: nothing published for this interval (see the load task's log)"
    if kind == "load_recovered":
        return "✅ load succeeded again: the interval was published"
    return f"{escape(kind)} {scope}"  # pragma: no cover - every kind above


_ORDER = {"venue_failing": 0, "quality_blocked": 0, "load_failed": 0}


def render_messages(ts: datetime, events: list[AlertEvent], *, backfill: bool = False) -> list[tuple[str, list[int]]]:
    """The run's messages: (HTML text, indices of the events it carries). Operational alerts first."""
    from positioning.telegram import MAX_MESSAGE_UNITS, fit_line, pack_lines, utf16_units

    stamp = ts.strftime("%Y-%m-%d %H:%M UTC")
    header = f"<b>positioning alerts</b> · {escape(stamp)}" + (" · backfill" if backfill else "")
    order = sorted(
        range(len(events)),
        key=lambda i: (0 if events[i].rule.family in ("venue_failing", "quality_blocked", "load_failed") else 1, i),
    )
    reserve = 12  # for " (12/34)" added to the header of a split batch
    room = MAX_MESSAGE_UNITS - reserve - utf16_units(header) - 1
    lines = [fit_line(render_line(events[i]), room) for i in order]
    groups = pack_lines(lines, header=header, limit=MAX_MESSAGE_UNITS - reserve)
    messages = []
    for number, group in enumerate(groups, 1):
        head = header + (f" ({number}/{len(groups)})" if len(groups) > 1 else "")
        messages.append(("\n".join([head, *(lines[i] for i in group)]), [order[i] for i in group]))
    return messages


# ------------------------------------------------------------------------------------------------- warehouse


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    """Rows as dicts; a table that does not exist yet (first run failed before creating it) has no rows."""
    try:
        cursor = con.execute(sql, params)
    except duckdb.CatalogException:
        return []
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def previous_interval(con: duckdb.DuckDBPyConnection, ts: datetime) -> datetime | None:
    row = con.execute("SELECT max(ts) FROM ops.alert_evaluations WHERE ts < ?", [ts]).fetchone()
    return row[0] if row else None


def latest_interval(con: duckdb.DuckDBPyConnection) -> datetime | None:
    row = con.execute("SELECT max(ts) FROM ops.alert_evaluations").fetchone()
    return row[0] if row else None


def load_state(con: duckdb.DuckDBPyConnection, ts: datetime | None) -> dict[tuple[str, str], StateRow]:
    if ts is None:
        return {}
    rows = con.execute(
        "SELECT rule, scope, since_ts, value, carried FROM ops.alert_state WHERE ts = ?", [ts]
    ).fetchall()
    return {(r[0], r[1]): StateRow(*r) for r in rows}


def venue_runs(
    con: duckdb.DuckDBPyConnection, ts: datetime, lookback: int, current: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Per venue, its latest try per interval up to ``ts``, newest first (at most ``lookback``); ``current`` (this
    run's manifests) wins for ``ts`` itself, since a blocked load writes no ops rows."""
    rows = _rows(
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
    for row in rows:
        runs.setdefault(row["venue"], []).append(row)
    for venue, run in current.items():
        history = [r for r in runs.get(venue, []) if r["ts"] != ts]
        runs[venue] = [{"ts": ts, "venue": venue, "status": run["status"], "error": run.get("fatal")}, *history]
    return runs


def current_manifests(data: Path, ts: datetime, run_id: str) -> dict[str, dict[str, Any]]:
    """This run's latest extract try per venue, from its manifests (empty when there are none). Read directly,
    not through positioning.warehouse.load, whose imports (great-expectations) would cost the alert task seconds."""
    from positioning.ingest.extract import manifest_path

    latest: dict[str, dict[str, Any]] = {}
    directory = manifest_path(data, "x", ts.replace(tzinfo=UTC), run_id, 1).parent
    for path in sorted(directory.glob("venue=*__try=*.json")):
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            venue, attempt = manifest["venue"], manifest["attempt"]
        except (OSError, ValueError, KeyError):
            continue
        if venue not in latest or attempt > latest[venue]["attempt"]:
            latest[venue] = manifest
    return latest


def gate_outcome(
    con: duckdb.DuckDBPyConnection, ts: datetime, run_id: str, load_summary: Mapping[str, Any] | None
) -> tuple[bool, str | None, bool]:
    """(blocked, why, load_failed): from the load's XCom ``quality`` entry when it returned, else from
    ``quality.validation_runs`` (a blocked load raises, so it leaves no XCom)."""
    if load_summary is not None:
        quality = load_summary.get("quality") or {}
        blocked = quality.get("published") is False
        blocking = quality.get("blocking") or []
        return blocked, ("; ".join(map(str, blocking)) or quality.get("text")) if blocked else None, False
    rows = _rows(
        con,
        "SELECT suite, summary FROM quality.validation_runs WHERE ts = ? AND run_id = ? AND blocked",
        [ts, run_id],
    )
    if rows:
        return True, "; ".join(f"{r['suite']}: {r['summary']}" if r["summary"] else r["suite"] for r in rows), False
    return False, None, True


# ----------------------------------------------------------------------------------------------------- delivery


@dataclass
class Outcome:
    delivered: bool
    error: str | None = None
    message_id: int | None = None
    http_attempts: int = 0
    sent_at: datetime | None = None


def deliver(
    ts: datetime,
    events: list[AlertEvent],
    *,
    backfill: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    log_line: Callable[[str], None] = log.info,
) -> tuple[list[Outcome], list[str]]:
    """Send the events batched; one :class:`Outcome` per event (and the texts sent). Never raises."""
    from positioning import connections
    from positioning.telegram import TelegramBot, TelegramNotConfigured, scrub

    messages = render_messages(ts, events, backfill=backfill)
    outcomes = [Outcome(False, "not attempted") for _ in events]
    token: str | None = None
    try:
        endpoint = connections.resolve("telegram")
        token = endpoint.password
        bot = TelegramBot(endpoint.base_url, token, (endpoint.extra or {}).get("chat_id"), transport=transport)
    except TelegramNotConfigured as exc:
        reason = f"not delivered: {exc}"
        log_line(f"alerts: {reason}")
        return [Outcome(False, reason) for _ in events], [text for text, _ in messages]
    except Exception as exc:  # a malformed connection must not fail the run; its text may hold the token
        reason = f"not delivered: the positioning_telegram connection is unusable ({scrub(str(exc), token)})"
        log_line(f"alerts: {reason}")
        return [Outcome(False, reason) for _ in events], [text for text, _ in messages]
    log_line(f"alerts: sending {len(events)} alerts in {len(messages)} message(s) via {bot.base_url}")
    deliveries = bot.send_all([text for text, _ in messages])
    for (_, indices), delivery in zip(messages, deliveries, strict=True):
        sent_at = datetime.now(UTC).replace(tzinfo=None)
        for i in indices:
            outcomes[i] = Outcome(
                delivery.ok,
                None if delivery.ok else scrub(delivery.error, token),
                delivery.message_id,
                delivery.attempts,
                sent_at if delivery.ok else None,
            )
        status = "delivered" if delivery.ok else f"NOT delivered ({scrub(delivery.error, token)})"
        log_line(f"alerts: message with {len(indices)} alerts {status}")
    return outcomes, [text for text, _ in messages]


# ---------------------------------------------------------------------------------------------------- the task


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
    from positioning import warehouse
    from positioning.config import data_dir

    data = data or data_dir()
    config = RunConfig.from_params(dict(params))
    rules = rules_for(config)
    ts = _naive(interval_end)
    venue_rule = next((rule for rule in rules if rule.family == "venue_failing"), None)

    with warehouse.writer(data / "warehouse.duckdb", log=log.info) as con:
        previous_ts = previous_interval(con, ts)
        latest = latest_interval(con)
        backfill = run_type == "backfill" or (latest is not None and latest > ts)
        previous = load_state(con, previous_ts)
        snapshot = _rows(
            con, "SELECT symbol, avg_ls_ratio, skew_label FROM marts.symbol_snapshot WHERE ts = ? ORDER BY symbol", [ts]
        )
        before = _rows(
            con, "SELECT symbol, avg_ls_ratio, skew_label FROM marts.symbol_snapshot WHERE ts = ?", [previous_ts]
        )
        signals = _rows(con, "SELECT * FROM marts.positioning_signals WHERE ts = ? ORDER BY symbol", [ts])
        runs = {}
        if venue_rule is not None:  # enough history to count a streak of N (and say how long it was, up to a day)
            lookback = max(int(venue_rule.threshold or 0), VENUE_STREAK_LOOKBACK)
            runs = venue_runs(con, ts, lookback, current_manifests(data, ts, run_id))
        blocked, why, load_failed = gate_outcome(con, ts, run_id, load_summary)
        conditions = (
            symbol_conditions(rules, snapshot, signals, {r["symbol"]: r for r in before})
            + venue_conditions(venue_rule, runs, ts)
            + pipeline_conditions(blocked, why, load_failed)
        )
        events, state = evaluate(ts, rules, conditions, previous)
        delivered_before = {
            (r[0], r[1], r[2])
            for r in con.execute(
                "SELECT rule, symbol, kind FROM ops.alerts WHERE ts = ? AND delivered", [ts]
            ).fetchall()
        }
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
            [ts, run_id, previous_ts, backfill, [rule.name for rule in rules], len(events)],
        )
        con.execute("COMMIT")

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
                    render_line(event),
                    attempted_at,
                    outcome.message_id,
                    outcome.http_attempts,
                ]
                for event, outcome in zip(pending, outcomes, strict=True)
            ],
        )
        sent = sum(outcome.delivered for outcome in outcomes)
        con.execute("UPDATE ops.alert_evaluations SET sent = sent + ? WHERE ts = ?", [sent, ts])
        con.execute("COMMIT")
    summary.update(
        attempted=len(pending),
        delivered=sent,
        messages=len(texts),
        not_delivered_reasons=sorted({o.error for o in outcomes if not o.delivered and o.error}),
    )
    log.info("alerts: %d of %d alert(s) delivered in %d message(s)", sent, len(pending), len(texts))
    return summary
