"""The venues' documented public rate limits, enforced per client IP with sliding windows.

A request is counted when it is received; a rejected request is not counted (it consumed nothing) but Binance
remembers it: a client that keeps sending after 429s is banned (HTTP 418) like the real venue does.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """At most ``capacity`` units (requests or Binance weight) in any ``window_s`` seconds, per client IP."""

    capacity: int
    window_s: float
    source: str


# One table for every limit. Keys are "<venue>:<bucket>"; sources are sections of /work/shared/venues.md.
RATE_LIMITS: dict[str, Limit] = {
    "binance:weight": Limit(2400, 60, "§1.0 REQUEST_WEIGHT 2400 per minute per IP; weights §1.1, §1.6, §1.7"),
    "binance:futures-data": Limit(1000, 300, "§1.2-1.5 all /futures/data/* share 1000 requests / 5 min / IP"),
    "okx:instruments": Limit(20, 2, "§2.1 20 req / 2 s, IP + instrument type"),
    "okx:open-interest": Limit(20, 2, "§2.2 20 req / 2 s"),
    "okx:mark-price": Limit(10, 2, "§2.3 10 req / 2 s"),
    "okx:funding-rate": Limit(10, 2, "§2.4 10 req / 2 s (Nov-2025 page)"),
    "okx:long-short-account-ratio": Limit(5, 2, "§2.5 5 req / 2 s, IP (own bucket per endpoint)"),
    "okx:open-interest-volume": Limit(5, 2, "§2.5 5 req / 2 s, IP (own bucket per endpoint)"),
    "bitget:contracts": Limit(20, 1, "§3.5 20 req / s / IP"),
    "bitget:tickers": Limit(20, 1, "§3.2 20 req / s / IP"),
    "bitget:open-interest": Limit(20, 1, "§3.1 20 req / s / IP"),
    "bitget:account-long-short": Limit(1, 1, "§3.6 1 req / s / IP"),
    "bitget:position-long-short": Limit(1, 1, "§3.7 1 req / s / IP"),
    "bitget:long-short": Limit(1, 1, "§3.8 1 req / s / IP"),
    "bitget:overall": Limit(6000, 60, "§3.0 overall 6000 / IP / min"),
    "strike:all": Limit(10, 1, "§4 undocumented; a generous guess"),
}
BINANCE_WEIGHTS = {"exchangeInfo": 1, "openInterest": 1, "premiumIndex": 1}  # premiumIndex: 10 without symbol
BINANCE_FUTURES_DATA = ("openInterestHist", "topLongShortPositionRatio", "topLongShortAccountRatio",
                        "globalLongShortAccountRatio")  # fmt: skip
BINANCE_BAN_AFTER_REJECTIONS = 5  # §1.0: "auto-banned for continuing to send requests after receiving 429"
BINANCE_BAN_SECONDS = 120.0  # §1.0: bans scale "from 2 minutes to 3 days"


def request_costs(venue: str, endpoint: str, params: Mapping[str, str]) -> list[tuple[str, int]]:
    """The (bucket, units) a request consumes."""
    if venue == "binance":
        if endpoint in BINANCE_FUTURES_DATA:
            return [("binance:futures-data", 1)]
        if endpoint == "premiumIndex":
            return [("binance:weight", 1 if params.get("symbol") else 10)]
        return [("binance:weight", BINANCE_WEIGHTS.get(endpoint, 1))]
    if venue == "okx":
        return [(f"okx:{endpoint}", 1)] if f"okx:{endpoint}" in RATE_LIMITS else []
    if venue == "bitget":
        own = [(f"bitget:{endpoint}", 1)] if f"bitget:{endpoint}" in RATE_LIMITS else []
        return [*own, ("bitget:overall", 1)]
    if venue == "strike":
        return [("strike:all", 1)]
    return []


@dataclass(frozen=True)
class Rejection:
    """Why a request was refused: the bucket that is full, seconds until it frees, and whether it is a ban."""

    venue: str
    bucket: str
    limit: Limit | None
    retry_after: int
    banned_until: float | None = None  # monotonic time, set for a Binance ban


class RateLimiter:
    """Sliding-window counters keyed by (client IP, bucket); thread-safe."""

    def __init__(
        self,
        limits: Mapping[str, Limit] | None = None,
        ban_seconds: float = BINANCE_BAN_SECONDS,
        ban_after_rejections: int = BINANCE_BAN_AFTER_REJECTIONS,
    ):
        self.limits = dict(RATE_LIMITS if limits is None else limits)
        self.ban_seconds = ban_seconds
        self.ban_after_rejections = ban_after_rejections
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], deque[tuple[float, int]]] = defaultdict(deque)
        self._rejections: dict[str, deque[float]] = defaultdict(deque)
        self._banned_until: dict[str, float] = {}

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
            self._rejections.clear()
            self._banned_until.clear()

    def _used(self, client: str, bucket: str, now: float) -> int:
        window = self._windows[(client, bucket)]
        horizon = now - self.limits[bucket].window_s
        while window and window[0][0] <= horizon:
            window.popleft()
        return sum(units for _, units in window)

    def _seconds_until_free(self, client: str, bucket: str, units: int, now: float) -> int:
        limit = self.limits[bucket]
        used = self._used(client, bucket, now)
        for stamp, stamp_units in self._windows[(client, bucket)]:
            used -= stamp_units
            if used + units <= limit.capacity:
                return max(1, math.ceil(stamp + limit.window_s - now))
        return max(1, math.ceil(limit.window_s))

    def acquire(
        self, client: str, venue: str, endpoint: str, params: Mapping[str, str], now: float
    ) -> Rejection | None:
        """Count the request, or return why it is refused (nothing is counted then)."""
        costs = [(bucket, units) for bucket, units in request_costs(venue, endpoint, params) if bucket in self.limits]
        with self._lock:
            if venue == "binance":
                banned_until = self._banned_until.get(client)
                if banned_until is not None and banned_until > now:
                    retry = max(1, math.ceil(banned_until - now))
                    return Rejection(venue, "binance:ban", None, retry, banned_until)
            for bucket, units in costs:
                if self._used(client, bucket, now) + units > self.limits[bucket].capacity:
                    rejection = Rejection(venue, bucket, self.limits[bucket],
                                          self._seconds_until_free(client, bucket, units, now))  # fmt: skip
                    return self._maybe_ban(client, rejection, now)
            for bucket, units in costs:
                self._windows[(client, bucket)].append((now, units))
        return None

    def _maybe_ban(self, client: str, rejection: Rejection, now: float) -> Rejection:
        if rejection.venue != "binance" or rejection.limit is None:
            return rejection
        rejected = self._rejections[client]
        rejected.append(now)
        while rejected and rejected[0] <= now - rejection.limit.window_s:
            rejected.popleft()
        if len(rejected) <= self.ban_after_rejections:
            return rejection
        banned_until = now + self.ban_seconds
        self._banned_until[client] = banned_until
        rejected.clear()
        return Rejection("binance", "binance:ban", None, max(1, math.ceil(self.ban_seconds)), banned_until)

    def used(self, client: str, bucket: str, now: float) -> int:
        """Units of ``bucket`` the client has used in the current window (Binance X-MBX-USED-WEIGHT-1M)."""
        with self._lock:
            return self._used(client, bucket, now) if bucket in self.limits else 0
