"""The reliability fault matrix: what every venue does wrong in practice, and what the pipeline must do about it.

Each scenario is run through the whole DAG (``dag.test()``) against the venue simulator, one venue at a time,
with two symbols (BTC, ETH): ``tests/test_reliability.py`` drives it and checks, per (scenario, venue),

* the task states: the faulty venue's extract ``success`` or ``failed`` as expected, ``load`` and ``build_marts``
  ``success``, the other venues' extracts ``success``;
* landing: one raw file for every request the simulator logged, for every venue (failed attempts included);
* the ops tables: ``ops.extract_runs`` status of the venue, the expected ``ops.extract_failures`` row (endpoint,
  symbol, HTTP status, attempts, retryable) or none, the expected ``ops.parse_errors`` row or none;
* quality: a ``venue_completeness`` warning in ``quality.expectation_results`` exactly when one is expected;
* warehouse correctness: every published fact equals the fact a fault-free run publishes (whose values the
  golden check compares with the simulator's own state), nothing is quarantined, and the facts missing compared
  with the fault-free run are exactly the ones the fault can take away (never more, and some when expected).

Outcomes (the "expected" column):

``recovered``      a transient failure (429 with/without Retry-After, 5xx, timeout, reset, malformed JSON, HTML
                   page, a retryable error envelope with HTTP 200) on one request, once: retried (Retry-After of at
                   most 60 s honoured), the run publishes everything, nothing recorded as failed.
``venue_failed``   a failure no retry inside the run can get past (451 geo-block; a 418 ban asking for 120 s) on
                   the venue's listing: its extract fails (not retried: one request), the failure is recorded, the
                   other venues publish, nothing from the failed venue is published.
``rows_absent``    a response that parses badly (a required field missing or renamed): landed, the parse error
                   recorded in ``ops.parse_errors``, the rows it would have given are absent (not wrong), the rest
                   publishes. For Strike the field is the market ``symbol`` of its single ``/markets`` call, so the
                   listing itself is unusable: its extract fails as well.
``venue_empty``    the venue answers every request with its envelope and no rows: its extract succeeds (nothing to
                   retry), it publishes no rows, and the completeness warning is recorded in the quality tables.
``symbol_failed``  a non-retryable error for one symbol (the venue's invalid-symbol error; Binance's JSON error
                   body sent with HTTP 200): not retried (one attempt), recorded in ``ops.extract_failures``, that
                   symbol's rows from that endpoint absent, everything else published.
``symbol_skipped`` (Hyperliquid, which asks nothing per symbol) the symbol is absent from the venue's universe:
                   skipped with its reason, nothing failed, that symbol's rows absent, everything else published.

Per-venue notes: Binance has no HTTP-200 error envelope in its documentation; the simulator can still send its
JSON error body (``{"code": -1000, ...}``) with HTTP 200, which the client detects and, the code not being a
retryable one, does not retry (``symbol_failed``). Strike has no per-symbol endpoint in its normal plan (its one
``/markets`` call carries every market); its invalid-symbol case serves ``/markets`` without data so that the
per-market ``/market/{symbol}`` endpoint is used, and answers that with Strike's 404 body for BTC. Hyperliquid's
one ``POST /info`` call is both its listing and its data: its field and error-envelope faults take the venue down
(its listing), and its unknown-symbol case renames BTC in the universe. Bybit's per-symbol call is the account
ratio; its HTTP-200 error envelope is ``retCode`` 10006 (the API rate limit: retried).

``python -m tests.reliability_matrix`` runs the full matrix through pytest and prints the table.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

VENUES = ("binance", "okx", "bitget", "strike", "bybit", "hyperliquid")
SYMBOLS = ("BTC", "ETH")
# The call each plan makes first: a fault here takes the venue down.
LISTING = {
    "binance": "exchangeInfo",
    "okx": "instruments",
    "bitget": "contracts",
    "strike": "markets",
    "bybit": "instruments-info",
    "hyperliquid": "metaAndAssetCtxs",
}
# A call made once per symbol (Strike, Hyperliquid: their single call): a fault here with times=1 is retried.
PER_SYMBOL = {
    "binance": "openInterest",
    "okx": "long-short-account-ratio",
    "bitget": "account-long-short",
    "strike": "markets",
    "bybit": "account-ratio",
    "hyperliquid": "metaAndAssetCtxs",
}
# What each PER_SYMBOL endpoint contributes to core.fact_positioning.
PER_SYMBOL_METRICS = {
    "binance": ("oi_coins", "oi_usd"),
    "okx": ("ls_account",),
    "bitget": ("ls_account",),
    "strike": None,  # every Strike fact
    "bybit": ("ls_account",),
    "hyperliquid": None,  # every Hyperliquid fact
}
OKX_OI_METRICS = ("oi_contracts", "oi_coins", "oi_usd")
FULL_MATRIX_ENV = "POSITIONING_FULL_MATRIX"
TIMEOUT_CLIENT_SECONDS = 1.0  # the extract's HTTP timeout during the timeout scenario
TIMEOUT_SERVER_SECONDS = 3.0  # how long the simulator stalls


@dataclass(frozen=True)
class FaultSpec:
    """One ``VenueSimulator.add_fault`` call (the venue is the scenario's)."""

    endpoint: str | None
    kind: str
    symbol: str | None = None
    times: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        where = self.endpoint or "every endpoint"
        scope = f" {self.symbol}" if self.symbol else ""
        times = f" x{self.times}" if self.times else ""
        opts = ",".join(f"{k}={v}" for k, v in self.options.items() if k != "body")
        return f"{self.kind}{'(' + opts + ')' if opts else ''} on {where}{scope}{times}"


@dataclass(frozen=True)
class Expectation:
    outcome: str  # recovered | venue_failed | rows_absent | venue_empty | symbol_failed | symbol_skipped
    extract_state: str = "success"  # the faulty venue's extract task
    venue_status: str = "ok"  # ops.extract_runs.status of the faulty venue
    # (endpoint, symbol, HTTP status or None for a transport error, attempts, retryable) in ops.extract_failures
    failure: tuple[str, str | None, int | None, int, bool] | None = None
    parse_error_endpoint: str | None = None  # an ops.parse_errors row of this endpoint
    # The facts the fault may take away: (symbol or None = all, metrics or None = all) of the faulty venue.
    absent_symbol: str | None = None
    absent_metrics: tuple[str, ...] | None = None
    absent_required: bool = False  # some facts must be missing (else: none may be)
    # (symbol, metric) pairs of the faulty venue also allowed to be missing (a fallback endpoint without them)
    absent_extra: tuple[tuple[str, str], ...] = ()
    completeness_warning: bool = False
    retried_endpoint: str | None = None  # exactly one request of it needed two attempts
    min_retry_gap_s: float | None = None  # Retry-After honoured: the retry came at least this much later
    max_requests: int | None = None  # requests the venue may receive in all (a ban/geo-block: one)

    def describe(self) -> str:
        text = {
            "recovered": "retried, recovered, all published",
            "venue_failed": "venue failed (not retried), others published",
            "rows_absent": "parse error recorded, affected rows absent, rest published",
            "venue_empty": "venue present with no rows, completeness warning",
            "symbol_failed": "symbol failed (not retried), recorded, rest published",
            "symbol_skipped": "symbol unknown to the venue: skipped with its reason, rest published",
        }[self.outcome]
        if self.outcome == "rows_absent" and self.extract_state == "failed":
            text = "listing unparseable: venue failed, parse error recorded, others published"
        return text


@dataclass(frozen=True)
class Scenario:
    name: str
    venue: str
    fault: tuple[FaultSpec, ...]
    expect: Expectation
    http_timeout: float | None = None  # override of the extract's HTTP timeout

    @property
    def id(self) -> str:
        return f"{self.name}-{self.venue}"


def _recovered(venue: str, kind: str, *, gap: float | None = None, **options: Any) -> tuple[FaultSpec, Expectation]:
    return (
        FaultSpec(PER_SYMBOL[venue], kind, times=1, options=options),
        Expectation("recovered", retried_endpoint=PER_SYMBOL[venue], min_retry_gap_s=gap),
    )


def _missing_or_renamed(venue: str, kind: str) -> tuple[FaultSpec, Expectation]:
    """A required field of one symbol's row gone (``missing_field``) or renamed (``rename_field``)."""
    endpoint, field_name, metrics, symbol = {
        "binance": ("openInterest", "openInterest", PER_SYMBOL_METRICS["binance"], "BTC"),
        # OKX's open interest comes in one all-instrument response: one bad row makes the file unparseable.
        "okx": ("open-interest", "oi", OKX_OI_METRICS, None),
        "bitget": ("account-long-short", "longShortAccountRatio", PER_SYMBOL_METRICS["bitget"], "BTC"),
        "strike": ("markets", "symbol", None, None),
        "bybit": ("account-ratio", "buyRatio", PER_SYMBOL_METRICS["bybit"], "BTC"),
        # Hyperliquid's one call is its listing: BTC's universe entry without its name makes the listing unusable.
        "hyperliquid": ("metaAndAssetCtxs", "name", None, None),
    }[venue]
    options = {"field": field_name} if kind == "missing_field" else {"field": field_name, "to": f"{field_name}_v2"}
    fault = FaultSpec(endpoint, kind, symbol="BTC", options=options)
    if venue in ("strike", "hyperliquid"):
        return fault, Expectation(
            "rows_absent",
            extract_state="failed",
            venue_status="failed",
            parse_error_endpoint=endpoint,
            absent_required=True,
            completeness_warning=True,
        )
    return fault, Expectation(
        "rows_absent",
        parse_error_endpoint=endpoint,
        absent_symbol=symbol,
        absent_metrics=metrics,
        absent_required=True,
        completeness_warning=venue == "okx",  # all of OKX's OI gone: completeness 0
    )


INVALID_SYMBOL = {
    "binance": (400, {"kind": "status", "status": 400, "body": {"code": -1121, "msg": "Invalid symbol."}}),
    "okx": (200, {"kind": "error_envelope", "code": "51001", "msg": "Instrument ID doesn't exist."}),
    "bitget": (400, {"kind": "status", "status": 400, "body": {"code": "40034", "msg": "Parameter does not exist"}}),
    "strike": (404, {"kind": "status", "status": 404, "body": {"error": 404, "message": "Market not found"}}),
    "bybit": (200, {"kind": "error_envelope", "code": 10001, "msg": "params error: symbol invalid"}),
}


def _unknown_symbol(venue: str) -> tuple[tuple[FaultSpec, ...], Expectation]:
    if venue == "hyperliquid":  # nothing is asked per symbol: a coin its universe does not name is skipped
        fault = FaultSpec("metaAndAssetCtxs", "override", symbol="BTC", options={"field": "name", "value": "UNKNOWN1"})
        return (fault,), Expectation("symbol_skipped", absent_symbol="BTC", absent_required=True)
    status, spec = INVALID_SYMBOL[venue]
    options = {k: v for k, v in spec.items() if k != "kind"}
    endpoint = "market" if venue == "strike" else PER_SYMBOL[venue]
    faults = [FaultSpec(endpoint, spec["kind"], symbol="BTC", options=options)]
    if venue == "strike":  # /markets without data: Strike's plan falls back to one /market/{symbol} per market
        faults.insert(0, FaultSpec("markets", "strike_shape", options={"shape": "symbols_only"}))
    return tuple(faults), Expectation(
        "symbol_failed",
        venue_status="partial",
        failure=(endpoint, "BTC", status, 1, False),
        absent_symbol="BTC",
        absent_metrics=PER_SYMBOL_METRICS[venue],
        absent_required=True,
        # Strike's /market/{symbol} (shape (a), flat) carries OI but no price: ETH has no mark_price that run.
        absent_extra=(("ETH", "mark_price"),) if venue == "strike" else (),
    )


def _error_envelope(venue: str) -> tuple[FaultSpec, Expectation]:
    if venue == "binance":  # Binance's JSON error body with HTTP 200: detected, code -1000 is not retryable
        return FaultSpec("openInterest", "error_envelope", symbol="BTC", options={"code": -1000}), Expectation(
            "symbol_failed",
            venue_status="partial",
            failure=("openInterest", "BTC", 200, 1, False),
            absent_symbol="BTC",
            absent_metrics=PER_SYMBOL_METRICS["binance"],
            absent_required=True,
        )
    if venue == "hyperliquid":  # a JSON error object on its one call (the listing): not retryable, venue down
        return FaultSpec(
            "metaAndAssetCtxs", "error_envelope", options={"code": 400, "msg": "bad request"}
        ), Expectation(
            "venue_failed",
            "failed",
            "failed",
            failure=("metaAndAssetCtxs", None, 200, 1, False),
            max_requests=1,
            absent_required=True,
            completeness_warning=True,
        )
    options = {
        "bybit": {"code": 10006, "msg": "Too many visits!"},  # Bybit's API rate limit (retCode 10006)
        "okx": {"code": "50011", "msg": "Too Many Requests"},  # OKX's rate-limit code
        "bitget": {"code": "429", "msg": "Too Many Requests"},  # Bitget's rate-limit code
        "strike": {"msg": "Too Many Requests"},  # Strike {"success": false, "message": ...}: rate limited
    }[venue]
    return _recovered(venue, "error_envelope", **options)


def scenarios_for(venue: str) -> list[Scenario]:
    """The 15 scenarios of one venue, in table order."""
    rows: list[tuple[str, tuple[FaultSpec, ...] | FaultSpec, Expectation, float | None]] = []

    def add(name: str, pair: tuple[Any, Expectation], timeout: float | None = None) -> None:
        fault, expect = pair
        rows.append((name, fault, expect, timeout))

    add("429+retry-after", _recovered(venue, "status", gap=1.0, status=429, retry_after=1))
    add("429-no-retry-after", _recovered(venue, "status", status=429, retry_after=None))
    listing = LISTING[venue]
    add(
        "418-ban-120s",
        (
            FaultSpec(listing, "status", options={"status": 418, "retry_after": 120}),
            Expectation(
                "venue_failed",
                "failed",
                "failed",
                failure=(listing, None, 418, 1, True),
                max_requests=1,
                absent_required=True,
                completeness_warning=True,
            ),
        ),
    )
    add(
        "451-geo-block",
        (
            FaultSpec(listing, "status", options={"status": 451}),
            Expectation(
                "venue_failed",
                "failed",
                "failed",
                failure=(listing, None, 451, 1, False),
                max_requests=1,
                absent_required=True,
                completeness_warning=True,
            ),
        ),
    )
    add("500", _recovered(venue, "status", status=500))
    add("503", _recovered(venue, "status", status=503))
    add("timeout", _recovered(venue, "timeout", seconds=TIMEOUT_SERVER_SECONDS), TIMEOUT_CLIENT_SECONDS)
    add("connection-reset", _recovered(venue, "connection_reset"))
    add("malformed-json", _recovered(venue, "malformed_json"))
    add("html-error-page", _recovered(venue, "html_error", status=502))
    add("field-missing", _missing_or_renamed(venue, "missing_field"))
    add("field-renamed", _missing_or_renamed(venue, "rename_field"))
    add(
        "empty-data",
        (
            FaultSpec(None, "empty_data"),
            Expectation("venue_empty", absent_required=True, completeness_warning=True),
        ),
    )
    add("error-envelope-200", _error_envelope(venue))
    add("unknown-symbol", _unknown_symbol(venue))
    return [
        Scenario(name, venue, fault if isinstance(fault, tuple) else (fault,), expect, timeout)
        for name, fault, expect, timeout in rows
    ]


SCENARIO_NAMES = tuple(s.name for s in scenarios_for("binance"))


def full_matrix() -> list[Scenario]:
    return [scenario for venue in VENUES for scenario in scenarios_for(venue)]


def reduced_matrix() -> list[Scenario]:
    """Every scenario once, on a venue chosen round-robin (CI): 15 DAG runs instead of 90."""
    by_name = {venue: {s.name: s for s in scenarios_for(venue)} for venue in VENUES}
    return [by_name[VENUES[i % len(VENUES)]][name] for i, name in enumerate(SCENARIO_NAMES)]


def selected_matrix() -> list[Scenario]:
    return full_matrix() if os.environ.get(FULL_MATRIX_ENV, "") not in ("", "0") else reduced_matrix()


@dataclass
class Result:
    scenario: Scenario
    observed: str
    problems: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems


def render_table(results: list[Result]) -> str:
    """scenario | venue | expected | observed | ok, then the pass figure."""
    header = ("scenario", "venue", "fault", "expected", "observed", "ok", "s")
    rows = [
        (
            r.scenario.name,
            r.scenario.venue,
            "; ".join(f.describe() for f in r.scenario.fault),
            r.scenario.expect.describe(),
            r.observed if r.ok else f"{r.observed} | " + "; ".join(r.problems),
            "yes" if r.ok else "NO",
            f"{r.seconds:.1f}",
        )
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    passed = sum(r.ok for r in results)
    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(row) for row in rows)]
    total_s = sum(r.seconds for r in results)
    percent = 100 * passed / len(results) if results else 0.0
    out.append(f"\n{passed}/{len(results)} scenarios as expected ({percent:.0f} %), {total_s:.0f} s of DAG runs")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run the full matrix (``POSITIONING_FULL_MATRIX=1``) through pytest; the test prints the table."""
    import pytest

    os.environ.setdefault(FULL_MATRIX_ENV, "1")
    here = os.path.dirname(os.path.abspath(__file__))
    return pytest.main(["-q", "-p", "no:cacheprovider", os.path.join(here, "test_reliability.py"), *(argv or [])])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
