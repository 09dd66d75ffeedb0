"""Time units, period buckets and number formatting shared by the market (``state``) and the venues' wire formats.

History buckets are aligned to the epoch (UTC) in multiples of the period; a bucket's timestamp is its start,
and a bucket is served only once it has fully ended (start + period <= now).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from http import HTTPStatus

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
# Every venue's period spellings; a venue still checks which of them its endpoint accepts.
PERIOD_MS: dict[str, int] = {
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
    "1H": HOUR_MS,  # upper-case spelling (venues.md §2.5)
    "1D": DAY_MS,  # upper-case spelling (venues.md §2.5)
    "1Dutc": DAY_MS,  # UTC-day spelling (venues.md §3.8)
    "5min": 5 * MINUTE_MS,  # Bybit's minute spellings (venues-more.md §1.3, §1.4)
    "15min": 15 * MINUTE_MS,
    "30min": 30 * MINUTE_MS,
}


def period_ms(period: str) -> int:
    """Length of a period string in ms (any venue's spelling); KeyError for an unknown period."""
    return PERIOD_MS[period]


def bucket_start(period: str, ts_ms: int) -> int:
    """Start (ms, epoch-aligned UTC) of the ``period`` bucket containing ``ts_ms``."""
    length = period_ms(period)
    return ts_ms // length * length


def ended_buckets(period: str, first_ms: int, last_start_ms: int) -> list[int]:
    """Bucket starts from ``first_ms`` (rounded up to a bucket) to ``last_start_ms`` inclusive, ascending."""
    length = period_ms(period)
    first = -(-first_ms // length) * length
    return list(range(first, last_start_ms + 1, length)) if first <= last_start_ms else []


def last_ended_start(period: str, now_ms: int) -> int:
    """Start of the newest bucket that has fully ended at ``now_ms`` (start + period <= now)."""
    return bucket_start(period, now_ms) - period_ms(period)


def second(ts_ms: int) -> int:
    """``ts_ms`` quantised down to the second: "current" values are evaluated there."""
    return ts_ms // 1000 * 1000


def fmt(value: float | Decimal, decimals: int) -> str:
    """Fixed-point string as the venues send numbers."""
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN))
    return f"{value:.{decimals}f}"


def int_param(value: str | None) -> int | None:
    """An optional integer query parameter ("" counts as absent); ValueError when it is not an integer."""
    if value is None or value == "":
        return None
    return int(value)


def iso(ts_ms: int) -> str:
    """ISO-8601 UTC to the second, e.g. ``2026-01-01T00:02:03Z``."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reason(status: int) -> str:
    """The HTTP reason phrase of ``status`` ("Error" for a code the standard library does not know)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
