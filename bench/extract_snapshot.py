"""Benchmark: a full snapshot of N symbols across every registered venue (six built in) against the simulator with realistic latency.

Prints, for our extraction and for a naive baseline run in the same invocation against the same simulator:
requests made vs the minimum the venues' batch endpoints allow, 429s received, and wall time vs the rate-limit
floor (the time the tightest documented limit forces on that many requests).

    .venv/bin/python bench/extract_snapshot.py [--symbols 50 200] [--latency 0.08]

The naive baseline is what a hand-written scraper does: for every symbol, every endpoint one after another
(no batch endpoints, no limiter), sleeping out a 429's Retry-After before retrying.

Each measurement gets its own simulator (its own rate-limit counters, like a separate IP) and they run
concurrently, ``--repeats`` of each (default 3, medians reported): the workload is bound by latency and rate limits,
not CPU, so this only saves wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import math
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from positioning import VENUES, registry
from positioning.ingest.extract import extract_venue
from positioning.ingest.http import RetryPolicy
from positioning.sim import VenueSimulator
from positioning.sim.state import SYMBOLS
from positioning.symbols import default_symbols
from positioning.venues.base import ExtractRequest
from tabulate import tabulate


def universe(count: int) -> tuple[str, ...]:
    extra = [s for s in SYMBOLS if s not in default_symbols()]
    return (tuple(default_symbols()) + tuple(extra))[:count]


def minimum_requests(sim: VenueSimulator, symbols: tuple[str, ...]) -> dict[str, int]:
    listed = {venue: len(set(symbols) & set(sim.state.listed(venue))) for venue in VENUES}
    return {
        # exchangeInfo, premiumIndex, fundingInfo (all); OI, 3 ratios and the taker ratio per symbol
        "binance": 3 + 5 * listed["binance"],
        # instruments, open-interest, mark-price, funding-rate (all); ratio and taker volume per coin
        "okx": 4 + 2 * listed["okx"],
        "bitget": 2 + listed["bitget"],  # contracts + tickers (all); account-long-short per symbol
        "strike": 1,  # /markets carries every market
        "bybit": 2 + listed["bybit"],  # instruments-info + tickers (all); account-ratio per symbol
        "hyperliquid": 1,  # one POST /info metaAndAssetCtxs carries every perp
    }


def rate_limit_floor(sim: VenueSimulator, symbols: tuple[str, ...]) -> tuple[float, str]:
    """Seconds the tightest documented limit forces: n requests through a bucket of c per w s need
    (ceil(n / c) - 1) x w seconds from the first to the last."""
    listed = {venue: len(set(symbols) & set(sim.state.listed(venue))) for venue in VENUES}
    per_group = {
        ("binance", "futures_data"): 4 * listed["binance"],
        ("binance", "funding_info"): 1,
        ("binance", "weight"): 10 + 1 + listed["binance"],
        ("okx", "long-short-account-ratio"): listed["okx"],
        ("okx", "taker-volume"): listed["okx"],
        ("bitget", "account-long-short"): listed["bitget"],
        ("strike", "public"): 1,
        ("bybit", "ip"): 2 + listed["bybit"],
        ("hyperliquid", "weight"): 20,  # one call of weight 20
    }
    floors = {}
    for (venue, group), count in per_group.items():
        limit = registry.get(venue).limits[group]
        floors[f"{venue} {group} ({limit.requests}/{limit.seconds:g}s, {count} requests)"] = (
            max(0, math.ceil(count / limit.requests) - 1) * limit.seconds
        )
    tightest = max(floors, key=floors.get)
    return floors[tightest], tightest


def run_ours(sim: VenueSimulator, symbols: tuple[str, ...], end: datetime) -> float:
    request = ExtractRequest(symbols=symbols, ls_period="1h", interval_start=end - timedelta(hours=1), interval_end=end)

    async def main():
        with tempfile.TemporaryDirectory() as data:
            await asyncio.gather(
                *(
                    extract_venue(
                        venue, sim.base_url, request, data_dir=Path(data), run_id="bench", retry=RetryPolicy(seed=1)
                    )
                    for venue in VENUES
                )
            )

    started = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - started


def naive_calls(symbol: str) -> list[tuple[str, dict]]:
    """Every endpoint per symbol, as a scraper without batch endpoints would call them."""
    end = {"period": "1h", "limit": 2}
    return [
        ("/fapi/v1/premiumIndex", {"symbol": f"{symbol}USDT"}),
        ("/fapi/v1/openInterest", {"symbol": f"{symbol}USDT"}),
        ("/futures/data/topLongShortPositionRatio", {"symbol": f"{symbol}USDT", **end}),
        ("/futures/data/topLongShortAccountRatio", {"symbol": f"{symbol}USDT", **end}),
        ("/futures/data/globalLongShortAccountRatio", {"symbol": f"{symbol}USDT", **end}),
        ("/api/v5/public/open-interest", {"instType": "SWAP", "instId": f"{symbol}-USDT-SWAP"}),
        ("/api/v5/public/mark-price", {"instType": "SWAP", "instId": f"{symbol}-USDT-SWAP"}),
        ("/api/v5/public/funding-rate", {"instId": f"{symbol}-USDT-SWAP"}),
        ("/api/v5/rubik/stat/contracts/long-short-account-ratio", {"ccy": symbol, "period": "1H"}),
        ("/api/v2/mix/market/open-interest", {"symbol": f"{symbol}USDT", "productType": "USDT-FUTURES"}),
        ("/api/v2/mix/market/tickers", {"productType": "USDT-FUTURES"}),  # for this symbol's mark price
        ("/api/v2/mix/market/account-long-short", {"symbol": f"{symbol}USDT", "period": "1h"}),
        (f"/market/{symbol}-USD", {}),
        ("/v5/market/tickers", {"category": "linear", "symbol": f"{symbol}USDT"}),
        ("/v5/market/account-ratio", {"category": "linear", "symbol": f"{symbol}USDT", "period": "1h", "limit": 2}),
        ("/info", {"type": "metaAndAssetCtxs"}),  # Hyperliquid: a POST whose JSON body names the read
    ]


def run_naive(sim: VenueSimulator, symbols: tuple[str, ...]) -> float:
    started = time.perf_counter()
    with httpx.Client(base_url=sim.base_url, timeout=30) as client:
        for symbol in symbols:
            for path, params in naive_calls(symbol):
                for _ in range(5):
                    post = path == "/info"  # Hyperliquid's reads are POSTs
                    response = client.post(path, json=params) if post else client.get(path, params=params)
                    if response.status_code not in (418, 429):
                        break
                    time.sleep(float(response.headers.get("retry-after", "1")))
    return time.perf_counter() - started


def measure(kind: str, count: int, latency: float) -> dict:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with VenueSimulator(port=0, seed=7, latency=latency) as sim:
        symbols = universe(count)
        wall = run_ours(sim, symbols, end) if kind == "ours" else run_naive(sim, symbols)
        statuses = [r["status"] for r in sim.requests]
        floor, tightest = rate_limit_floor(sim, symbols)
        return {
            "run": kind,
            "symbols": count,
            "requests": len(statuses),
            "minimum": sum(minimum_requests(sim, symbols).values()),
            "429s": statuses.count(429) + statuses.count(418),
            "wall_s": wall,
            "floor_s": floor,
            "tightest": tightest,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, nargs="+", default=[50])
    parser.add_argument("--latency", type=float, default=0.08, help="seconds the simulator adds per response")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement (medians are reported)")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    kinds = ["ours"] if args.skip_naive else ["ours", "naive"]
    jobs = [(kind, count) for count in args.symbols for kind in kinds for _ in range(args.repeats)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        runs = list(pool.map(lambda job: measure(job[0], job[1], args.latency), jobs))
    rows = []
    for kind, count in dict.fromkeys((kind, count) for kind, count in jobs):
        mine = [r for r in runs if r["run"] == kind and r["symbols"] == count]
        rows.append(
            {
                **mine[0],
                "wall_s": statistics.median(r["wall_s"] for r in mine),
                "walls_s": [round(r["wall_s"], 1) for r in mine],
                "requests": statistics.median(r["requests"] for r in mine),
                "429s": max(r["429s"] for r in mine),
            }
        )
    table = [
        [
            r["run"],
            r["symbols"],
            r["requests"],
            r["minimum"],
            f"{r['requests'] / r['minimum']:.2f}",
            r["429s"],
            f"{r['wall_s']:.1f}",
            f"{r['floor_s']:.1f}",
            f"{r['wall_s'] / r['floor_s']:.2f}" if r["floor_s"] else "-",
        ]
        for r in rows
    ]
    print(
        f"extract snapshot, all {len(VENUES)} venues, simulator latency {args.latency * 1000:.0f} ms per request; "
        f"median of {args.repeats} runs (the most 429s of any run)"
    )
    print(
        tabulate(
            table,
            headers=["run", "symbols", "requests", "minimum", "req/min", "429s", "wall s", "floor s", "wall/floor"],
        )
    )
    for row in rows:
        print(f"{row['run']} {row['symbols']} symbols: wall of each run {row['walls_s']} s")
        if row["run"] == "ours":
            print(f"{row['symbols']} symbols: floor = the tightest documented limit: {row['tightest']}")
    summary = []
    by_key = {(r["run"], r["symbols"]): r for r in rows}
    for count in args.symbols:
        ours, naive = by_key[("ours", count)], by_key.get(("naive", count))
        if naive:
            print(
                f"{count} symbols: naive/ours wall = {naive['wall_s'] / ours['wall_s']:.2f}x, "
                f"requests = {naive['requests'] / ours['requests']:.2f}x"
            )
        summary.append(
            {
                "benchmark": f"extract {count} symbols: wall s",
                "ours": ours["wall_s"],
                "baseline": naive["wall_s"] if naive else None,
                "limit": ours["floor_s"],
                "note": "limit = rate-limit floor",
            }
        )
        summary.append(
            {
                "benchmark": f"extract {count} symbols: requests",
                "ours": ours["requests"],
                "baseline": naive["requests"] if naive else None,
                "limit": ours["minimum"],
                "note": f"limit = minimum; 429s ours {ours['429s']}" + (f", naive {naive['429s']}" if naive else ""),
            }
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": summary, "medians": rows, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
