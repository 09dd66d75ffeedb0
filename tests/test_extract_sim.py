"""Venue extraction against the venue simulator: request budget, rate limits, and every fault on every venue.

The shared HTTP machinery decides what is retried; these tests check it on the wire: retried where retrying
helps (and then recovered), not retried where it cannot help, the other venues unaffected, every response
(and every transport failure) landed as a raw file.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import INTERVAL_END, SIM_NOW_MS
from positioning import VENUES
from positioning.ingest.extract import extract_venue
from positioning.ingest.http import RateLimit, RetryPolicy
from positioning.sim import Limit, VenueSimulator
from positioning.symbols import default_symbols
from positioning.venues.base import ExtractRequest
from reliability_matrix import LISTING, PER_SYMBOL  # each venue's first call, and a per-symbol call

FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.02, max_delay=0.1, seed=1)
# Bitget's 1 request/s per L/S endpoint would make every fault case take seconds; the matrix relaxes it on both
# sides (the documented limits are exercised by the 50-symbol test below).
RELAXED_CLIENT = {"bitget": {"account-long-short": RateLimit(50, 1.0, "test")}}
RELAXED_SIM = {"bitget:account-long-short": Limit(50, 1, "test")}
SYMBOLS = ("BTC", "ETH")


def extract_all(
    sim_url: str,
    data: Path,
    symbols=SYMBOLS,
    *,
    timeout: float = 5.0,
    relaxed: bool = True,
    retry: RetryPolicy = FAST_RETRY,
) -> dict[str, dict]:
    request = ExtractRequest(
        symbols=tuple(symbols),
        ls_period="1h",
        interval_start=INTERVAL_END - timedelta(hours=1),
        interval_end=INTERVAL_END,
    )

    async def main():
        return await asyncio.gather(
            *(
                extract_venue(
                    venue,
                    sim_url,
                    request,
                    data_dir=data,
                    run_id="wire",
                    retry=retry,
                    timeout=timeout,
                    limits=RELAXED_CLIENT.get(venue) if relaxed else None,
                )
                for venue in VENUES
            )
        )

    return {manifest.venue: manifest for manifest in asyncio.run(main())}


@pytest.fixture
def relaxed_sim():
    with VenueSimulator(port=0, seed=7, now_ms=SIM_NOW_MS, rate_limits=RELAXED_SIM) as simulator:
        yield simulator


def requests_to(sim, venue: str, endpoint: str | None = None) -> list[dict]:
    return [r for r in sim.requests if r["venue"] == venue and (endpoint is None or r["endpoint"] == endpoint)]


def landed(data: Path, venue: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((data / "raw" / f"venue={venue}").rglob("*.json"))]


def find(manifest: dict, endpoint: str) -> list[dict]:
    return [r for r in manifest.requests if r.endpoint == endpoint]


def assert_others_unaffected(manifests: dict, faulty: str) -> None:
    for venue, manifest in manifests.items():
        if venue != faulty:
            assert manifest.status == "ok", (venue, manifest.fatal)


def assert_everything_landed(sim, data: Path, venue: str) -> None:
    records = landed(data, venue)
    assert len(records) == len(requests_to(sim, venue)), "every request, good or bad, has a raw file"
    assert all({"meta", "body"} <= set(r) for r in records)


def test_clean_extract_lands_everything_and_skips_unlisted(relaxed_sim, tmp_path):
    manifests = extract_all(relaxed_sim.base_url, tmp_path, symbols=("BTC", "MKR", "HYPE", "NOPE"))
    for venue in VENUES:
        assert manifests[venue].status == "ok"
        assert_everything_landed(relaxed_sim, tmp_path, venue)
        assert manifests[venue].skipped["NOPE"] == f"not listed on {venue}"
    assert "MKR" in manifests["binance"].skipped and "HYPE" in manifests["okx"].skipped
    assert set(manifests["strike"].instruments) == {"BTC", "HYPE"}
    # Nothing user-supplied that a venue does not list ever reached a URL.
    assert not any("NOPE" in json.dumps(r["params"]) or "NOPE" in r["path"] for r in relaxed_sim.requests)


TRANSIENT = [
    pytest.param({"kind": "status", "status": 503}, id="503"),
    pytest.param({"kind": "status", "status": 500}, id="500"),
    pytest.param({"kind": "status", "status": 429}, id="429-retry-after"),
    pytest.param({"kind": "status", "status": 429, "retry_after": None}, id="429-no-retry-after"),
    pytest.param({"kind": "malformed_json"}, id="malformed-json"),
    pytest.param({"kind": "html_error"}, id="html-502"),
    pytest.param({"kind": "connection_reset"}, id="connection-reset"),
    pytest.param({"kind": "timeout", "seconds": 3}, id="timeout"),
]


@pytest.mark.parametrize("venue", VENUES)
@pytest.mark.parametrize("fault", TRANSIENT)
def test_transient_faults_are_retried_and_recovered(relaxed_sim, tmp_path, venue, fault):
    endpoint = PER_SYMBOL[venue]
    relaxed_sim.add_fault(venue, endpoint, times=1, **fault)
    manifests = extract_all(relaxed_sim.base_url, tmp_path, timeout=1.0)
    assert manifests[venue].status == "ok", manifests[venue].fatal
    retried = [r for r in find(manifests[venue], endpoint) if r.attempts == 2]
    assert len(retried) == 1 and retried[0].ok, [(r.symbol, r.statuses, r.error) for r in retried]
    assert_others_unaffected(manifests, venue)
    assert_everything_landed(relaxed_sim, tmp_path, venue)
    first_attempt = json.loads(Path(retried[0].raw_paths[0]).read_text())["meta"]
    assert first_attempt["ok"] is False and first_attempt["error"]


@pytest.mark.parametrize("venue", VENUES)
def test_geo_block_is_not_retried_and_fails_only_that_venue(relaxed_sim, tmp_path, venue):
    relaxed_sim.add_fault(venue, LISTING[venue], kind="status", status=451)
    manifests = extract_all(relaxed_sim.base_url, tmp_path)
    assert manifests[venue].status == "failed" and "451" in manifests[venue].fatal
    assert len(requests_to(relaxed_sim, venue)) == 1, "a geo-block is final: nothing else is asked"
    assert_others_unaffected(manifests, venue)
    assert_everything_landed(relaxed_sim, tmp_path, venue)


@pytest.mark.parametrize("venue", VENUES)
def test_persistent_outage_gives_up_after_bounded_retries(relaxed_sim, tmp_path, venue):
    relaxed_sim.add_fault(venue, LISTING[venue], kind="status", status=503)
    manifests = extract_all(relaxed_sim.base_url, tmp_path)
    assert manifests[venue].status == "failed"
    listing = find(manifests[venue], LISTING[venue])[0]
    assert listing.attempts == FAST_RETRY.max_attempts and listing.retryable is True
    assert len(requests_to(relaxed_sim, venue)) == FAST_RETRY.max_attempts
    assert_others_unaffected(manifests, venue)
    assert_everything_landed(relaxed_sim, tmp_path, venue)


def test_a_long_ban_fails_fast_instead_of_waiting(relaxed_sim, tmp_path):
    relaxed_sim.add_fault("binance", "exchangeInfo", kind="status", status=418)  # Retry-After 120 s
    manifests = extract_all(relaxed_sim.base_url, tmp_path)
    assert manifests["binance"].status == "failed"
    assert "418" in manifests["binance"].fatal and "retry later" in manifests["binance"].fatal
    assert len(requests_to(relaxed_sim, "binance")) == 1


INVALID_SYMBOL = {
    "binance": {"kind": "status", "status": 400, "body": {"code": -1121, "msg": "Invalid symbol."}},
    "okx": {
        "kind": "error_envelope",
        "code": "51001",
        "msg": "Instrument ID, Instrument ID code, or Spread ID doesn't exist.",
    },
    "bitget": {
        "kind": "status",
        "status": 400,
        "body": {"code": "40034", "msg": "Parameter BTCUSDT does not exist", "data": None},
    },
    "bybit": {"kind": "error_envelope", "code": 10001, "msg": "params error: symbol invalid"},
}


@pytest.mark.parametrize("venue", sorted(INVALID_SYMBOL))
def test_invalid_symbol_errors_are_not_retried(relaxed_sim, tmp_path, venue):
    endpoint = PER_SYMBOL[venue]
    relaxed_sim.add_fault(venue, endpoint, symbol="BTC", **INVALID_SYMBOL[venue])
    manifests = extract_all(relaxed_sim.base_url, tmp_path)
    failed = [r for r in find(manifests[venue], endpoint) if not r.ok]
    assert [(r.symbol, r.attempts, r.retryable) for r in failed] == [("BTC", 1, False)]
    assert manifests[venue].status == "partial"  # ETH still delivered
    assert_others_unaffected(manifests, venue)
    assert_everything_landed(relaxed_sim, tmp_path, venue)


@pytest.mark.parametrize("venue, code", [("okx", "50011"), ("bitget", "429"), ("bybit", "10006")])
def test_rate_limit_envelope_with_http_200_is_retried(relaxed_sim, tmp_path, venue, code):
    endpoint = PER_SYMBOL[venue]
    relaxed_sim.add_fault(venue, endpoint, kind="error_envelope", code=code, msg="Too Many Requests", times=1)
    manifests = extract_all(relaxed_sim.base_url, tmp_path)
    assert manifests[venue].status == "ok"
    assert sorted(r.attempts for r in find(manifests[venue], endpoint)) == [1, 2]
    assert_everything_landed(relaxed_sim, tmp_path, venue)


@pytest.mark.parametrize("venue", VENUES)
@pytest.mark.parametrize("kind", ["missing_field", "empty_data"])
def test_shape_faults_are_landed_for_the_loader_to_judge(relaxed_sim, tmp_path, venue, kind):
    """A response that is valid JSON but has a missing field or no rows is a data problem, not a transport one:
    it is not retried (the venue would send the same), it is landed, and the loader records what it makes of it."""
    endpoint = PER_SYMBOL[venue]
    field = {
        "binance": "openInterest",
        "okx": "0",
        "bitget": "longShortAccountRatio",
        "strike": "totalOi",
        "bybit": "buyRatio",
        "hyperliquid": "openInterest",  # of every context (its one call)
    }[venue]
    options = {"field": field} if kind == "missing_field" else {}
    relaxed_sim.add_fault(venue, endpoint, kind=kind, **options)
    manifests = extract_all(relaxed_sim.base_url, tmp_path)
    assert all(r.attempts == 1 for r in manifests[venue].requests)
    assert_others_unaffected(manifests, venue)
    assert_everything_landed(relaxed_sim, tmp_path, venue)


@pytest.mark.slow
def test_full_50_symbol_snapshot_at_documented_limits_is_minimal_and_never_429(tmp_path):
    """All six venues at once, the documented limits enforced by the simulator and obeyed by the clients."""
    with VenueSimulator(port=0, seed=7, now_ms=SIM_NOW_MS) as sim:
        symbols = default_symbols()
        manifests = extract_all(sim.base_url, tmp_path, symbols=symbols, relaxed=False, retry=RetryPolicy(seed=1))
        statuses = [r["status"] for r in sim.requests]
        assert statuses.count(429) == 0 and statuses.count(418) == 0
        listed = {venue: len(set(symbols) & set(sim.state.listed(venue))) for venue in VENUES}
        minimum = {
            # exchangeInfo, premiumIndex, fundingInfo (all); OI, 3 ratios and the taker ratio per symbol
            "binance": 3 + 5 * listed["binance"],
            # instruments, open-interest, mark-price, funding-rate (all); ratio and taker volume per coin
            "okx": 4 + 2 * listed["okx"],
            "bitget": 2 + listed["bitget"],  # contracts, tickers (all); account-long-short per symbol
            "strike": 1,  # /markets carries every market's OI
            "bybit": 2 + listed["bybit"],  # instruments-info (one page of 1000), tickers (all); account ratio each
            "hyperliquid": 1,  # one POST /info metaAndAssetCtxs: universe, OI, mark and funding of every perp
        }
        made = {venue: len(requests_to(sim, venue)) for venue in VENUES}
        assert made == minimum
        assert all(manifest.status == "ok" for manifest in manifests.values())
