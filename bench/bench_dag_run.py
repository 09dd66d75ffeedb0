"""Benchmark: one full ``airflow dags test positioning`` for 50 symbols against the simulator (no added latency),
split into our tasks' own time (task durations from the metadata DB) and Airflow's overhead (the rest).

    .venv/bin/python bench/bench_dag_run.py [--repeats 2] [--symbols 50] [--json out.json]

``dags test`` runs the tasks one after another in one process, so wall = sum(task durations) + Airflow overhead
(DAG parsing, scheduling loop, task start-up, XCom). The simulator enforces the documented rate limits: Bitget's
1 request/s per long/short call is the floor of the extract step (about 47 s for the top 50).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from positioning.sim import VenueSimulator
from positioning.symbols import default_symbols
from tabulate import tabulate

AIRFLOW = Path(sys.executable).with_name("airflow")
VENUE_CONNECTIONS = ("BINANCE", "OKX", "BITGET", "STRIKE", "BYBIT", "HYPERLIQUID")


def one_run(symbols: list[str], interval_end: datetime) -> dict:
    with tempfile.TemporaryDirectory() as scratch, VenueSimulator(port=0, seed=7) as sim:
        home = Path(scratch) / "airflow"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "POSITIONING_DATA_DIR": str(Path(scratch) / "data"),
                **{f"AIRFLOW_CONN_POSITIONING_{venue}": sim.base_url for venue in VENUE_CONNECTIONS},
            }
        )
        subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, check=True, capture_output=True)
        started = time.perf_counter()
        result = subprocess.run(
            [
                str(AIRFLOW),
                "dags",
                "test",
                "positioning",
                interval_end.isoformat(),
                "-c",
                json.dumps({"symbols": symbols}),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"dags test failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        with sqlite3.connect(home / "airflow.db") as db:
            durations = db.execute(
                "SELECT task_id, sum(duration) FROM task_instance WHERE dag_id = 'positioning' GROUP BY task_id"
            ).fetchall()
    per_task = {task: seconds or 0.0 for task, seconds in durations}
    return {"wall_s": wall, "tasks_s": sum(per_task.values()), "per_task_s": per_task}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    symbols = list(default_symbols())[: args.symbols]
    interval_end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    runs = [one_run(symbols, interval_end) for _ in range(args.repeats)]
    wall = statistics.median(r["wall_s"] for r in runs)
    tasks = statistics.median(r["tasks_s"] for r in runs)
    per_task = {task: statistics.median(r["per_task_s"].get(task, 0.0) for r in runs) for task in runs[0]["per_task_s"]}
    print(f"airflow dags test positioning, {len(symbols)} symbols, median of {len(runs)}")
    rows = sorted(per_task.items(), key=lambda item: -item[1])
    print(tabulate([[task, f"{seconds:.2f}"] for task, seconds in rows], headers=["task", "seconds"]))
    print(
        f"wall {wall:.1f} s = our tasks {tasks:.1f} s + Airflow overhead {wall - tasks:.1f} s "
        f"({(wall - tasks) / wall:.0%} of the run)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        rows = [
            {
                "benchmark": f"dags test, {len(symbols)} symbols: wall s",
                "ours": wall,
                "baseline": None,
                "limit": tasks,
                "note": f"limit = our tasks' own time; Airflow overhead {wall - tasks:.1f} s",
            }
        ]
        args.json.write_text(
            json.dumps({"rows": rows, "wall_s": wall, "tasks_s": tasks, "per_task_s": per_task}, indent=1)
        )


if __name__ == "__main__":
    main()
