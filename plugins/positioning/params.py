"""The DAG's params (the seed product's input fields plus ``includeStrike``) and their validation.

Import-cheap on purpose: the DAG file imports this at parse time. The JSON schema of each Param rejects bad
conf before a run is created (HTTP 400 from the REST API, ParamValidationError from ``dags test``); the
``RunConfig.from_params`` check repeats it in plain Python (for the CLI and for defence in depth) and
normalises what the schema lets through (lower-case symbols, duplicates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from positioning import registry
from positioning.periods import DEFAULT_PERIOD, LS_PERIODS, PeriodError, validate_period
from positioning.symbols import MAX_SYMBOLS, SymbolError, normalise_symbols

SORT_KEYS = ("oi_desc", "ls_long_extreme_desc", "ls_short_extreme_desc", "symbol_asc")
MAX_ALERT_THRESHOLD = 100.0  # a long/short ratio above 100 is not a market, it is a data error
DEFAULT_VENUE_FAILURE_RUNS = 3
MAX_VENUE_FAILURE_RUNS = 1000


class ConfError(ValueError):
    """Bad run configuration; the message names the field."""


def dag_params() -> dict[str, Any]:
    """``Param`` objects for ``@dag(params=...)``: titles, descriptions and sections for the trigger form."""
    from airflow.sdk import Param

    params: dict[str, Any] = {
        "symbols": Param(
            [],
            type="array",
            items={"type": "string", "pattern": "^[A-Za-z0-9]{1,20}$"},
            maxItems=MAX_SYMBOLS,
            title="Symbols",
            description=f"Base symbols, one per line (BTC, ETH, SOL). Empty = the bundled top-50 majors. "
            f"Letters and digits only, case-insensitive, at most {MAX_SYMBOLS}.",
            section="Universe",
        ),
    }
    for spec in registry.specs():
        params[spec.param] = Param(
            True, type="boolean", title=f"Include {spec.title}", description=spec.param_help, section="Venues"
        )
    params["includeOiChange24h"] = Param(
        False,
        type="boolean",
        title="OKX 24h OI change",
        description="Add okx_oi_24h_change_pct (position build-up + vs unwind -). One extra OKX call per symbol.",
        section="Venues",
    )
    params["lsPeriod"] = Param(
        DEFAULT_PERIOD,
        type="string",
        enum=list(LS_PERIODS),
        title="Long/short period",
        description="Bucket size of the long/short ratios. OKX's currency ratio only has 5m, 1H and 1D: the "
        "largest of those not longer than this is used there.",
        section="Ratios",
    )
    params["sortBy"] = Param(
        "oi_desc",
        type="string",
        enum=list(SORT_KEYS),
        title="Sort snapshot by",
        description="Order of the exported snapshot: biggest open interest, most extreme long, most extreme "
        "short, or alphabetical.",
        section="Output",
    )
    params["alertLsThreshold"] = Param(
        0,
        type="number",
        minimum=0,
        maximum=MAX_ALERT_THRESHOLD,
        title="Alert L/S threshold",
        description="Telegram alert when a symbol's average long/short ratio crosses this value (3 = heavy long "
        "crowd, 0.5 = heavy short crowd). 0 = off. The bot token lives in the positioning_telegram connection.",
        section="Alerts",
    )
    params["alertLongThreshold"] = Param(
        0,
        type="number",
        minimum=0,
        maximum=MAX_ALERT_THRESHOLD,
        title="Alert: heavy long at or above",
        description="Telegram alert when a symbol's average long/short ratio rises to or above this value (3 = "
        "heavy long crowd). Once per crossing: no repeat while it stays there. 0 = off.",
        section="Alerts",
    )
    params["alertShortThreshold"] = Param(
        0,
        type="number",
        minimum=0,
        maximum=MAX_ALERT_THRESHOLD,
        title="Alert: heavy short at or below",
        description="Telegram alert when a symbol's average long/short ratio falls to or below this value (0.5 = "
        "heavy short crowd). Once per crossing: no repeat while it stays there. 0 = off.",
        section="Alerts",
    )
    params["alertOnExtremeSkew"] = Param(
        True,
        type="boolean",
        title="Alert: EXTREME_LONG / EXTREME_SHORT",
        description="Telegram alert when a symbol's skew label turns EXTREME_LONG or EXTREME_SHORT.",
        section="Alerts",
    )
    params["alertOnSignals"] = Param(
        True,
        type="boolean",
        title="Alert: positioning signals",
        description="Telegram alert when a positioning signal starts firing for a symbol (CASCADE_DOWN_RISK, "
        "SQUEEZE_RISK, SHORT_CAPITULATION, BUILDUP; see marts.positioning_signals).",
        section="Alerts",
    )
    params["alertVenueFailures"] = Param(
        DEFAULT_VENUE_FAILURE_RUNS,
        type="integer",
        minimum=0,
        maximum=MAX_VENUE_FAILURE_RUNS,
        title="Alert: venue failing for N runs",
        description="Telegram alert when a venue's extract has failed this many consecutive runs (and again when "
        "it recovers). 0 = off. A quality gate blocking publication always alerts.",
        section="Alerts",
    )
    params["alertOnBackfill"] = Param(
        False,
        type="boolean",
        title="Alert on backfilled intervals",
        description="Send alerts for an interval older than the latest one already evaluated (a backfill or a "
        "late re-run). Off: its crossings are recorded, not sent, so nobody is paged about the past.",
        section="Alerts",
    )
    return params


@dataclass(frozen=True)
class RunConfig:
    symbols: tuple[str, ...]
    venues: tuple[str, ...]
    ls_period: str
    sort_by: str
    include_oi_change_24h: bool
    alert_ls_threshold: float
    # Added after the fields above (positional construction keeps working); 0 = off.
    alert_long_threshold: float = 0.0
    alert_short_threshold: float = 0.0
    alert_on_extreme_skew: bool = True
    alert_on_signals: bool = True
    alert_venue_failures: int = DEFAULT_VENUE_FAILURE_RUNS
    alert_on_backfill: bool = False

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> RunConfig:
        try:
            symbols = tuple(normalise_symbols(params.get("symbols") or None))
        except SymbolError as exc:
            raise ConfError(f"symbols: {exc}") from None
        flags = {}
        for spec in registry.specs():
            value = params.get(spec.param, True)
            if not isinstance(value, bool):
                raise ConfError(f"{spec.param} must be true or false, got {value!r}")
            flags[spec.name] = value
        venues = tuple(venue for venue, enabled in flags.items() if enabled)
        if not venues:
            raise ConfError(f"{'/'.join(spec.param for spec in registry.specs())}: enable at least one venue")
        try:
            ls_period = validate_period(params.get("lsPeriod", DEFAULT_PERIOD))
        except PeriodError as exc:
            raise ConfError(str(exc)) from None
        sort_by = params.get("sortBy", "oi_desc")
        if sort_by not in SORT_KEYS:
            raise ConfError(f"sortBy must be one of {', '.join(SORT_KEYS)}, got {str(sort_by)[:30]!r}")
        oi_change = params.get("includeOiChange24h", False)
        if not isinstance(oi_change, bool):
            raise ConfError(f"includeOiChange24h must be true or false, got {oi_change!r}")
        thresholds = {
            name: _threshold(params, name) for name in ("alertLsThreshold", "alertLongThreshold", "alertShortThreshold")
        }
        flags = {name: _flag(params, name, default) for name, default in ALERT_FLAGS.items()}
        failures = params.get("alertVenueFailures", DEFAULT_VENUE_FAILURE_RUNS)
        if isinstance(failures, float) and failures.is_integer():
            failures = int(failures)
        if isinstance(failures, bool) or not isinstance(failures, int):
            raise ConfError(f"alertVenueFailures must be a whole number, got {failures!r}")
        if not 0 <= failures <= MAX_VENUE_FAILURE_RUNS:
            raise ConfError(f"alertVenueFailures must be between 0 and {MAX_VENUE_FAILURE_RUNS}, got {failures}")
        return cls(
            symbols,
            venues,
            ls_period,
            sort_by,
            oi_change,
            thresholds["alertLsThreshold"],
            alert_long_threshold=thresholds["alertLongThreshold"],
            alert_short_threshold=thresholds["alertShortThreshold"],
            alert_on_extreme_skew=flags["alertOnExtremeSkew"],
            alert_on_signals=flags["alertOnSignals"],
            alert_venue_failures=failures,
            alert_on_backfill=flags["alertOnBackfill"],
        )


ALERT_FLAGS = {"alertOnExtremeSkew": True, "alertOnSignals": True, "alertOnBackfill": False}


def _threshold(params: dict[str, Any], name: str) -> float:
    value = params.get(name, 0)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfError(f"{name} must be a number, got {value!r}")
    if not 0 <= value <= MAX_ALERT_THRESHOLD:
        raise ConfError(f"{name} must be between 0 and {MAX_ALERT_THRESHOLD:g}, got {value}")
    return float(value)


def _flag(params: dict[str, Any], name: str, default: bool) -> bool:
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise ConfError(f"{name} must be true or false, got {value!r}")
    return value
