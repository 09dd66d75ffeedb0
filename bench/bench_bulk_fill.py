"""Benchmark: the bulk history fill (``positioning backfill``) of D days x N symbols at one period, against the
simulator enforcing the venues' documented rate limits.

Prints wall time (fetch and load separately), requests made per venue, 429s received, and the rate-limit floor:
the least time the documented limits allow for that many requests.

    .venv/bin/python bench/bench_bulk_fill.py [--days 30] [--symbols 50] [--period 1h] [--latency 0.02]

Floor, per limit group (requests n, limit L per window W): (ceil(n / L) - 1) x W, the largest over the groups:
Binance /futures/data: 1000 requests / 300 s (§1.2; 5 endpoints x symbols x ceil(buckets / 500) pages: OI, three
ratios, taker ratio); OKX rubik long-short-account-ratio and taker-volume: 5 requests / 2 s each, separate buckets
(§2.5, venues-more.md §4.1; one call per coin covers 30 days at 1H).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from positioning import VENUES, registry
from positioning.backfill import run_fill, window_for
from positioning.periods import PERIOD_MS
from positioning.sim import VenueSimulator
from positioning.symbols import default_symbols
from positioning.venues import binance, okx

LIMITS = {
    "binance /futures/data": (binance.LIMITS["futures_data"].requests, binance.LIMITS["futures_data"].seconds),
    "okx long-short-account-ratio": (
        okx.LIMITS["long-short-account-ratio"].requests,
        okx.LIMITS["long-short-account-ratio"].seconds,
    ),
}


def floor_seconds(requests: int, limit: int, window: float) -> float:
    return max(0, math.ceil(requests / limit) - 1) * window if requests else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--period", default="1h")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds the simulator adds to each response")
    parser.add_argument("--json", type=Path, help="also write the results here (make bench)")
    args = parser.parse_args()
    symbols = list(default_symbols())[: args.symbols]
    data = Path(tempfile.mkdtemp(prefix="bench-bulk-"))
    with VenueSimulator(port=0, seed=7, latency=args.latency) as sim:
        now = datetime.now(UTC)
        first, last = window_for(args.days, now, args.period)
        buckets = int((last - first).total_seconds() * 1000 // PERIOD_MS[args.period]) + 2
        listed = {venue: set(sim.state.listed(venue)) for venue in registry.history_names()}
        binance_calls = 5 * sum(s in listed["binance"] for s in symbols) * math.ceil(buckets / 500)
        okx_calls = sum(s in listed["okx"] for s in symbols)
        started = time.perf_counter()
        result = run_fill(
            args.days,
            symbols,
            data=data,
            base_urls={venue: sim.base_url for venue in VENUES},
            period=args.period,
            now=now,
            log=lambda line: print("  " + line, flush=True),
        )
        wall = time.perf_counter() - started
    floors = {
        "binance /futures/data": floor_seconds(binance_calls, *LIMITS["binance /futures/data"]),
        "okx long-short-account-ratio": floor_seconds(okx_calls, *LIMITS["okx long-short-account-ratio"]),
    }
    report = {
        "window": f"{first.isoformat()} .. {last.isoformat()} ({len(range(int((last - first).total_seconds() // 3600) + 1))} hourly intervals)",
        "symbols": len(symbols),
        "period": args.period,
        "requests_sent": result["requests_sent"],
        "requests_expected_minimum": {"binance": binance_calls + 1, "okx": 2 * okx_calls + 1},
        "status_counts": result["status_counts"],
        "http_429": result["rate_limited"],
        "rate_limit_floor_s": floors,
        "fetch_s": result["fetch_seconds"],
        "load_s": result["load_seconds"],
        "wall_s": round(wall, 1),
        "published_intervals": result["published"],
        "facts": result["facts"],
        "blocked": result["blocked"],
        "complete": result["complete"],
    }
    print(json.dumps(report, indent=1))
    if args.json:
        intervals = int((last - first).total_seconds() // 3600) + 1
        # What the same window costs as one Airflow run per hour (computed, not run): every run asks each history
        # endpoint for its own hour, 5 Binance calls per symbol, all under the same /futures/data limit.
        hourly_binance = 5 * sum(s in listed["binance"] for s in symbols) * intervals
        hourly_floor = floor_seconds(hourly_binance, *LIMITS["binance /futures/data"])
        sent = sum(result["requests_sent"].values())
        rows = [
            {
                "benchmark": f"bulk fill {args.days:g} d x {len(symbols)} symbols {args.period}: requests",
                "ours": sent,
                "baseline": hourly_binance,
                "limit": binance_calls + 2 * okx_calls + 2,
                "note": f"{result['rate_limited']} x 429; baseline = one run per hour (computed)",
            },
            {
                "benchmark": "bulk fill: fetch wall s",
                "ours": result["fetch_seconds"],
                "baseline": hourly_floor,
                "limit": max(floors.values()),
                "note": "limit = documented rate-limit floor; baseline = its floor for hourly runs",
            },
            {
                "benchmark": f"bulk fill: audit + publish of {result['published']} intervals, s",
                "ours": result["load_seconds"],
                "baseline": None,
                "limit": None,
                "note": f"great-expectations gate per week of intervals; wall {wall:.0f} s in all",
            },
        ]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "report": report}, indent=1))
    return 0 if result["complete"] and result["rate_limited"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
