"""Alert rules: pure functions from a run's inputs and the previous state to the alerts that start or stop.

Inputs are plain rows (``marts.symbol_snapshot``, ``marts.positioning_signals``, per-venue extract runs, the quality
gate's outcome) and the previous evaluated interval's state; nothing here reads or writes anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # params pulls the venue registry (polars): not needed to evaluate rules
    from positioning.params import RunConfig

SIGNALS = ("CASCADE_DOWN_RISK", "SQUEEZE_RISK", "SHORT_CAPITULATION", "BUILDUP")
PIPELINE = "pipeline"
OPERATIONAL_FAMILIES = ("venue_failing", "quality_blocked", "load_failed")  # sent first in a batch


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


def format_number(value: float) -> str:
    """A threshold as it appears in a rule's name and in messages (``3``, ``0.5``)."""
    return f"{value:g}"


def rules_for(config: RunConfig) -> list[Rule]:
    """The rules a run's params switch on (quality and load failures are always on)."""
    rules: list[Rule] = []
    if (t := config.alert_ls_threshold) > 0:
        above = t >= 1  # the far side of the threshold from a balanced 1.0 is where the crowd is
        rules.append(
            Rule(
                f"ls_threshold:{format_number(t)}",
                "ls_cross_above" if above else "ls_cross_below",
                "ls_cross_below" if above else "ls_cross_above",
                t,
            )
        )
    if (t := config.alert_long_threshold) > 0:
        rules.append(Rule(f"long_threshold:{format_number(t)}", "heavy_long", None, t))
    if (t := config.alert_short_threshold) > 0:
        rules.append(Rule(f"short_threshold:{format_number(t)}", "heavy_short", None, t))
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
    """One (rule, scope) whose condition holds at an interval (a row of ``ops.alert_state``)."""

    rule: str
    scope: str
    since_ts: datetime
    value: float | None
    carried: bool = False


@dataclass(frozen=True)
class AlertEvent:
    """A condition that started (``entering``) or stopped holding at ``ts``: one line of a message."""

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


def gate_outcome(
    load_summary: Mapping[str, Any] | None, blocked_validations: Iterable[Mapping[str, Any]] = ()
) -> tuple[bool, str | None, bool]:
    """(blocked, why, load_failed): from the load's XCom ``quality`` entry when it returned, else from the blocking
    ``quality.validation_runs`` rows of the run (``{"suite", "summary"}``; a blocked load raises, so it leaves no
    XCom). No XCom and no blocking validation: the load failed otherwise."""
    if load_summary is not None:
        quality = load_summary.get("quality") or {}
        blocked = quality.get("published") is False
        blocking = quality.get("blocking") or []
        return blocked, ("; ".join(map(str, blocking)) or quality.get("text")) if blocked else None, False
    rows = list(blocked_validations)
    if rows:
        return True, "; ".join(f"{r['suite']}: {r['summary']}" if r["summary"] else r["suite"] for r in rows), False
    return False, None, True


def pipeline_conditions(blocked: bool, blocked_detail: str | None, load_failed: bool) -> list[Condition]:
    return [
        Condition("quality_blocked", PIPELINE, blocked, None, {"detail": blocked_detail}),
        Condition("load_failed", PIPELINE, load_failed and not blocked, None, {}),
    ]
