"""Rate limits as venues document them, and the limiter that holds them.

A slot is timed from the moment its response arrived (``release``), not when the request left, so a venue's
server can never count more than the limit in any window, whatever the network jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` (weight units) in any window of ``seconds``, as a venue documents it."""

    requests: int
    seconds: float
    source: str = ""  # where the number comes from (venues.md section)


class SlidingWindowLimiter:
    """Sliding-window limiter whose slots are timed by response arrival (see module docstring)."""

    def __init__(self, limit: RateLimit, name: str = ""):
        self.limit = limit
        self.name = name
        self._released: deque[tuple[float, int]] = deque()  # (monotonic release time, weight)
        self._in_flight = 0
        self._condition: asyncio.Condition | None = None

    def _cond(self) -> asyncio.Condition:
        if self._condition is None:
            self._condition = asyncio.Condition()
        return self._condition

    def _used(self, now: float) -> int:
        horizon = now - self.limit.seconds
        while self._released and self._released[0][0] <= horizon:
            self._released.popleft()
        return self._in_flight + sum(weight for _, weight in self._released)

    async def acquire(self, weight: int = 1) -> None:
        if weight > self.limit.requests:
            raise ValueError(f"weight {weight} exceeds the limit {self.limit} of {self.name}")
        condition = self._cond()
        async with condition:
            while True:
                now = time.monotonic()
                if self._used(now) + weight <= self.limit.requests:
                    self._in_flight += weight
                    return
                wait = (self._released[0][0] + self.limit.seconds - now) if self._released else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(condition.wait(), timeout=wait)

    async def release(self, weight: int = 1) -> None:
        condition = self._cond()
        async with condition:
            self._in_flight -= weight
            self._released.append((time.monotonic(), weight))
            condition.notify_all()
