"""Benchmark: the bulk history fill (``positioning backfill``) of D days x N symbols at one period, against the
simulator enforcing the venues' documented rate limits.

Prints wall time (fetch and load separately), requests made per venue, 429s received, and the rate-limit floor:
the least time the documented limits allow for that many requests.

    .venv/bin/python bench/bench_bulk_fill.py [--days 30] [--symbols 50] [--period 1h] [--latency 0.02]

Floor, per limit group (weight n of the requests made, limit L per window W): (ceil(n / L) - 1) x W, the largest
over the groups, counted from the responses the fill landed (one raw file per request) and the venues' declared
limits and endpoint costs. For 30 days x 50 symbols it is OKX's rubik groups (5 requests / 2 s): a 1H and a 1D
call per coin each (the 1D series fills the window's first hours, which the 1H series no longer keeps).
The simulator runs in a process of its own (``simulator_process``), as a venue would.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from positioning import VENUES, registry
from positioning.backfill import run_fill, window_for
from positioning.ingest.endpoints import Endpoint
from positioning.sim.state import SimState
from positioning.symbols import default_symbols
from positioning.venues import binance
from simulator_process import simulator_process


def floor_seconds(requests: int, limit: int, window: float) -> float:
    return max(0, math.ceil(requests / limit) - 1) * window if requests else 0.0


def endpoints_of(venue: str) -> dict[str, Endpoint]:
    module = importlib.import_module(f"positioning.venues.{venue}")
    return {e.name: e for e in vars(module).values() if isinstance(e, Endpoint)}


def landed_floors(data: Path) -> dict[str, float]:
    """Per "<venue> <limit group>": the documented limits' floor for the requests the fill made."""
    used: dict[tuple[str, str], int] = {}
    for folder in (data / "raw").glob("venue=*/endpoint=*"):
        venue, endpoint = folder.parent.name.split("=", 1)[1], folder.name.split("=", 1)[1]
        requests = sum(1 for _ in folder.rglob("*.json"))
        costs = endpoints_of(venue)[endpoint].costs if venue in registry.names() else {}
        for group, weight in costs.items():
            used[(venue, group)] = used.get((venue, group), 0) + weight * requests
    floors = {}
    for (venue, group), weight in sorted(used.items()):
        limit = registry.get(venue).limits[group]
        floors[f"{venue} {group}"] = floor_seconds(weight, limit.requests, limit.seconds)
    return floors


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
    state = SimState(7)
    with simulator_process(seed=7, latency=args.latency) as base_url:
        now = datetime.now(UTC)
        first, last = window_for(args.days, now, args.period)
        listed = {venue: set(state.listed(venue)) for venue in registry.history_names()}
        started = time.perf_counter()
        result = run_fill(
            args.days,
            symbols,
            data=data,
            base_urls={venue: base_url for venue in VENUES},
            period=args.period,
            now=now,
            log=lambda line: print("  " + line, flush=True),
        )
        wall = time.perf_counter() - started
    floors = landed_floors(data)
    floor = max(floors.values())
    report = {
        "window": f"{first.isoformat()} .. {last.isoformat()} ({len(range(int((last - first).total_seconds() // 3600) + 1))} hourly intervals)",
        "symbols": len(symbols),
        "period": args.period,
        "requests_sent": result["requests_sent"],
        "status_counts": result["status_counts"],
        "http_429": result["rate_limited"],
        "rate_limit_floor_s": floors,
        "fetch_s": result["fetch_seconds"],
        "load_s": result["load_seconds"],
        "wall_s": round(wall, 1),
        "wall_over_floor": round(wall / floor, 2) if floor else None,
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
        futures_data = binance.LIMITS["futures_data"]
        hourly_floor = floor_seconds(hourly_binance, futures_data.requests, futures_data.seconds)
        sent = sum(result["requests_sent"].values())
        rows = [
            {
                "benchmark": f"bulk fill {args.days:g} d x {len(symbols)} symbols {args.period}: requests",
                "ours": sent,
                "baseline": hourly_binance,
                "limit": None,
                "note": f"{result['rate_limited']} x 429; baseline = one run per hour (computed)",
            },
            {
                "benchmark": "bulk fill: fetch wall s",
                "ours": result["fetch_seconds"],
                "baseline": hourly_floor,
                "limit": floor,
                "note": "limit = documented rate-limit floor; baseline = its floor for hourly runs",
            },
            {
                "benchmark": f"bulk fill: end to end (fetch, audit, publish, marts) of {result['published']} intervals, s",
                "ours": round(wall, 1),
                "baseline": None,
                "limit": floor,
                "note": f"goal 2x the fetch floor; load {result['load_seconds']} s, great-expectations once per "
                "week of intervals",
            },
        ]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "report": report}, indent=1))
    return 0 if result["complete"] and result["rate_limited"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
