"""What a venue adapter declares about requests, without the HTTP machinery (import-cheap: the DAG file's
registry imports the adapters at parse time): endpoints, envelope errors, and the result of one request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Endpoint:
    """One venue endpoint: its canonical name (raw paths, ops tables, fault injection), path and costs."""

    name: str
    path: str  # may contain {symbol}
    costs: Mapping[str, int]  # rate-limit group -> weight this call consumes
    # "json" (decoded, envelope-checked), or "bytes": a file (an archive's zip) kept as bytes and landed base64
    body: str = "json"
    # A venue whose reads are POSTs of a JSON body (Hyperliquid ``POST /info {"type": ...}``) declares both here:
    # the body names what is asked, so it is part of the endpoint, and it is landed with the response.
    method: str = "GET"
    request_body: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class EnvelopeError:
    """An error a venue reported inside its JSON body (possibly with HTTP 200)."""

    code: str
    message: str
    retryable: bool = False
    rate_limited: bool = False


@dataclass
class FetchResult:
    """What one logical request came to after retries. ``payload`` is the decoded JSON on success."""

    venue: str
    endpoint: str
    symbol: str | None
    params: dict[str, Any]
    ok: bool
    status: int | None
    payload: Any = None
    error: str | None = None
    attempts: int = 0
    raw_paths: list[str] = field(default_factory=list)
    duration_ms: float = 0.0
    statuses: list[int | None] = field(default_factory=list)
    retryable: bool = False  # whether the last failure is one that a later run could get past

    def summary(self) -> dict[str, Any]:
        """A JSON-able record for manifests and the ops tables."""
        return {
            "venue": self.venue,
            "endpoint": self.endpoint,
            "symbol": self.symbol,
            "ok": self.ok,
            "status": self.status,
            "error": self.error,
            "attempts": self.attempts,
            "retryable": self.retryable,
            "statuses": self.statuses,
            "duration_ms": round(self.duration_ms, 1),
            "raw_paths": self.raw_paths,
        }


def coded_envelope_error(payload: Any, success_code: str, retryable_codes: Mapping[str, bool]) -> EnvelopeError | None:
    """The error in a ``{"code": "...", "msg": "..."}`` envelope (OKX, Bitget), None when ``code`` is success.

    ``retryable_codes`` maps the codes worth retrying to whether they mean "rate limited"."""
    if not isinstance(payload, dict) or "code" not in payload:
        return None
    code = str(payload.get("code"))
    if code == success_code:
        return None
    return EnvelopeError(
        code,
        str(payload.get("msg", "")),
        retryable=code in retryable_codes,
        rate_limited=retryable_codes.get(code, False),
    )
