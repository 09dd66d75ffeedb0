"""The simulator's venue registry: the one place that lists the simulated venues, one module each.

The built-in venues mirror the product's adapters (``positioning.venues``) in the same order. A test can
:func:`register` a :class:`~positioning.sim.venues.base.SimVenue` of its own: the same
:class:`~positioning.sim.server.VenueSimulator` then routes its paths, enforces its limits, accepts faults for it,
and :class:`~positioning.sim.state.SimState` prices its listing. Everything else in ``positioning.sim`` asks here
for venue names and rules instead of naming venues.
"""

from __future__ import annotations

from typing import Any

from positioning.sim.venues import binance, bitget, bybit, hyperliquid, okx, strike
from positioning.sim.venues.base import Instrument, Limit, Reply, Request, SimVenue, VenueError

_BUILT_IN: tuple[SimVenue, ...] = (binance.VENUE, okx.VENUE, bitget.VENUE, strike.VENUE, bybit.VENUE, hyperliquid.VENUE)
VENUES: tuple[str, ...] = tuple(venue.name for venue in _BUILT_IN)

# Replaced, never mutated, on (un)registration: server threads may be iterating over it meanwhile.
_registered: dict[str, SimVenue] = {venue.name: venue for venue in _BUILT_IN}


class UnknownVenueError(KeyError, ValueError):
    """A venue name nobody registered (a KeyError for lookups, a ValueError for argument checks)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def get(name: str) -> SimVenue:
    """The registered venue called ``name``; :class:`UnknownVenueError` otherwise."""
    try:
        return _registered[name]
    except (KeyError, TypeError):
        raise UnknownVenueError(f"unknown venue {name!r}; expected one of {names()}") from None


def all() -> tuple[SimVenue, ...]:  # shadows the builtin inside this module only; callers write venues.all()
    """Every registered venue: the built-ins in :data:`VENUES` order, then registrations in order."""
    return tuple(_registered.values())


def names() -> tuple[str, ...]:
    return tuple(_registered)


def register(venue: SimVenue) -> SimVenue:
    """Add a venue (a test's); its name must be new and none of its paths may be served already."""
    global _registered
    if not venue.name:
        raise ValueError("a simulated venue needs a name")
    if venue.name in _registered:
        raise ValueError(f"venue {venue.name!r} is already registered")
    taken = [path for path in venue.routes if route(path) is not None]
    if taken:
        raise ValueError(f"paths already served by another venue: {taken}")
    _registered = {**_registered, venue.name: venue}
    return venue


def unregister(name: str) -> None:
    """Remove a registered venue; the built-ins stay."""
    global _registered
    if name in VENUES:
        raise ValueError(f"{name!r} is built in and cannot be unregistered")
    get(name)
    _registered = {key: venue for key, venue in _registered.items() if key != name}


def route(path: str) -> tuple[SimVenue, str, str | None] | None:
    """(venue, endpoint, symbol carried in the path) for a request path, or None when no venue serves it."""
    for venue in _registered.values():
        found = venue.route(path)
        if found:
            return venue, found[0], found[1]
    return None


def route_request(method: str, path: str, body: Any) -> tuple[SimVenue, str, str | None] | None:
    """:func:`route` for a request with its method and decoded JSON body (a venue's POST read)."""
    for venue in _registered.values():
        found = venue.route_request(method, path, body)
        if found:
            return venue, found[0], found[1]
    return None


def rate_limits() -> dict[str, Limit]:
    """Every registered venue's limits keyed ``"<venue>:<bucket>"``."""
    return {f"{venue.name}:{bucket}": limit for venue in _registered.values() for bucket, limit in venue.limits.items()}


__all__ = [
    "VENUES",
    "Instrument",
    "Limit",
    "Reply",
    "Request",
    "SimVenue",
    "UnknownVenueError",
    "VenueError",
    "all",
    "get",
    "names",
    "rate_limits",
    "register",
    "route",
    "route_request",
    "unregister",
]
