"""Rate limiting: each venue's documented public limits, enforced per client IP with sliding windows.

The limits themselves are declared by the venues (``SimVenue.limits``, ``request_costs``, ``ban``); this module
counts. A request is counted when it is received; a rejected request is not counted (it consumed nothing) but a
venue that bans remembers it: a client that keeps sending after rejections is banned (HTTP 418) like the real
venue does.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict, deque
from collections.abc import Mapping

from positioning.sim import venues
from positioning.sim.venues.base import Limit, Rejection, SimVenue

__all__ = ["RATE_LIMITS", "Limit", "RateLimiter", "Rejection"]

# The built-in venues' limits in one table keyed "<venue>:<bucket>"; sources are sections of /work/shared/venues.md.
RATE_LIMITS: dict[str, Limit] = venues.rate_limits()


class RateLimiter:
    """Sliding-window counters keyed by (client IP, "<venue>:<bucket>"); thread-safe.

    ``limits`` replaces the registered venues' table (None = :func:`positioning.sim.venues.rate_limits` now);
    ``ban_seconds``/``ban_after_rejections`` override every banning venue's own :class:`~.base.Ban` values.
    """

    def __init__(
        self,
        limits: Mapping[str, Limit] | None = None,
        ban_seconds: float | None = None,
        ban_after_rejections: int | None = None,
    ):
        self.limits = dict(venues.rate_limits() if limits is None else limits)
        self.ban_seconds = ban_seconds
        self.ban_after_rejections = ban_after_rejections
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], deque[tuple[float, int]]] = defaultdict(deque)
        self._rejections: dict[tuple[str, str], deque[float]] = defaultdict(deque)  # (client, venue)
        self._banned_until: dict[tuple[str, str], float] = {}  # (client, venue)

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
        self, client: str, venue: SimVenue, endpoint: str, params: Mapping[str, str], now: float
    ) -> Rejection | None:
        """Count the request, or return why it is refused (nothing is counted then)."""
        costs = [(f"{venue.name}:{bucket}", units) for bucket, units in venue.request_costs(endpoint, params)]
        costs = [(bucket, units) for bucket, units in costs if bucket in self.limits]
        with self._lock:
            if venue.ban is not None:
                banned_until = self._banned_until.get((client, venue.name))
                if banned_until is not None and banned_until > now:
                    retry = max(1, math.ceil(banned_until - now))
                    return Rejection(venue.name, f"{venue.name}:ban", None, retry, banned_until)
            for bucket, units in costs:
                if self._used(client, bucket, now) + units > self.limits[bucket].capacity:
                    rejection = Rejection(venue.name, bucket, self.limits[bucket],
                                          self._seconds_until_free(client, bucket, units, now))  # fmt: skip
                    return self._maybe_ban(client, venue, rejection, now)
            for bucket, units in costs:
                self._windows[(client, bucket)].append((now, units))
        return None

    def _maybe_ban(self, client: str, venue: SimVenue, rejection: Rejection, now: float) -> Rejection:
        if venue.ban is None or rejection.limit is None:
            return rejection
        rejected = self._rejections[(client, venue.name)]
        rejected.append(now)
        while rejected and rejected[0] <= now - rejection.limit.window_s:
            rejected.popleft()
        after = venue.ban.after_rejections if self.ban_after_rejections is None else self.ban_after_rejections
        if len(rejected) <= after:
            return rejection
        seconds = venue.ban.seconds if self.ban_seconds is None else self.ban_seconds
        banned_until = now + seconds
        self._banned_until[(client, venue.name)] = banned_until
        rejected.clear()
        return Rejection(venue.name, f"{venue.name}:ban", None, max(1, math.ceil(seconds)), banned_until)

    def used(self, client: str, bucket: str, now: float) -> int:
        """Units of ``bucket`` ("<venue>:<bucket>") the client has used in the current window."""
        with self._lock:
            return self._used(client, bucket, now) if bucket in self.limits else 0
