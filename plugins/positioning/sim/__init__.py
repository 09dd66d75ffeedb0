"""Venue simulator: one local HTTP server serving the registered venues' public endpoints under their real paths.

One module per venue in :mod:`positioning.sim.venues` (wire format, limits, listing, number formats), listed once
by that package's registry; :class:`SimState` is the deterministic market they all serve, with documented rate
limits, fault injection and a request log (:class:`VenueSimulator`), for wire tests, the ``positioning sim``
command and benchmarks. Standard library only.
"""

from positioning.sim.faults import FAULT_KINDS
from positioning.sim.limits import RATE_LIMITS, Limit
from positioning.sim.server import VenueSimulator, free_port, serve_forever
from positioning.sim.state import SYMBOLS, UNLISTED, SimState
from positioning.sim.venues import VENUES, SimVenue

__all__ = [
    "FAULT_KINDS",
    "RATE_LIMITS",
    "SYMBOLS",
    "UNLISTED",
    "VENUES",
    "Limit",
    "SimState",
    "SimVenue",
    "VenueSimulator",
    "free_port",
    "serve_forever",
]
