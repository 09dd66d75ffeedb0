"""The ``positioning`` command: the venue simulator, the offline demo, and the snapshot for humans.

positioning sim --host 127.0.0.1 --port 8900     serve the venue simulator until Ctrl-C
positioning demo                                   run the DAG once through Airflow against the simulator
positioning top --sort oi_desc --limit 20          print the latest snapshot from the warehouse (read-only)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from positioning import VENUES
from positioning.config import REPO_ROOT, warehouse_path
from positioning.params import SORT_KEYS

TOP_COLUMNS = (
    ("symbol", "symbol", "{}"),
    ("mark_price", "mark", "{:,.6g}"),
    ("total_oi_usd", "total OI $", "{:,.0f}"),
    ("binance_oi_usd", "binance $", "{:,.0f}"),
    ("okx_oi_usd", "okx $", "{:,.0f}"),
    ("bitget_oi_usd", "bitget $", "{:,.0f}"),
    ("strike_oi_usd", "strike $", "{:,.0f}"),
    ("venues_with_oi", "venues", "{}"),
    ("avg_ls_ratio", "avg L/S", "{:.3f}"),
    ("ls_metrics_count", "n L/S", "{}"),
    ("imbalance_pct", "imbal %", "{:+.1f}"),
    ("skew_label", "skew", "{}"),
)


def render_snapshot(rows: list[dict], ts: datetime | None = None) -> str:
    from tabulate import tabulate

    table = [
        [fmt.format(row[column]) if row[column] is not None else "-" for column, _, fmt in TOP_COLUMNS] for row in rows
    ]
    title = f"positioning snapshot at {ts:%Y-%m-%d %H:%M} UTC" if ts else "positioning snapshot"
    return title + "\n" + tabulate(table, headers=[header for _, header, _ in TOP_COLUMNS], disable_numparse=True)


def latest_snapshot(sort_by: str, limit: int, path: Path | None = None) -> tuple[datetime | None, list[dict]]:
    from positioning import warehouse
    from positioning.marts import snapshot_query

    with warehouse.reader(path or warehouse_path()) as con:
        ts = con.execute("SELECT max(ts) FROM marts.symbol_snapshot").fetchone()[0]
        if ts is None:
            return None, []
        cursor = con.execute(snapshot_query(sort_by) + " LIMIT ?", [ts, limit])
        names = [d[0] for d in cursor.description]
        return ts, [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def cmd_top(args: argparse.Namespace) -> int:
    try:
        ts, rows = latest_snapshot(args.sort, args.limit)
    except FileNotFoundError as exc:
        print(f"positioning top: {exc}", file=sys.stderr)
        return 1
    if not rows:
        print("positioning top: marts.symbol_snapshot is empty; run the DAG first", file=sys.stderr)
        return 1
    print(render_snapshot(rows, ts))
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from positioning.sim import serve_forever

    return serve_forever(
        args.host, args.port, seed=args.seed, latency=args.latency, enforce_rate_limits=not args.no_rate_limits
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def demo_environment(sim_url: str, airflow_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            **{f"AIRFLOW_CONN_POSITIONING_{venue.upper()}": sim_url for venue in VENUES},
        }
    )
    return env


def cmd_demo(args: argparse.Namespace) -> int:
    """Start the simulator, run ``airflow dags test positioning`` for the last complete hour, print the top 10."""
    from positioning.sim import VenueSimulator

    airflow = str(Path(sys.executable).with_name("airflow"))
    airflow_home = Path(args.airflow_home).resolve()
    airflow_home.mkdir(parents=True, exist_ok=True)
    interval_end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    conf = {"symbols": args.symbols or [], "sortBy": "oi_desc"}
    started = time.monotonic()
    with VenueSimulator(host="127.0.0.1", port=_free_port(), seed=args.seed) as sim:
        print(f"[demo] venue simulator on {sim.base_url}; Airflow home {airflow_home}", flush=True)
        env = demo_environment(sim.base_url, airflow_home)
        if not (airflow_home / "airflow.db").exists():
            print("[demo] initialising the Airflow metadata database (first run only)", flush=True)
            subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        log_path = airflow_home / f"demo-{interval_end:%Y%m%dT%H%MZ}.log"
        print(f"[demo] airflow dags test positioning {interval_end.isoformat()} (log: {log_path})", flush=True)
        with open(log_path, "w", encoding="utf-8") as log_file:
            process = subprocess.Popen(
                [airflow, "dags", "test", "positioning", interval_end.isoformat(), "-c", json.dumps(conf)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert process.stdout is not None
            for line in process.stdout:
                log_file.write(line)
                if any(marker in line for marker in ("extract ", "load 20", "marts:", "DagRun Finished")):
                    print("  " + line.strip()[:200], flush=True)
            code = process.wait()
    if code != 0:
        print(f"[demo] airflow dags test failed (exit {code}); see {log_path}", file=sys.stderr)
        return code
    ts, rows = latest_snapshot("oi_desc", 10)
    print()
    print(render_snapshot(rows, ts))
    print(f"\n[demo] done in {time.monotonic() - started:.0f} s. Warehouse: {warehouse_path()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="positioning", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser("sim", help="serve the venue simulator")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8900)
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    sim.add_argument("--no-rate-limits", action="store_true", help="do not enforce the venues' documented limits")
    sim.set_defaults(handler=cmd_sim)

    demo = commands.add_parser("demo", help="run the DAG once against the simulator and print the top 10")
    demo.add_argument("--airflow-home", default=str(REPO_ROOT / ".airflow"))
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--symbols", nargs="*", help="base symbols (default: the bundled top 50)")
    demo.set_defaults(handler=cmd_demo)

    top = commands.add_parser("top", help="print the latest snapshot from the warehouse")
    top.add_argument("--sort", choices=SORT_KEYS, default="oi_desc")
    top.add_argument("--limit", type=int, default=20)
    top.set_defaults(handler=cmd_top)

    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
