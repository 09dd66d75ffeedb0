"""The venue registry: the one place that says which venues exist, in which order.

Built-in adapters are imported explicitly (the import graph shows them); adapters installed by other packages
are found through the ``positioning.venues`` entry-point group (``name = "package.module:SPEC"``), and a test
can :func:`register` one at run time. Everything that iterates over venues (the DAG's tasks and params, the
extract runner, normalising, the bulk fill, the SQL models' venue columns, the CLI, the dashboard) asks here.
The order is the order of the marts' venue columns: built-ins first, then registrations.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from positioning.venues import binance, bitget, bybit, hyperliquid, okx, strike
from positioning.venues.base import VenueSpec

ENTRY_POINT_GROUP = "positioning.venues"

_specs: dict[str, VenueSpec] = {
    spec.name: spec for spec in (binance.SPEC, okx.SPEC, bitget.SPEC, strike.SPEC, bybit.SPEC, hyperliquid.SPEC)
}


class UnknownVenueError(ValueError):
    """A venue name that no adapter declares; the message lists the known ones."""


@cache
def _load_entry_points() -> None:
    for point in entry_points(group=ENTRY_POINT_GROUP):
        spec = point.load()
        if isinstance(spec, VenueSpec) and spec.name not in _specs:
            _specs[spec.name] = spec


def specs() -> tuple[VenueSpec, ...]:
    _load_entry_points()
    return tuple(_specs.values())


def names() -> tuple[str, ...]:
    return tuple(spec.name for spec in specs())


def get(name: str) -> VenueSpec:
    _load_entry_points()
    try:
        return _specs[name]
    except KeyError:
        raise UnknownVenueError(f"unknown venue {str(name)[:40]!r}: use one of {', '.join(names())}") from None


def history_names() -> tuple[str, ...]:
    """The venues whose past buckets the bulk fill can ask for."""
    return tuple(spec.name for spec in specs() if spec.has_history)


def register(spec: VenueSpec) -> None:
    """Add an adapter (a plugin or a test); a name already registered is an error."""
    _load_entry_points()
    if spec.name in _specs:
        raise ValueError(f"venue {spec.name!r} is already registered")
    _specs[spec.name] = spec


def unregister(name: str) -> None:
    """Remove a venue added with :func:`register` (tests clean up with it)."""
    _specs.pop(name, None)
