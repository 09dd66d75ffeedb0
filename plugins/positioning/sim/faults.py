"""Fault injection: a registry of faults matched per (venue, endpoint, symbol) and the body transforms.

A fault matches a request when its venue equals the request's, its endpoint is None or equal, and its symbol is
None or names the request's symbol (base symbol or instrument id). Faults that rewrite data rows
(``missing_field``, ``rename_field``, ``override``) also match all-symbol requests and then touch only the rows
of their symbol. ``times=N`` makes a fault expire after the first N matching requests. Besides the kinds below,
a venue may declare its own (``SimVenue.fault_kinds``), valid only for that venue.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from positioning.sim import venues

# Kinds every venue accepts; the server applies them through the venue's envelope hooks.
GENERIC_FAULT_KINDS: dict[str, str] = {
    "status": "HTTP error: status=, optional body=, retry_after= (429/418 default 1/120 s; None = no header)",
    "latency": "sleep seconds= before answering normally",
    "timeout": "sleep seconds= (default 30) before answering; the client is expected to time out first",
    "connection_reset": "close the socket with SO_LINGER 0 (TCP RST) without any response",
    "malformed_json": "HTTP 200 with the JSON body (or the file) cut in half",
    "html_error": "an HTML page like a CDN error, status= (default 502)",
    "missing_field": "remove field= from every data row",
    "rename_field": "rename field= to to= in every data row",
    "empty_data": "the venue's envelope with no data rows",
    "error_envelope": "the venue's error envelope code=, msg= with status= (default 200)",
    "override": "set field= (or index= for array rows) to value= on the data rows",
    "duplicate_rows": "repeat every data row (with field= and value=: the repeats carry that value instead)",
}
# Every kind of the built-in venues, for documentation (``positioning.sim.FAULT_KINDS``).
FAULT_KINDS: dict[str, str] = {
    **GENERIC_FAULT_KINDS,
    **{kind: text for venue in venues.all() for kind, text in venue.fault_kinds.items()},
}
ROW_FAULTS = frozenset({"missing_field", "rename_field", "override"})
_REQUIRED_OPTIONS = {
    "status": ("status",),
    "missing_field": ("field",),
    "rename_field": ("field", "to"),
    "override": ("value",),
}


@dataclass
class Fault:
    id: int
    venue: str
    endpoint: str | None
    kind: str
    symbol: str | None = None
    times: int | None = None  # remaining matches; None = forever
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultBook:
    """Thread-safe registry of active faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(
        self,
        venue: str,
        endpoint: str | None = None,
        kind: str = "status",
        symbol: str | None = None,
        times: int | None = None,
        **options: Any,
    ) -> int:
        rules = venues.get(venue)  # UnknownVenueError (a ValueError) for a venue nobody registered
        kinds = {**GENERIC_FAULT_KINDS, **rules.fault_kinds}
        if kind not in kinds:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(kinds)}")
        required = {**_REQUIRED_OPTIONS, **rules.fault_options}
        missing = [name for name in required.get(kind, ()) if name not in options]
        if kind == "override" and "field" not in options and "index" not in options:
            missing.append("field or index")
        if missing:
            raise ValueError(f"fault kind {kind!r} needs {', '.join(missing)}")
        if times is not None and int(times) < 1:
            raise ValueError("times must be None (forever) or >= 1")
        with self._lock:
            fault = Fault(next(self._ids), venue, endpoint, kind, symbol, None if times is None else int(times),
                          dict(options))  # fmt: skip
            self._faults.append(fault)
            return fault.id

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def take(
        self, venue: str, endpoint: str, request_symbol: str | None, same_symbol: Callable[[str, str], bool]
    ) -> list[Fault]:
        """The faults matching a request (copies), counting one use of each ``times``-limited fault."""
        matched: list[Fault] = []
        with self._lock:
            for fault in self._faults:
                if fault.venue != venue or fault.endpoint not in (None, endpoint):
                    continue
                if fault.symbol is not None:
                    if request_symbol is None:
                        if fault.kind not in ROW_FAULTS:
                            continue
                    elif not same_symbol(fault.symbol, request_symbol):
                        continue
                matched.append(copy.deepcopy(fault))
                if fault.times is not None:
                    fault.times -= 1
            self._faults = [f for f in self._faults if f.times is None or f.times > 0]
        return matched


def apply_row_fault(fault: Fault, rows: list, row_selected: Callable[[Any], bool]) -> None:
    """Rewrite the data rows in place for ``missing_field``, ``rename_field`` and ``override``."""
    targets = [row for row in rows if row_selected(row)]
    options = fault.options
    if fault.kind == "missing_field":
        for row in targets:
            if isinstance(row, dict):
                row.pop(options["field"], None)
    elif fault.kind == "rename_field":
        for row in targets:
            if isinstance(row, dict) and options["field"] in row:
                row[options["to"]] = row.pop(options["field"])
    elif fault.kind == "override":
        if "index" in options:
            index = int(options["index"])
            for row in targets:
                if isinstance(row, list) and -len(row) <= index < len(row):
                    row[index] = options["value"]
            return
        name = options["field"]
        dict_rows = [row for row in targets if isinstance(row, dict)]
        holders = [row for row in dict_rows if name in row] or dict_rows  # add the field if no row has it
        for row in holders:
            row[name] = options["value"]
