"""Telegram Bot API ``sendMessage`` (venues.md §5) over the shared HTTP machinery (:mod:`positioning.ingest.http`).

* The bot token is the ``positioning_telegram`` connection's password and the chat id its ``chat_id`` extra
  (``AIRFLOW_CONN_POSITIONING_TELEGRAM='http://:TOKEN@127.0.0.1:9000/?chat_id=42'``); the base URL defaults to
  https://api.telegram.org.
* The token only ever lives in the request path ``/bot<token>/sendMessage``. It is kept out of everything else:
  URLs are redacted before they are logged (also httpx's own "HTTP Request: POST ..." log line, see
  :class:`RedactBotTokenFilter`), responses are not landed as raw files (they are not venue data), error texts
  are scrubbed, and the token is registered with Airflow's secrets masker when one is running.
* Messages use HTML parse mode; escaping and splitting below 4096 UTF-16 code units are
  :mod:`positioning.alerts.render`'s (:func:`~positioning.alerts.render.escape`,
  :func:`~positioning.alerts.render.split_message`).
* Limits: at most 1 message per second and 20 per minute to the chat (the Bot FAQ's numbers); a 429's
  ``parameters.retry_after`` is honoured (up to 60 s), 5xx/timeouts are retried a bounded number of times,
  other 4xx are not. A 400 "message is too long" (it should not happen after splitting) is answered by sending
  the two halves; a 400 "can't parse entities" by sending the text once more without formatting.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from positioning.alerts.render import strip_tags, utf16_units
from positioning.ingest.http import (
    Endpoint,
    EnvelopeError,
    RateLimit,
    RetryPolicy,
    VenueClient,
    redact_text,
)

SEND_MESSAGE = Endpoint("sendMessage", "/bot{token}/sendMessage", {"chat": 1, "chat_minute": 1})
CHAT_LIMITS = {
    "chat": RateLimit(1, 1.0, "venues.md §5: avoid more than one message per second per chat"),
    "chat_minute": RateLimit(20, 60.0, "venues.md §5: not more than 20 messages per minute to the same group"),
}
DEFAULT_RETRY = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=10.0, max_retry_after=60.0)


class TelegramNotConfigured(RuntimeError):
    """No bot token or no chat id: alerts are recorded as not delivered with this message as the reason."""


def telegram_envelope(payload: Any) -> EnvelopeError | None:
    """``{"ok": false, "error_code": 429, "description": ..., "parameters": {"retry_after": 5}}``; ``error_code`` may
    be missing (venues.md §5)."""
    if not isinstance(payload, dict):
        return EnvelopeError("no-envelope", "response is not a Bot API object", retryable=True)
    if payload.get("ok") is True:
        return None
    code = payload.get("error_code")
    description = str(payload.get("description") or "no description")
    parameters = payload.get("parameters") if isinstance(payload.get("parameters"), dict) else {}
    rate_limited = code == 429 or "retry_after" in parameters
    retryable = rate_limited or (isinstance(code, int) and code >= 500)
    return EnvelopeError(str(code if code is not None else "?"), description, retryable, rate_limited)


class RedactBotTokenFilter(logging.Filter):
    """Rewrites log records that contain a ``/bot<token>/`` path (httpx logs every request URL at INFO)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is not ours to fix
            return True
        if "/bot" in message:
            record.msg, record.args = redact_text(message), None
        return True


_FILTER = RedactBotTokenFilter()


def install_log_redaction() -> None:
    """Attach the redacting filter to the loggers that could print a request URL (idempotent)."""
    for name in ("httpx", "httpcore", "httpcore.http11", "httpcore.connection"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def mask_in_airflow_logs(token: str) -> None:
    """Defence in depth: Airflow's secrets masker replaces the token with *** in task logs (when available)."""
    try:
        from airflow.sdk.log import mask_secret
    except Exception:  # pragma: no cover - the library works without Airflow
        return
    with contextlib.suppress(Exception):  # masking is a second line of defence; never fail delivery over it
        mask_secret(token)


@dataclass
class Delivery:
    """What became of one message: ``ok`` and Telegram's ``message_id``, or the (token-free) error."""

    text: str
    ok: bool
    message_id: int | None = None
    error: str | None = None
    attempts: int = 0
    status: int | None = None


def scrub(text: str | None, token: str | None) -> str | None:
    """Remove the token from a text that is about to be stored or logged, whatever its origin."""
    if text is None:
        return None
    text = redact_text(text)
    return text.replace(token, "<redacted>") if token else text


class TelegramBot:
    """Sends messages to one chat: ``await TelegramBot(...).send_all(texts)``."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        chat_id: str | None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        log: Callable[[str], None] | None = None,
    ):
        if not token:
            raise TelegramNotConfigured(
                "no bot token: set the password of the positioning_telegram connection "
                "(AIRFLOW_CONN_POSITIONING_TELEGRAM='https://:<token>@api.telegram.org/?chat_id=<chat>')"
            )
        if not chat_id:
            raise TelegramNotConfigured("no chat id: set chat_id in the extra of the positioning_telegram connection")
        self.base_url = base_url
        self._token = token
        self.chat_id = chat_id
        self.retry = retry or DEFAULT_RETRY
        self.timeout = timeout
        self._transport = transport
        self._log = log or (lambda message: None)
        install_log_redaction()
        mask_in_airflow_logs(token)

    def __repr__(self) -> str:  # never show the token, even in a debugger or a traceback's locals
        return f"TelegramBot(base_url={self.base_url!r}, chat_id={self.chat_id!r})"

    def send_all(self, texts: Sequence[str]) -> list[Delivery]:
        """Send ``texts`` in order (synchronously, for task code); one :class:`Delivery` per text sent."""
        return asyncio.run(self._send_all(texts))

    async def _send_all(self, texts: Sequence[str]) -> list[Delivery]:
        client = VenueClient(
            "telegram",
            self.base_url,
            limits=CHAT_LIMITS,
            envelope_error=telegram_envelope,
            lander=None,  # Bot API responses are not venue data, and their request path holds the token
            retry=self.retry,
            concurrency=1,  # in order, one at a time: the chat sees the messages as written
            timeout=self.timeout,
            transport=self._transport,
            log=lambda message: self._log(scrub(message, self._token) or ""),
        )
        deliveries: list[Delivery] = []
        try:
            async with client:
                for text in texts:
                    parts = await self._send(client, text, depth=0)
                    deliveries.append(_combine(text, parts))
        except Exception as exc:  # httpx errors can carry the URL: record a scrubbed reason, never raise it
            reason = scrub(f"{type(exc).__name__}: {exc}", self._token)
            done = len(deliveries)
            deliveries.extend(Delivery(text, False, error=reason) for text in texts[done:])
        return deliveries

    async def _send(
        self, client: VenueClient, text: str, *, depth: int, parse_mode: str | None = "HTML"
    ) -> list[Delivery]:
        body: dict[str, Any] = {
            "chat_id": self.chat_id,
            "text": text,
            "link_preview_options": {"is_disabled": True},
        }
        if parse_mode:
            body["parse_mode"] = parse_mode
        result = await client.post(SEND_MESSAGE, body, path_params={"token": self._token})
        if result.ok:
            message_id = (result.payload.get("result") or {}).get("message_id")
            return [Delivery(text, True, message_id=message_id, attempts=result.attempts, status=result.status)]
        error = scrub(result.error, self._token) or "unknown error"
        lines = text.split("\n")
        if "message is too long" in error.lower() and len(lines) > 2 and depth < 3:
            # Should not happen (split_message stays below the limit); halve at a line boundary, keep the header.
            header, rest = lines[0], lines[1:]
            middle = len(rest) // 2
            self._log(f"telegram: message of {utf16_units(text)} UTF-16 units too long; sending it in two halves")
            first = await self._send(client, "\n".join([header, *rest[:middle]]), depth=depth + 1)
            second = await self._send(client, "\n".join([header, *rest[middle:]]), depth=depth + 1)
            return first + second
        if "can't parse entities" in error.lower() and parse_mode:
            # A formatting bug must not swallow the alert: send the same words once more as plain text.
            self._log(f"telegram: HTML rejected ({error}); sending as plain text")
            plain = html.unescape(strip_tags(text))
            return await self._send(client, plain, depth=depth + 1, parse_mode=None)
        return [Delivery(text, False, error=error, attempts=result.attempts, status=result.status)]


def _combine(text: str, parts: list[Delivery]) -> Delivery:
    """One outcome per message we meant to send, even when it went out in pieces or as plain text."""
    failed = [part for part in parts if not part.ok]
    return Delivery(
        text,
        ok=not failed,
        message_id=next((part.message_id for part in parts if part.message_id is not None), None),
        error="; ".join(part.error or "unknown error" for part in failed) or None,
        attempts=sum(part.attempts for part in parts),
        status=(failed[0] if failed else parts[-1]).status,
    )
