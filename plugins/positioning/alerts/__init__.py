"""Alerts: crossings, not spam. The body of the DAG's last task, ``alert`` (:func:`run_alerts`).

What the package owns, in the order a run goes through it (rules -> render -> store -> deliver):

* :mod:`~positioning.alerts.rules`: the rules a run's params switch on and the pure evaluation of their
  conditions (snapshot, signals, venue health, quality gate) against the previous state: which alerts start/stop;
* :mod:`~positioning.alerts.render`: the HTML line of each alert and the run's messages, split below Telegram's
  4096-unit limit (``escape``, ``split_message``, ``utf16_units``...);
* :mod:`~positioning.alerts.store`: reading the inputs and the previous state from the warehouse (DuckDB) and
  writing ``ops.alert_state``, ``ops.alert_evaluations`` and ``ops.alerts``;
* :mod:`~positioning.alerts.deliver` and :mod:`~positioning.alerts.telegram`: sending a run's alerts through the
  Telegram Bot API client (the token never leaves the request path);
* :mod:`~positioning.alerts.run`: :func:`run_alerts`, the task, which strings them together.

Importing the package is cheap (no DuckDB, httpx or venue registry); :func:`run_alerts` imports those it uses.

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

from positioning.alerts.run import run_alerts

__all__ = ["run_alerts"]
