"""The bucket periods: the one place that says which periods the product accepts and how long they are.

Users pick a period (the DAG's ``lsPeriod``, ``positioning backfill --period``) from :data:`LS_PERIODS`; each
venue adapter turns it into the venue's own spelling (OKX ``1H``, Bitget ``1Dutc``...). Every entry point
validates through :func:`validate_period`, so the CLI and the trigger form accept exactly the same values.
Import-cheap: the DAG file imports it at parse time.
"""

from __future__ import annotations

import re

LS_PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "1d")
DEFAULT_PERIOD = "1h"
PERIOD_MS = {"5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000, "2h": 7_200_000,
             "4h": 14_400_000, "1d": 86_400_000}  # fmt: skip
LONGEST_PERIOD_MS = max(PERIOD_MS.values())

_SPELLING = re.compile(r"^(\d+)\s*([mhHdDwW])")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class PeriodError(ValueError):
    """A period the product does not offer; the message names the input and the accepted values."""


def validate_period(value: object, *, name: str = "lsPeriod") -> str:
    """``value`` if it is one of :data:`LS_PERIODS`, else :class:`PeriodError` naming ``name``."""
    if isinstance(value, str) and value in PERIOD_MS:
        return value
    raise PeriodError(f"{name} must be one of {', '.join(LS_PERIODS)}, got {str(value)[:20]!r}")


def period_seconds(spelling: str) -> int | None:
    """Seconds of any venue's bucket spelling (5m, 1h, 1H, 1D, 1Dutc...); None for '' (a current value)."""
    match = _SPELLING.match(spelling or "")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()] if match else None


def largest_fitting(period: str, offered: dict[str, int]) -> str:
    """The largest of a venue's ``offered`` periods (spelling -> ms) not longer than ``period``.

    A ratio bucket is a reading at the bucket's time, so a finer bucket is a fresher reading; a coarser one could
    be up to a day older than what the user asked for.
    """
    requested = PERIOD_MS[validate_period(period)]
    fitting = [name for name, ms in offered.items() if ms <= requested]
    return max(fitting, key=offered.__getitem__)
