"""Benchmark: the marts step for one new interval on top of 1 day and on top of 1 year of hourly history.

The claim under test (issue #5): an hourly run's marts step costs the same whatever the history length, because
every model reads only the touched intervals and, for window models, the 30 days before them (so the cost rises
until 30 days of history exist, then stays flat: compare 30 d and 365 d).

For each history length the script
  1. generates seeded, deterministic hourly facts for 50 symbols x 4 venues straight into core.fact_positioning
     of a temporary DuckDB file, with DuckDB's range() (no network, no simulator server; about 1,100 fact rows
     per interval: OI in USD and coins, mark, funding, Binance's three ratios, OKX, Bitget, Strike's OI split);
  2. builds every model over the whole history once (refresh(con, None): the naive "rebuild everything" baseline,
     which is what each run would cost without incremental models);
  3. loads one new interval and times the marts step for it, refresh(con, [ts]) in a transaction as the DAG's
     build_marts task runs it, median of --repeats (the refresh is idempotent, so every repeat does the same work);
  4. times the Parquet export of every marts.* table separately (whole tables: its cost does grow with history,
     and it is reported apart from the marts step).

    .venv/bin/python bench/bench_marts.py [--symbols 50] [--repeats 5] [--seed 7] [--days 1 30 365]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from positioning import warehouse
from positioning.warehouse import marts

START = datetime(2025, 1, 1)
VENUES = ("binance", "okx", "bitget", "strike")

# One row per (interval, symbol, venue) of smooth seeded series, then one fact row per metric. Phases depend on
# the seed and the symbol, so the series differ per symbol and the windows have something to rank.
_GENERATE = """
INSERT INTO core.fact_positioning
    (ts, venue, symbol, metric, period, instrument, value, unit, usd_source, long_share, short_share, source_ts,
     run_id, loaded_at)
WITH hours AS (
    SELECT h, ?::TIMESTAMP + to_hours(h) AS ts FROM range(?, ?) AS r(h)
),
symbols AS (
    SELECT s, 'S' || lpad(s::VARCHAR, 3, '0') AS symbol, ?::DOUBLE + s * 0.7 AS phase FROM range(?) AS r(s)
),
venues AS (
    SELECT * FROM (VALUES (0, 'binance'), (1, 'okx'), (2, 'bitget'), (3, 'strike')) AS v(v, venue)
),
series AS (
    SELECT
        hours.ts,
        symbols.symbol,
        venues.venue,
        100 * (1 + s) * exp(0.05 * sin(h / 41.0 + phase) + 0.002 * sin(h / 3.0 + v)) AS mark,
        1e9 / (1 + s) * (1 + 0.3 * v) * exp(0.1 * sin(h / 53.0 + phase + v) + 0.03 * sin(h / 5.0 + phase))
            AS oi_usd,
        exp(0.4 * sin(phase * 3) + 0.2 * sin(h / 97.0 + phase + v) + 0.08 * sin(h / 11.0 + 2 * v + phase))
            AS ratio,
        0.0001 * sin(h / 8.0 + phase) AS funding
    FROM hours, symbols, venues
),
facts AS (
    SELECT ts, venue, symbol, 'oi_usd' AS metric, '' AS period, oi_usd AS value, 'USD' AS unit,
        CASE WHEN venue = 'okx' OR venue = 'strike' THEN 'venue' ELSE 'mark' END AS usd_source,
        CASE WHEN venue = 'strike' THEN ratio / (1 + ratio) END AS long_share,
        CASE WHEN venue = 'strike' THEN 1 / (1 + ratio) END AS short_share
    FROM series
    UNION ALL
    SELECT ts, venue, symbol, 'oi_coins', '', oi_usd / mark, 'coin', NULL, NULL, NULL FROM series WHERE venue <> 'strike'
    UNION ALL
    SELECT ts, venue, symbol, 'mark_price', '', mark, 'USD', NULL, NULL, NULL FROM series
    UNION ALL
    SELECT ts, venue, symbol, 'funding_rate', '', funding, 'fraction', NULL, NULL, NULL FROM series
    UNION ALL
    SELECT ts, venue, symbol, unnest(['ls_top_position', 'ls_top_account', 'ls_global_account']), '1h',
        ratio * unnest([1.0, 0.9, 1.1]), 'ratio', NULL, NULL, NULL
    FROM series WHERE venue = 'binance'
    UNION ALL
    SELECT ts, venue, symbol, 'ls_account', '1h', ratio, 'ratio', NULL, ratio / (1 + ratio), 1 / (1 + ratio)
    FROM series WHERE venue IN ('okx', 'bitget')
    UNION ALL
    SELECT ts, venue, symbol, 'ls_oi', '', ratio, 'ratio', NULL, ratio / (1 + ratio), 1 / (1 + ratio)
    FROM series WHERE venue = 'strike'
)
SELECT ts, venue, symbol, metric, period, NULL, value, unit, usd_source, long_share, short_share, ts,
    'bench', TIMESTAMP '2025-01-01'
FROM facts
ORDER BY ts  -- as hourly loads land them: row groups stay narrow in time
"""


def generate(con, first_hour: int, last_hour: int, symbols: int, seed: int) -> None:
    con.execute(_GENERATE, [START, first_hour, last_hour, float(seed), symbols])


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def refresh_in_transaction(con, intervals) -> None:
    con.execute("BEGIN TRANSACTION")
    marts.refresh(con, intervals)
    con.execute("COMMIT")


def measure(days: int, symbols: int, repeats: int, seed: int, directory: Path) -> dict[str, float]:
    hours = days * 24
    path = directory / f"history_{days}d.duckdb"
    with warehouse.writer(path) as con:
        generation = timed(lambda: generate(con, 0, hours, symbols, seed))
        fact_rows = con.execute("SELECT count(*) FROM core.fact_positioning").fetchone()[0]
        full_build = timed(lambda: refresh_in_transaction(con, None))
        new_interval = (START + timedelta(hours=hours)).replace(tzinfo=UTC)
        generate(con, hours, hours + 1, symbols, seed)  # this hour's load
        con.execute("CHECKPOINT")
        steps = [timed(lambda: refresh_in_transaction(con, [new_interval])) for _ in range(repeats)]
        exports = [timed(lambda: marts.export_marts(con, directory / f"exports_{days}d")) for _ in range(3)]
        mart_rows = sum(
            con.execute(f"SELECT count(*) FROM marts.{table}").fetchone()[0] for table in marts.mart_tables(con)
        )
    return {
        "days": days,
        "fact_rows": fact_rows,
        "mart_rows": mart_rows,
        "generate_s": generation,
        "full_build_s": full_build,
        "step_s": statistics.median(steps),
        "step_min_s": min(steps),
        "export_s": statistics.median(exports),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, nargs="+", default=[1, 30, 365], help="history lengths to compare")
    parser.add_argument("--json", type=Path, help="also write the summary rows here (bench/run_all.py)")
    args = parser.parse_args()
    from tabulate import tabulate

    with tempfile.TemporaryDirectory(prefix="bench-marts-") as temp:
        results = [measure(days, args.symbols, args.repeats, args.seed, Path(temp)) for days in args.days]
    short, long = results[0], results[-1]
    print(f"marts step for one new hourly interval, {args.symbols} symbols x {len(VENUES)} venues, seed {args.seed}")
    print(
        tabulate(
            [
                [
                    f"{r['days']} d",
                    f"{r['fact_rows']:,}",
                    f"{r['mart_rows']:,}",
                    f"{r['full_build_s']:.2f}",
                    f"{r['step_s'] * 1000:.0f} (min {r['step_min_s'] * 1000:.0f})",
                    f"{r['export_s'] * 1000:.0f}",
                ]
                for r in results
            ],
            headers=[
                "history",
                "fact rows",
                "mart rows",
                "full rebuild s (naive)",
                f"marts step ms (median of {args.repeats})",
                "export ms (not in step)",
            ],
            disable_numparse=True,
        )
    )
    print(
        f"\nmarts step ratio {long['days']} d / {short['days']} d: {long['step_s'] / short['step_s']:.2f} "
        f"(goal ~1: the cost must not grow with history); "
        f"naive full rebuild ratio: {long['full_build_s'] / short['full_build_s']:.0f}"
    )
    plateau = [r for r in results if r["days"] >= 30]
    if len(plateau) >= 2:
        print(
            f"marts step ratio {plateau[-1]['days']} d / {plateau[0]['days']} d: "
            f"{plateau[-1]['step_s'] / plateau[0]['step_s']:.2f} (both past the 30-day window)"
        )
    print(
        "Window models read the 30 days before the interval, so the step grows while history is shorter than "
        "30 days and is flat after that. The export writes whole tables: it grows with history."
    )
    if args.json:
        by_days = {r["days"]: r for r in results}
        rows = [
            {
                "benchmark": f"marts step, 1 interval on {r['days']} d history: s",
                "ours": r["step_s"],
                "baseline": r["full_build_s"],
                "limit": None,
                "note": "baseline = full rebuild",
            }
            for r in results
        ]
        if 1 in by_days and 365 in by_days:
            rows.append(
                {
                    "benchmark": "marts step 1 y / 1 d history: ratio",
                    "ours": by_days[365]["step_s"] / by_days[1]["step_s"],
                    "baseline": by_days[365]["full_build_s"] / by_days[1]["full_build_s"],
                    "limit": 1.0,
                    "note": "goal ~1; flat past the 30-day window",
                }
            )
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "results": results}, indent=1, default=str))


if __name__ == "__main__":
    main()
