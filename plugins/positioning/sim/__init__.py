"""Venue simulator: one local HTTP server serving Binance, OKX, Bitget and Strike public endpoints.

Deterministic seeded data (:class:`SimState`), documented rate limits, fault injection and a request log,
for wire tests, the ``positioning sim`` command and benchmarks. Standard library only.
"""

from positioning.sim.faults import FAULT_KINDS
from positioning.sim.limits import RATE_LIMITS, Limit
from positioning.sim.server import VenueSimulator, serve_forever
from positioning.sim.state import STRIKE_MARKETS, SYMBOLS, UNLISTED, SimState

__all__ = [
    "FAULT_KINDS",
    "RATE_LIMITS",
    "STRIKE_MARKETS",
    "SYMBOLS",
    "UNLISTED",
    "Limit",
    "SimState",
    "VenueSimulator",
    "serve_forever",
]
