"""Benchmark: parse + load of a 30-day, 50-symbol, 5-minute history from raw files into DuckDB.

    .venv/bin/python bench/bench_parse_load.py [--days 30] [--symbols 50] [--json out.json]

Setup (not timed): the bulk history fill fetches Binance's four history endpoints at 5m for the window from the
simulator (rate limits off), landing ~3,600 raw files of up to 500 rows each, exactly as in production.

Timed, each in its own process (so peak RSS is that path's own), median of ``--repeats``:

* **ours**: the production path of the bulk fill: the venue parsers over every raw file, the vectorised
  "latest bucket ended at or before each hourly end" normalisation (polars), and the publish of the resulting
  facts into ``core.fact_positioning`` in one transaction. The quality gate is measured separately (``audit``).
* **naive baseline**: ``json`` + one ``INSERT`` per raw row (what a hand-written loader does), on a sample of
  the files (it is too slow for all of them); rows per second.
* **limit**: DuckDB ingesting the same raw rows from an in-memory Arrow table (no JSON, no Python per row).
* **JSON floor** (the profile's answer to "where does the rest go"): only getting the rows out of the landed files
  with polars, nothing else: every file read, the NDJSON envelopes and the JSON bodies decoded
  (``raw.read_raw_bodies`` + one ``str.json_decode`` per endpoint), no checks, no normalising, no DuckDB. Raw files
  keep each response verbatim as a string inside a JSON envelope, so this is the least any loader of them pays.

Throughput is raw rows (buckets of the venues' series) per second in every case.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

NAIVE_SAMPLE_FILES = 24  # ~12,000 rows: one INSERT per row runs at a few hundred rows/s


def prepare(data: Path, days: int, symbols: int) -> dict:
    from positioning.ingest import bulk as backfill
    from positioning.ingest.http import RateLimit, RetryPolicy
    from positioning.sim import VenueSimulator
    from positioning.symbols import default_symbols

    now = datetime(2026, 11, 20, 12, 1, 30, tzinfo=UTC)
    with VenueSimulator(port=0, seed=7, now_ms=int(now.timestamp() * 1000), enforce_rate_limits=False) as sim:
        first_end, last_end = backfill.window_for(days, now, "5m")
        plan = backfill.BulkPlan(first_end, last_end, tuple(default_symbols()[:symbols]), "5m", ("binance",), now)
        relaxed = {group: RateLimit(100_000, 1.0, "bench") for group in ("weight", "futures_data")}
        asyncio.run(
            backfill.fetch(
                plan,
                data,
                1,
                {"binance": sim.base_url},
                limits={"binance": relaxed},
                retry=RetryPolicy(seed=1),
                concurrency=16,
                timeout=30.0,
                stop_after_chunks=None,
                log=lambda message: None,
            )
        )
    return plan.to_json()


def _peak_rss_mib() -> float:
    """This process's own peak RSS. Not ``ru_maxrss``: Linux carries it over from the parent across fork + exec,
    so a spawned child would report the parent's peak (the set-up's, ~0.9 GiB here) as its own."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(data: str, plan_json: dict, queue) -> None:
    import duckdb
    import polars as pl
    from positioning import warehouse
    from positioning.ingest import bulk as backfill
    from positioning.ingest.manifests import ManifestStore
    from positioning.warehouse.normalize import bucket_facts, symbol_map
    from positioning.warehouse.parse import parse_manifests

    plan = backfill.BulkPlan.from_json(plan_json)
    path = Path(tempfile.mkdtemp()) / "warehouse.duckdb"
    with warehouse.writer(path):  # an existing warehouse, as every fill but the very first meets it
        pass
    timings = {}
    started = time.perf_counter()
    chunks = [c for c in ManifestStore(Path(data)).chunks(plan.run_id) if c.status == "ok"]
    parsed = parse_manifests(chunks)
    timings["parse"] = time.perf_counter() - started
    raw_rows = parsed.count()
    began = time.perf_counter()
    mapped = symbol_map([c for c in chunks if c.chunk != "listing"])
    ends_ms = [int(end.timestamp() * 1000) for end in plan.ends]
    facts = bucket_facts(mapped, parsed, ends_ms, 3_600_000)
    facts = facts.with_columns(
        ts=pl.from_epoch("end_ms", time_unit="ms").cast(pl.Datetime("us")),
        run_id=pl.lit(plan.run_id),
        loaded_at=pl.lit(datetime(2026, 11, 20), pl.Datetime("us")),
    ).drop("end_ms")
    timings["normalise"] = time.perf_counter() - began
    began = time.perf_counter()
    with warehouse.writer(path) as con:
        con.execute("BEGIN TRANSACTION")
        con.execute(
            "DELETE FROM core.fact_positioning WHERE ts BETWEEN ? AND ?",
            [plan.first_end.replace(tzinfo=None), plan.last_end.replace(tzinfo=None)],
        )
        con.register("_facts", facts)
        con.execute("INSERT INTO core.fact_positioning BY NAME SELECT * FROM _facts")
        con.execute("COMMIT")
        published = con.execute("SELECT count(*) FROM core.fact_positioning").fetchone()[0]
    timings["publish"] = time.perf_counter() - began
    total = time.perf_counter() - started
    del duckdb
    queue.put(
        {
            "seconds": total,
            "raw_rows": raw_rows,
            "published": published,
            "stages": timings,
            "peak_rss_mib": _peak_rss_mib(),
            "files": sum(len(r.raw_paths) for c in chunks for r in c.requests),
        }
    )


def _history_files(data: Path) -> list[Path]:
    return sorted(p for p in (data / "raw" / "venue=binance").rglob("*.json") if "endpoint=exchangeInfo" not in str(p))


def run_naive(data: str, queue) -> None:
    import duckdb

    files = _history_files(Path(data))[:NAIVE_SAMPLE_FILES]
    con = duckdb.connect(str(Path(tempfile.mkdtemp()) / "naive.duckdb"))
    con.execute("CREATE TABLE raw_rows (endpoint VARCHAR, symbol VARCHAR, ts BIGINT, a DOUBLE, b DOUBLE, c DOUBLE)")
    rows = 0
    started = time.perf_counter()
    for path in files:
        record = json.loads(path.read_text())
        endpoint = record["meta"]["endpoint"]
        for row in json.loads(record["body"]):
            if endpoint == "openInterestHist":
                values = (float(row["sumOpenInterest"]), float(row["sumOpenInterestValue"]), None)
            else:
                values = (float(row["longShortRatio"]), float(row["longAccount"]), float(row["shortAccount"]))
            con.execute(
                "INSERT INTO raw_rows VALUES (?, ?, ?, ?, ?, ?)",
                [endpoint, row["symbol"], int(row["timestamp"]), *values],
            )
            rows += 1
    seconds = time.perf_counter() - started
    queue.put({"seconds": seconds, "raw_rows": rows, "peak_rss_mib": _peak_rss_mib()})


def run_limit(data: str, queue) -> None:
    """DuckDB's own speed: the same raw rows, already in an Arrow table in memory, into a table."""
    import duckdb
    import pyarrow as pa

    columns: dict[str, list] = {"endpoint": [], "symbol": [], "ts": [], "a": [], "b": [], "c": []}
    for path in _history_files(Path(data)):
        record = json.loads(path.read_text())
        endpoint = record["meta"]["endpoint"]
        for row in json.loads(record["body"]):
            columns["endpoint"].append(endpoint)
            columns["symbol"].append(row["symbol"])
            columns["ts"].append(int(row["timestamp"]))
            if endpoint == "openInterestHist":
                columns["a"].append(float(row["sumOpenInterest"]))
                columns["b"].append(float(row["sumOpenInterestValue"]))
                columns["c"].append(None)
            else:
                columns["a"].append(float(row["longShortRatio"]))
                columns["b"].append(float(row["longAccount"]))
                columns["c"].append(float(row["shortAccount"]))
    table = pa.table(columns)
    con = duckdb.connect(str(Path(tempfile.mkdtemp()) / "limit.duckdb"))
    con.execute("CREATE TABLE raw_rows (endpoint VARCHAR, symbol VARCHAR, ts BIGINT, a DOUBLE, b DOUBLE, c DOUBLE)")
    started = time.perf_counter()
    con.execute("BEGIN TRANSACTION")
    con.register("_arrow", table)
    con.execute("INSERT INTO raw_rows SELECT * FROM _arrow")
    con.execute("COMMIT")
    seconds = time.perf_counter() - started
    queue.put({"seconds": seconds, "raw_rows": table.num_rows, "peak_rss_mib": _peak_rss_mib()})


def run_json_floor(data: str, queue) -> None:
    import polars as pl
    from positioning.ingest.raw import read_raw_bodies
    from positioning.venues.frames import DECODE_PAGES

    by_endpoint: dict[str, list[str]] = {}
    for path in _history_files(Path(data)):
        by_endpoint.setdefault(path.parent.parent.name, []).append(str(path))
    fields = ("symbol", "timestamp", "sumOpenInterest", "sumOpenInterestValue", "longShortRatio", "longAccount")
    page = pl.List(pl.Struct(dict.fromkeys((*fields, "shortAccount"), pl.String)))
    started = time.perf_counter()
    rows = 0
    for paths in by_endpoint.values():  # as ours: one endpoint's files at a time, decoded in chunks
        pages = read_raw_bodies(paths)
        chunked = pl.concat([pages.slice(i, DECODE_PAGES) for i in range(0, pages.height, DECODE_PAGES)], rechunk=False)
        rows += chunked.select(pl.col("body").str.json_decode(page)).explode("body").unnest("body").height
    seconds = time.perf_counter() - started
    queue.put({"seconds": seconds, "raw_rows": rows, "peak_rss_mib": _peak_rss_mib()})


def in_child(target, *args) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    from tabulate import tabulate

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-parse-load-") as scratch:
        data = Path(scratch)
        began = time.perf_counter()
        plan_json = prepare(data, args.days, args.symbols)
        print(
            f"[setup] {args.days} d x {args.symbols} symbols of Binance 5m history fetched in "
            f"{time.perf_counter() - began:.0f} s",
            flush=True,
        )
        ours = [in_child(run_ours, str(data), plan_json) for _ in range(args.repeats)]
        naive = [in_child(run_naive, str(data)) for _ in range(args.repeats)]
        limit = [in_child(run_limit, str(data)) for _ in range(args.repeats)]
        floor = [in_child(run_json_floor, str(data)) for _ in range(args.repeats)]

    def rate(runs):
        return statistics.median(r["raw_rows"] / r["seconds"] for r in runs)

    ours_rate, naive_rate, limit_rate, floor_rate = rate(ours), rate(naive), rate(limit), rate(floor)
    stages = {stage: statistics.median(r["stages"][stage] for r in ours) for stage in ours[0]["stages"]}
    table = [
        [
            "ours (parse + normalise + publish)",
            f"{ours[0]['raw_rows']:,}",
            f"{statistics.median(r['seconds'] for r in ours):.2f}",
            f"{ours_rate:,.0f}",
            f"{max(r['peak_rss_mib'] for r in ours):.0f}",
        ],
        [
            "naive (json + INSERT per row, sample)",
            f"{naive[0]['raw_rows']:,}",
            f"{statistics.median(r['seconds'] for r in naive):.2f}",
            f"{naive_rate:,.0f}",
            f"{max(r['peak_rss_mib'] for r in naive):.0f}",
        ],
        [
            "limit (DuckDB from in-memory Arrow)",
            f"{limit[0]['raw_rows']:,}",
            f"{statistics.median(r['seconds'] for r in limit):.2f}",
            f"{limit_rate:,.0f}",
            f"{max(r['peak_rss_mib'] for r in limit):.0f}",
        ],
        [
            "JSON floor (polars: read + decode only)",
            f"{floor[0]['raw_rows']:,}",
            f"{statistics.median(r['seconds'] for r in floor):.2f}",
            f"{floor_rate:,.0f}",
            f"{max(r['peak_rss_mib'] for r in floor):.0f}",
        ],
    ]
    print(
        f"parse + load, {args.days} d x {args.symbols} symbols, Binance 5m history ({ours[0]['files']:,} raw files, "
        f"{ours[0]['published']:,} facts published), median of {args.repeats}"
    )
    print(tabulate(table, headers=["path", "raw rows", "seconds", "rows/s", "peak RSS MiB"], disable_numparse=True))
    print("ours by stage (s): " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    print(
        f"ours / naive = {ours_rate / naive_rate:.0f}x (goal >= 50x); limit / ours = {limit_rate / ours_rate:.1f}x "
        f"(goal <= 3x); peak RSS {max(r['peak_rss_mib'] for r in ours):.0f} MiB (goal < 1024)"
    )
    print(
        f"JSON floor / ours = {floor_rate / ours_rate:.1f}x (what our checks, normalising and publishing add to "
        f"decoding the files); limit / JSON floor = {limit_rate / floor_rate:.1f}x (the decoding itself)"
    )
    if args.json:
        rows = [
            {
                "benchmark": "parse + load 30 d x 50 symbols 5m: raw rows/s",
                "ours": ours_rate,
                "baseline": naive_rate,
                "limit": limit_rate,
                "better": "higher",
                "note": "limit = DuckDB ingest from Arrow",
            },
            {
                "benchmark": "parse + load: raw rows/s against decoding alone",
                "ours": ours_rate,
                "baseline": None,
                "limit": floor_rate,
                "better": "higher",
                "note": "limit = polars reading + decoding the raw files, nothing else",
            },
            {
                "benchmark": "parse + load: peak RSS MiB",
                "ours": max(r["peak_rss_mib"] for r in ours),
                "baseline": None,  # the naive loader only ever sees a sample: its memory says nothing
                "limit": 1024.0,
                "note": "goal < 1 GiB",
            },
        ]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"rows": rows, "ours": ours, "naive": naive, "limit": limit, "json_floor": floor}, indent=1)
        )


if __name__ == "__main__":
    main()
