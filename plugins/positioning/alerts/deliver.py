"""Delivery: a run's alerts, rendered and batched, sent through the Telegram client; one :class:`Outcome` each.

The bot token and chat id come from the ``positioning_telegram`` connection. Never raises: a missing or unusable
connection, or Telegram being down, is an outcome (not delivered, with a reason from which the token is scrubbed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from positioning.alerts.render import render_messages
from positioning.alerts.rules import AlertEvent

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("positioning")


@dataclass
class Outcome:
    """What became of one alert (a row of ``ops.alerts``)."""

    delivered: bool
    error: str | None = None
    message_id: int | None = None
    http_attempts: int = 0
    sent_at: datetime | None = None


def deliver(
    ts: datetime,
    events: list[AlertEvent],
    *,
    backfill: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    log_line: Callable[[str], None] = log.info,
) -> tuple[list[Outcome], list[str]]:
    """Send the events batched; one :class:`Outcome` per event (and the texts sent). Never raises."""
    from positioning import connections
    from positioning.alerts.telegram import TelegramBot, TelegramNotConfigured, scrub

    messages = render_messages(ts, events, backfill=backfill)
    outcomes = [Outcome(False, "not attempted") for _ in events]
    token: str | None = None
    try:
        endpoint = connections.resolve("telegram")
        token = endpoint.password
        bot = TelegramBot(endpoint.base_url, token, (endpoint.extra or {}).get("chat_id"), transport=transport)
    except TelegramNotConfigured as exc:
        reason = f"not delivered: {exc}"
        log_line(f"alerts: {reason}")
        return [Outcome(False, reason) for _ in events], [text for text, _ in messages]
    except Exception as exc:  # a malformed connection must not fail the run; its text may hold the token
        reason = f"not delivered: the positioning_telegram connection is unusable ({scrub(str(exc), token)})"
        log_line(f"alerts: {reason}")
        return [Outcome(False, reason) for _ in events], [text for text, _ in messages]
    log_line(f"alerts: sending {len(events)} alerts in {len(messages)} message(s) via {bot.base_url}")
    deliveries = bot.send_all([text for text, _ in messages])
    for (_, indices), delivery in zip(messages, deliveries, strict=True):
        sent_at = datetime.now(UTC).replace(tzinfo=None)
        for i in indices:
            outcomes[i] = Outcome(
                delivery.ok,
                None if delivery.ok else scrub(delivery.error, token),
                delivery.message_id,
                delivery.attempts,
                sent_at if delivery.ok else None,
            )
        status = "delivered" if delivery.ok else f"NOT delivered ({scrub(delivery.error, token)})"
        log_line(f"alerts: message with {len(indices)} alerts {status}")
    return outcomes, [text for text, _ in messages]
