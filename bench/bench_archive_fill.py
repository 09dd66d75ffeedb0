"""Benchmark: a bulk fill whose days come from the Binance data archive (issue 17), against the simulator.

The window is ``--days`` before Binance's 30-day REST reach (the archive's) plus those 30 days (REST's), Binance only.
Printed, for the load (parse, build, audit and publish every hourly interval of the window):

* facts published per second, against the floor measured in the same invocation: polars alone reading the same
  CSVs out of the same landed zips (``binance_archive.parse_metrics``), i.e. what the load would cost if building,
  auditing and publishing were free;
* the fetch (checksum + zip per symbol and day) at our politeness limit (20 requests / s, 4 at a time), against
  that limit's floor;
* peak RSS of the process (the fill runs in it; the simulator runs in its own, as the archive would).

    .venv/bin/python bench/bench_archive_fill.py [--days 90] [--symbols 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from positioning.backfill import run_fill
from positioning.ingest.archive_fill import is_archive_chunk
from positioning.ingest.manifests import ManifestStore
from positioning.ingest.raw import read_raw
from positioning.symbols import default_symbols
from positioning.venues import binance_archive
from simulator_process import simulator_process


def polars_alone(data: Path, run_id: str) -> tuple[float, int]:
    """Seconds and rows of parsing every landed zip of the fill with polars, nothing else."""
    paths = [
        record.raw_paths[-1]
        for chunk in ManifestStore(data).chunks(run_id)
        if is_archive_chunk(chunk)
        for record in chunk.requests
        if record.endpoint == binance_archive.ENDPOINT and record.ok and record.raw_paths
    ]
    started, rows = time.perf_counter(), 0
    for path in paths:
        raw = read_raw(path)
        day = datetime.strptime(raw.meta["url"].rsplit("-metrics-", 1)[1][:10], "%Y-%m-%d").date()
        instrument = raw.meta["url"].rsplit("/", 2)[-2]
        oi, ratios = binance_archive.parse_metrics(raw.content(), instrument, day)
        rows += oi.height + ratios.height
    return time.perf_counter() - started, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=90)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    symbols = [s for s in default_symbols() if s not in ("MKR", "KAS")][: args.symbols]  # listed on Binance
    fill_now = datetime(2026, 11, 20, 12, 1, 30, tzinfo=UTC)  # the simulator's clock (frozen)
    data = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    with simulator_process(seed=7, now_ms=int(fill_now.timestamp() * 1000)) as base_url:
        started = time.perf_counter()
        result = run_fill(
            args.days + 30, symbols, data=data, base_urls={"binance": base_url, "binance_archive": base_url},
            venues=["binance"], now=fill_now, log=lambda line: print("  " + line, flush=True),
        )  # fmt: skip
        wall = time.perf_counter() - started
    floor_s, parsed_rows = polars_alone(data, result["run_id"])
    archive_requests = result["requests_sent"].get("binance_archive", 0)
    fetch_floor = archive_requests / binance_archive.LIMITS["archive"].requests
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load_s = result["load_seconds"]
    report = {
        "window_days": args.days + 30,
        "archive_days": args.days,
        "symbols": len(symbols),
        "intervals_published": result["published"],
        "facts": result["facts"],
        "archive_requests": archive_requests,
        "fetch_s": result["fetch_seconds"],
        "fetch_floor_s": round(fetch_floor, 1),
        "load_s": load_s,
        "facts_per_s": round(result["facts"] / load_s),
        "polars_alone_s": round(floor_s, 1),
        "polars_rows": parsed_rows,
        "load_over_polars_alone": round(load_s / floor_s, 1),
        "peak_rss_mib": round(peak_mib),
        "wall_s": round(wall, 1),
        "complete": result["complete"],
    }
    print(json.dumps(report, indent=1))
    if args.json:
        rows = [
            {
                "benchmark": f"archive fill {args.days + 30:g} d x {len(symbols)}: load facts/s",
                "ours": report["facts_per_s"],
                "baseline": None,
                "limit": round(result["facts"] / floor_s),
                "better": "higher",
                "note": f"limit = facts/s if load cost only polars reading the zips; peak RSS {report['peak_rss_mib']} MiB",
            },
            {
                "benchmark": "archive fill: fetch s",
                "ours": report["fetch_s"],
                "baseline": None,
                "limit": report["fetch_floor_s"],
                "note": f"{archive_requests} requests at our 20 requests/s politeness limit",
            },
        ]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "report": report}, indent=1))
    return 0 if result["complete"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
