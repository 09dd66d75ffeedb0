"""Rendering: one HTML line per alert and the run's messages, each below Telegram's 4096-unit limit.

Messages use Telegram's HTML parse mode: every dynamic value goes through :func:`escape`. Telegram counts a
message's length in UTF-16 code units ("1-4096 characters after entities parsing"); it is counted here before
parsing (:func:`utf16_units`), so markup only ever makes a message shorter than we think. :func:`split_message`
and :func:`pack_lines` split at line boundaries; :func:`fit_line` is the last resort for a single over-long line.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from positioning.alerts.rules import OPERATIONAL_FAMILIES, AlertEvent, format_number

MAX_MESSAGE_UNITS = 4096  # "1-4096 characters after entities parsing"; counted here in UTF-16 units, before parsing
MAX_DETAIL = 300  # characters of an error text quoted in a message (messages stay short; the log has the rest)
SIGNAL_MEANING = {
    "CASCADE_DOWN_RISK": "large OI and extreme long: primed for a downside cascade",
    "SQUEEZE_RISK": "large OI and extreme short: primed for a short squeeze",
    "SHORT_CAPITULATION": "OI dropping while price rises: shorts capitulating",
    "BUILDUP": "OI rising with a flat price: both sides loading up",
}
_TAG = re.compile(r"<[^>]+>")

# ------------------------------------------------------------------------------------------ Telegram HTML text


def escape(value: object) -> str:
    """``<``, ``>`` and ``&`` as HTML entities (and quotes, harmless and safe inside attributes)."""
    return html.escape(str(value), quote=True)


def strip_tags(text: str) -> str:
    """``text`` without its markup (entities left as they are)."""
    return _TAG.sub("", text)


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def fit_line(line: str, units: int) -> str:
    """``line`` if it fits in ``units`` UTF-16 units, else its text (markup dropped, so no tag is left open) cut
    short with an ellipsis. Callers keep lines far below the limit; this is the last resort."""
    if utf16_units(line) <= units:
        return line
    return _cut_to_units(strip_tags(line), units - 1) + "…"


def pack_lines(lines: Sequence[str], *, header: str = "", limit: int = MAX_MESSAGE_UNITS) -> list[list[int]]:
    """Group line indices into as few messages as possible, in order, breaking only between lines, so that
    ``header`` + the lines (newline-separated) stay within ``limit`` UTF-16 units. Lines must already fit
    (:func:`fit_line`)."""
    groups: list[list[int]] = []
    current: list[int] = []
    size = utf16_units(header)
    for index, line in enumerate(lines):
        added = utf16_units(line) + (1 if header or current else 0)
        if current and size + added > limit:
            groups.append(current)
            current, size = [], utf16_units(header)
            added = utf16_units(line) + (1 if header else 0)
        current.append(index)
        size += added
    if current:
        groups.append(current)
    return groups


def split_message(lines: Sequence[str], *, header: str = "", limit: int = MAX_MESSAGE_UNITS) -> list[str]:
    """The messages of :func:`pack_lines`, each starting with ``header``; over-long lines are cut to fit."""
    room = limit - utf16_units(header) - (1 if header else 0)
    fitted = [fit_line(line, room) for line in lines]
    return [
        "\n".join(([header] if header else []) + [fitted[i] for i in group])
        for group in pack_lines(fitted, header=header, limit=limit)
    ]


def _cut_to_units(text: str, units: int) -> str:
    out, used = [], 0
    for char in text:
        width = 2 if ord(char) > 0xFFFF else 1
        if used + width > units:
            break
        out.append(char)
        used += width
    result = "".join(out)
    # never leave half an entity such as "&am" behind
    amp = result.rfind("&")
    if amp != -1 and ";" not in result[amp:]:
        result = result[:amp]
    return result


# -------------------------------------------------------------------------------------------------- alert lines


def _ratio(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}"


def _clip(text: Any, limit: int = MAX_DETAIL) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_line(event: AlertEvent) -> str:
    """One HTML line per alert; every dynamic value escaped."""
    c, kind, scope = event.context, event.kind, escape(event.scope)
    t = format_number(event.rule.threshold) if event.rule.threshold is not None else ""
    was = f" (was {_ratio(c.get('previous_ratio'))})" if c.get("previous_ratio") is not None else ""
    if kind in ("ls_cross_above", "ls_cross_below"):
        arrow, word = ("▲", "above") if kind == "ls_cross_above" else ("▼", "below")
        return f"{arrow} <b>{scope}</b> avg L/S <b>{_ratio(event.value)}</b> crossed {word} {t}{was}"
    if kind == "heavy_long":
        return f"▲ <b>{scope}</b> heavy long: avg L/S <b>{_ratio(event.value)}</b> ≥ {t}{was}"
    if kind == "heavy_short":
        return f"▼ <b>{scope}</b> heavy short: avg L/S <b>{_ratio(event.value)}</b> ≤ {t}{was}"
    if kind in ("extreme_long", "extreme_short"):
        arrow = "▲" if kind == "extreme_long" else "▼"
        previous = c.get("previous_label")
        since = f", was {escape(previous)}" if previous else ""
        return f"{arrow} <b>{scope}</b> now <b>{escape(c.get('label'))}</b> (avg L/S {_ratio(event.value)}{since})"
    if kind.startswith("signal_"):
        name = event.rule.name.split(":", 1)[1]
        score = f" (score {event.value:.2f})" if event.value is not None else ""
        return f"⚡ <b>{scope}</b> {escape(name)}{score}: {escape(SIGNAL_MEANING.get(name, ''))}"
    if kind == "venue_failing":
        error = f": {escape(_clip(c['error']))}" if c.get("error") else ""
        streak = c.get("streak") or 0
        runs = "run" if streak == 1 else "runs"
        return f"⚠️ venue <b>{escape(c.get('venue'))}</b> failed {streak} {runs} in a row{error}"
    if kind == "venue_recovered":
        held = c.get("held_value")
        after = f" after {held:.0f} failed runs" if held else ""
        return f"✅ venue <b>{escape(c.get('venue'))}</b> recovered{after}"
    if kind == "quality_blocked":
        detail = f": {escape(_clip(c['detail']))}" if c.get("detail") else ""
        return f"⛔ quality gate <b>blocked</b> publication of this interval{detail}"
    if kind == "quality_recovered":
        return "✅ quality gate passed again: the interval was published"
    if kind == "load_failed":
        return "⛔ load <b>failed</b>: nothing published for this interval (see the load task's log)"
    if kind == "load_recovered":
        return "✅ load succeeded again: the interval was published"
    return f"{escape(kind)} {scope}"  # pragma: no cover - every kind above


def render_messages(ts: datetime, events: list[AlertEvent], *, backfill: bool = False) -> list[tuple[str, list[int]]]:
    """The run's messages: (HTML text, indices of the events it carries). Operational alerts first."""
    stamp = ts.strftime("%Y-%m-%d %H:%M UTC")
    header = f"<b>positioning alerts</b> · {escape(stamp)}" + (" · backfill" if backfill else "")
    order = sorted(range(len(events)), key=lambda i: (0 if events[i].rule.family in OPERATIONAL_FAMILIES else 1, i))
    reserve = 12  # for " (12/34)" added to the header of a split batch
    room = MAX_MESSAGE_UNITS - reserve - utf16_units(header) - 1
    lines = [fit_line(render_line(events[i]), room) for i in order]
    groups = pack_lines(lines, header=header, limit=MAX_MESSAGE_UNITS - reserve)
    messages = []
    for number, group in enumerate(groups, 1):
        head = header + (f" ({number}/{len(groups)})" if len(groups) > 1 else "")
        messages.append(("\n".join([head, *(lines[i] for i in group)]), [order[i] for i in group]))
    return messages
