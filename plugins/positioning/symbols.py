"""The symbol universe: validation of user-supplied base symbols and the bundled default list."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from importlib import resources

BASE_SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{1,20}$")
MAX_SYMBOLS = 200


class SymbolError(ValueError):
    """A user-supplied symbol list is not acceptable; the message names the offending value."""


@cache
def default_symbols() -> tuple[str, ...]:
    """The bundled top-50 majors (``positioning/data/top50.txt``)."""
    text = resources.files("positioning").joinpath("data/top50.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def split_symbols(values: Iterable[str]) -> list[str]:
    """Command-line symbols: ``BTC ETH``, ``BTC,ETH`` and ``"BTC, ETH"`` all give ``["BTC", "ETH"]``."""
    return [part for value in values for part in re.split(r"[\s,]+", value) if part]


def normalise_symbols(symbols: Iterable[object] | None, *, max_count: int = MAX_SYMBOLS) -> list[str]:
    """Upper-case, validate and de-duplicate base symbols (order kept); empty means the default list.

    Nothing user-supplied reaches a URL path or query unless it matches ``^[A-Z0-9]{1,20}$``.
    """
    if symbols is None:
        return list(default_symbols())
    if isinstance(symbols, str):
        raise SymbolError('symbols must be a list of base symbols such as ["BTC", "ETH"], not a string')
    result: list[str] = []
    seen: set[str] = set()
    for position, raw in enumerate(symbols):
        if not isinstance(raw, str):
            raise SymbolError(f"symbols[{position}] must be a string, got {type(raw).__name__}")
        symbol = raw.strip().upper()
        if not BASE_SYMBOL_PATTERN.fullmatch(symbol):
            raise SymbolError(
                f"symbols[{position}] = {raw[:40]!r} is not a base symbol: use 1-20 letters or digits, e.g. BTC"
            )
        if symbol not in seen:
            seen.add(symbol)
            result.append(symbol)
        if len(result) > max_count:
            raise SymbolError(f"symbols has more than {max_count} entries; split the universe or raise the limit")
    return result or list(default_symbols())
