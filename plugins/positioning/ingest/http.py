"""Shared HTTP machinery for every venue: rate limits, bounded concurrency, retries, landing.

Venue modules describe their endpoints (:class:`Endpoint`) and their error envelope (an ``envelope_error``
function); this module does the rest, once:

* every request passes the sliding-window limiters of the groups its endpoint belongs to (documented limits);
  a slot is timed from the moment its response arrived, so the server can never count more than the limit in
  any window, whatever the network jitter;
* at most ``concurrency`` requests are in flight per venue;
* 429/418/5xx/408, timeouts, connection errors and malformed bodies are retried with exponential backoff and
  full jitter, honouring ``Retry-After`` and Telegram-style ``parameters.retry_after``; a 429 pauses the whole
  venue, not just the request that saw it;
* 451 geo-blocks, other 4xx and non-retryable envelope codes (invalid symbol...) are not retried;
* error envelopes sent with HTTP 200 (OKX ``code != "0"``, Bitget ``code != "00000"``) are detected;
* every attempt, successful or not, is landed as a raw file before anything else looks at it;
* an endpoint declared as a POST of a JSON body (Hyperliquid's ``POST /info {"type": ...}``) is sent as declared by
  :meth:`VenueClient.get`, and its body is landed with the response (``request_body``), so a raw file says what
  was asked however the venue names it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from positioning.ingest.endpoints import Endpoint, EnvelopeError, FetchResult
from positioning.ingest.limits import RateLimit, SlidingWindowLimiter
from positioning.ingest.raw import RawLander

USER_AGENT = "positioning/0.1 (+https://github.com/positioning)"
LANDED_HEADERS = (
    "content-type",
    "retry-after",
    "x-mbx-used-weight-1m",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "date",
    "last-modified",  # a file's version (the Binance archive re-uploads fixed days)
    "etag",
)
_SECRET_PATH = re.compile(r"/bot[^/]+/")
_SECRET_PARAMS = {"token", "key", "apikey", "api_key", "secret", "signature", "password"}


def redact_url(url: str) -> str:
    """The URL with bot tokens and secret-looking query parameters replaced, safe to log and land."""
    url = _SECRET_PATH.sub("/bot<redacted>/", url)
    if "?" not in url:
        return url
    base, _, query = url.partition("?")
    parts = []
    for pair in query.split("&"):
        name, sep, _value = pair.partition("=")
        parts.append(f"{name}{sep}<redacted>" if name.lower() in _SECRET_PARAMS else pair)
    return f"{base}?{'&'.join(parts)}"


def redact_text(text: str) -> str:
    """Free text (an exception message, a log line) with any ``/bot<token>/`` URL path redacted."""
    return _SECRET_PATH.sub("/bot<redacted>/", text)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0  # a longer Retry-After (a multi-minute ban) fails fast instead of waiting
    seed: int | None = None


@dataclass(frozen=True)
class _Verdict:
    ok: bool
    retryable: bool
    reason: str | None
    payload: Any
    retry_after: float | None
    pause_venue: bool = False


EnvelopeCheck = Callable[[Any], EnvelopeError | None]


def _retry_after_seconds(headers: httpx.Headers, payload: Any) -> float | None:
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError):
                pass
    if isinstance(payload, dict):
        parameters = payload.get("parameters")
        if isinstance(parameters, dict) and isinstance(parameters.get("retry_after"), int | float):
            return float(parameters["retry_after"])
    return None


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def classify_response(
    venue: str,
    status: int,
    headers: httpx.Headers,
    body: bytes,
    envelope_error: EnvelopeCheck,
    body_format: str = "json",
) -> _Verdict:
    """Decide success, retry or give up for one HTTP response. A ``bytes`` endpoint (a file) succeeds with its
    body as the payload; its errors are the HTTP status alone (a 404 is "no such file", not retried)."""
    if body_format == "bytes":
        return _file_verdict(status, headers, body)
    try:
        payload = json.loads(body) if body else None
        decoded = True
    except ValueError:
        payload, decoded = None, False
    retry_after = _retry_after_seconds(headers, payload)
    envelope = envelope_error(payload) if decoded else None
    detail = (
        f"{envelope.code} {envelope.message}".strip()
        if envelope
        else (_short(body.decode("utf-8", "replace")) if body else "empty body")
    )
    if status == 451:
        return _Verdict(
            False,
            False,
            f"HTTP 451 geo-blocked: {detail}. Run from an allowed location or disable {venue} for this run.",
            payload,
            None,
        )
    if status in (429, 418):
        kind = "rate limited" if status == 429 else "IP banned"
        return _Verdict(False, True, f"HTTP {status} {kind}: {detail}", payload, retry_after, pause_venue=True)
    if status >= 500 or status == 408:
        return _Verdict(False, True, f"HTTP {status}: {detail}", payload, retry_after)
    if status >= 400:
        retryable = bool(envelope and envelope.retryable)
        return _Verdict(False, retryable, f"HTTP {status}: {detail}", payload, retry_after)
    if not decoded:
        return _Verdict(False, True, f"HTTP {status} with a body that is not JSON: {detail}", None, retry_after)
    if envelope is not None:
        return _Verdict(
            False,
            envelope.retryable,
            f"HTTP {status} error envelope: {detail}",
            payload,
            retry_after,
            pause_venue=envelope.rate_limited,
        )
    return _Verdict(True, False, None, payload, None)


def _file_verdict(status: int, headers: httpx.Headers, body: bytes) -> _Verdict:
    """A file download's outcome: 2xx is the file; 403 (S3/CloudFront's transient AccessDenied), 408, 429 and 5xx
    are retried; anything else (404 NoSuchKey) is final."""
    if 200 <= status < 300:
        return _Verdict(True, False, None, body, None)
    retry_after = _retry_after_seconds(headers, None)
    detail = _short(body.decode("utf-8", "replace")) if body else "empty body"
    retryable = status in (403, 408, 429) or status >= 500
    return _Verdict(False, retryable, f"HTTP {status}: {detail}", None, retry_after, pause_venue=status == 429)


class VenueClient:
    """An async HTTP client for one venue: ``async with VenueClient(...) as client: await client.get(...)``."""

    def __init__(
        self,
        venue: str,
        base_url: str,
        *,
        limits: Mapping[str, RateLimit],
        envelope_error: EnvelopeCheck,
        lander: RawLander | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int = 8,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        log: Callable[[str], None] | None = None,
    ):
        self.venue = venue
        self.base_url = base_url.rstrip("/")
        self.limiters = {group: SlidingWindowLimiter(limit, f"{venue}:{group}") for group, limit in limits.items()}
        self.envelope_error = envelope_error
        self.lander = lander
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._concurrency = concurrency
        self._semaphore: asyncio.Semaphore | None = None
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._paused_until = 0.0
        self._writer: ThreadPoolExecutor | None = None
        self._random = random.Random(self.retry.seed)
        self._log = log or (lambda message: None)
        self.requests_sent = 0
        self.status_counts: dict[str, int] = {}

    async def __aenter__(self) -> VenueClient:
        self._semaphore = asyncio.Semaphore(self._concurrency)
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(self.timeout),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            transport=self._transport,
            limits=httpx.Limits(max_connections=self._concurrency, max_keepalive_connections=self._concurrency),
        )
        # One writer thread per client: files land one at a time in response order (a crash leaves at most one
        # file under its temporary name), and the fsync never holds up the event loop.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"land-{self.venue}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._writer is not None:
            self._writer.shutdown(wait=True)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
        return self._random.uniform(ceiling / 2, ceiling)

    async def _wait_for_pause(self) -> None:
        while (remaining := self._paused_until - time.monotonic()) > 0:
            await asyncio.sleep(remaining)

    async def get(
        self,
        endpoint: Endpoint,
        params: Mapping[str, Any] | None = None,
        *,
        symbol: str | None = None,
        path_params: Mapping[str, str] | None = None,
    ) -> FetchResult:
        """Call an endpoint the way it is declared (a GET with query ``params``; a POST endpoint sends its
        declared JSON ``body``, landed in the raw file's metadata) with retries. Never raises for HTTP or network
        trouble: the result says what happened. Plans and paginators call every endpoint through here."""
        if endpoint.method == "GET":
            return await self.request("GET", endpoint, params, symbol=symbol, path_params=path_params)
        return await self.request(
            endpoint.method,
            endpoint,
            params,
            json_body=dict(endpoint.request_body or {}),
            land_body=True,
            symbol=symbol,
            path_params=path_params,
        )

    async def post(
        self,
        endpoint: Endpoint,
        json_body: Any,
        *,
        symbol: str | None = None,
        path_params: Mapping[str, str] | None = None,
    ) -> FetchResult:
        """POST a JSON body with the same limits and retries as :meth:`get` (the Telegram Bot API sends this way).
        The body is neither kept in the result nor landed: it may be large, and it is ours, not the venue's."""
        return await self.request("POST", endpoint, None, json_body=json_body, symbol=symbol, path_params=path_params)

    async def request(
        self,
        method: str,
        endpoint: Endpoint,
        params: Mapping[str, Any] | None = None,
        *,
        json_body: Any = None,
        land_body: bool = False,
        symbol: str | None = None,
        path_params: Mapping[str, str] | None = None,
    ) -> FetchResult:
        """One logical request with retries (see :meth:`get`). ``path_params`` may carry a secret such as a bot
        token: the path is redacted (:func:`redact_url`) before it is logged, landed or put into an error.
        ``land_body``: the JSON body is what the venue was asked (a venue's POST read), so it is landed in the
        raw file's metadata as ``request_body``; a body of ours (a Telegram message) is not."""
        assert self._client is not None and self._semaphore is not None, "use 'async with VenueClient(...)'"
        query = {key: value for key, value in (params or {}).items() if value is not None}
        path = endpoint.path.format(**(path_params or {}))
        result = FetchResult(self.venue, endpoint.name, symbol, dict(query), ok=False, status=None)
        started = time.monotonic()
        for attempt in range(1, self.retry.max_attempts + 1):
            verdict = await self._attempt(
                endpoint, path, query, symbol, attempt, result, method, json_body, land_body=land_body
            )
            result.attempts = attempt
            if verdict.ok:
                result.ok, result.payload, result.error = True, verdict.payload, None
                break
            result.error, result.retryable = verdict.reason, verdict.retryable
            if not verdict.retryable or attempt == self.retry.max_attempts:
                break
            delay = self._backoff(attempt)
            if verdict.retry_after is not None:
                if verdict.retry_after > self.retry.max_retry_after:
                    result.error = (
                        f"{verdict.reason}; the venue asks to wait {verdict.retry_after:.0f} s, more "
                        f"than the {self.retry.max_retry_after:.0f} s this run waits: retry later"
                    )
                    break
                delay = max(delay, verdict.retry_after)
            if verdict.pause_venue:
                self._paused_until = max(self._paused_until, time.monotonic() + delay)
            self._log(
                f"{self.venue} {endpoint.name} {symbol or ''} attempt {attempt} failed ({verdict.reason}); "
                f"retrying in {delay:.2f} s"
            )
            await asyncio.sleep(delay)
        result.duration_ms = (time.monotonic() - started) * 1000
        return result

    async def _attempt(
        self,
        endpoint: Endpoint,
        path: str,
        query: dict[str, Any],
        symbol: str | None,
        attempt: int,
        result: FetchResult,
        method: str = "GET",
        json_body: Any = None,
        *,
        land_body: bool = False,
    ) -> _Verdict:
        await self._wait_for_pause()
        acquired: list[tuple[SlidingWindowLimiter, int]] = []
        for group, weight in endpoint.costs.items():
            limiter = self.limiters[group]
            await limiter.acquire(weight)
            acquired.append((limiter, weight))
        assert self._semaphore is not None and self._client is not None
        url = redact_url(f"{self.base_url}{path}" + (f"?{urlencode(query)}" if query else ""))
        sent_at = datetime.now(UTC)
        began = time.monotonic()
        status: int | None = None
        headers = httpx.Headers()
        body = b""
        transport_error: str | None = None
        try:
            async with self._semaphore:
                self.requests_sent += 1
                if method == "GET":
                    response = await self._client.get(path, params=query)
                else:
                    response = await self._client.request(method, path, params=query or None, json=json_body)
                status, headers, body = response.status_code, response.headers, response.content
        except httpx.TimeoutException as exc:
            transport_error = f"timeout after {self.timeout:.1f} s ({type(exc).__name__})"
        except httpx.TransportError as exc:
            transport_error = f"connection error: {type(exc).__name__}: {redact_text(str(exc))}"
        finally:
            for limiter, weight in acquired:
                await limiter.release(weight)
        duration_ms = (time.monotonic() - began) * 1000
        key = str(status) if status is not None else "transport_error"
        self.status_counts[key] = self.status_counts.get(key, 0) + 1
        if transport_error is not None:
            verdict = _Verdict(False, True, transport_error, None, None)
        else:
            assert status is not None
            verdict = classify_response(self.venue, status, headers, body, self.envelope_error, endpoint.body)
        result.status = status
        result.statuses.append(status)
        if self.lander is not None:
            meta = {
                "venue": self.venue,
                "endpoint": endpoint.name,
                "method": method,
                "url": url,
                "path": redact_url(path),
                "params": query,
                **({"request_body": json_body} if land_body else {}),
                "symbol": symbol,
                "status": status,
                "headers": {name: headers[name] for name in LANDED_HEADERS if name in headers},
                "sent_at": sent_at.isoformat(),
                "received_at": datetime.now(UTC).isoformat(),
                "duration_ms": round(duration_ms, 1),
                "attempt": attempt,
                "ok": verdict.ok,
                "error": verdict.reason,
            }
            if endpoint.body == "bytes":  # a file is landed byte for byte (base64 in the JSON record)
                meta["body_encoding"] = "base64"
                body = base64.b64encode(body)
            writing = asyncio.get_running_loop().run_in_executor(
                self._writer, self.lander.land, endpoint.name, meta, body
            )
            result.raw_paths.append(str(await writing))
        return verdict
