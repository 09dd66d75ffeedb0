"""The ``positioning`` command: the venue simulator, the offline demo, and the snapshot for humans.

positioning sim --host 127.0.0.1 --port 8900     serve the venue simulator until Ctrl-C
positioning demo                                   run the DAG once through Airflow against the simulator
positioning top --sort oi_desc --limit 20          print the latest snapshot from the warehouse (read-only)
positioning backfill --days 30 [--symbols BTC ETH]  bulk history fill of the warehouse (resumable)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from positioning import registry
from positioning.config import REPO_ROOT, warehouse_path
from positioning.params import SORT_KEYS


def top_columns() -> list[tuple[str, str, str]]:
    """(column, header, format) of ``positioning top``: one OI column per registered venue."""
    return [
        ("symbol", "symbol", "{}"),
        ("mark_price", "mark", "{:,.6g}"),
        ("total_oi_usd", "total OI $", "{:,.0f}"),
        *((f"{venue}_oi_usd", f"{venue} $", "{:,.0f}") for venue in registry.names()),
        ("venues_with_oi", "venues", "{}"),
        ("avg_ls_ratio", "avg L/S", "{:.3f}"),
        ("ls_metrics_count", "n L/S", "{}"),
        ("imbalance_pct", "imbal %", "{:+.1f}"),
        ("skew_label", "skew", "{}"),
    ]


def render_snapshot(rows: list[dict], ts: datetime | None = None) -> str:
    from tabulate import tabulate

    columns = [c for c in top_columns() if not rows or c[0] in rows[0]]
    table = [
        [fmt.format(row[column]) if row[column] is not None else "-" for column, _, fmt in columns] for row in rows
    ]
    title = f"positioning snapshot at {ts:%Y-%m-%d %H:%M} UTC" if ts else "positioning snapshot"
    return title + "\n" + tabulate(table, headers=[header for _, header, _ in columns], disable_numparse=True)


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments: one line naming the input and pointing at --help, exit code 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def latest_snapshot(sort_by: str, limit: int, path: Path | None = None) -> tuple[datetime | None, list[dict]]:
    from positioning import warehouse
    from positioning.warehouse.marts import snapshot_query

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


def cmd_compact(args: argparse.Namespace) -> int:
    from positioning.config import data_dir
    from positioning.ingest.compact import compact

    report = compact(args.data_dir or data_dir(), args.older_than_days, args.retention_days, log=print)
    print(json.dumps(report.as_dict(), indent=1, default=str))
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from positioning.sim import serve_forever

    return serve_forever(
        args.host,
        args.port,
        seed=args.seed,
        latency=args.latency,
        enforce_rate_limits=not args.no_rate_limits,
        now_ms=args.now_ms,
    )


def demo_environment(sim_url: str, airflow_home: Path) -> dict[str, str]:
    """The environment for Airflow subprocesses: project-local home, this repo's DAGs, venues at ``sim_url``."""
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # Airflow's standalone mode starts its components as `airflow ...` from PATH: the venv's.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            **{f"AIRFLOW_CONN_POSITIONING_{venue.upper()}": sim_url for venue in registry.names()},
            "AIRFLOW_CONN_POSITIONING_BINANCE_ARCHIVE": sim_url,  # the simulator serves the archive's paths too
        }
    )
    return env


def cmd_demo(args: argparse.Namespace) -> int:
    """Start the simulator, run ``airflow dags test positioning`` for the last complete hour, print the top 10."""
    from positioning.sim import VenueSimulator, free_port
    from positioning.symbols import SymbolError, normalise_symbols, split_symbols

    try:
        symbols = normalise_symbols(split_symbols(args.symbols)) if args.symbols else []
    except SymbolError as exc:
        print(f"positioning demo: error: --{exc}", file=sys.stderr)
        return 2
    airflow = str(Path(sys.executable).with_name("airflow"))
    airflow_home = Path(args.airflow_home).resolve()
    airflow_home.mkdir(parents=True, exist_ok=True)
    interval_end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    conf = {"symbols": symbols, "sortBy": "oi_desc"}
    started = time.monotonic()
    with VenueSimulator(host="127.0.0.1", port=free_port(), seed=args.seed) as sim:
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


POOLS = {
    **{
        f"positioning_{venue}": (1, f"{venue} extract tasks: one at a time so the venue's rate limits hold across runs")
        for venue in registry.names()
    },
    "positioning_warehouse": (1, "the single DuckDB writer (load, marts): DuckDB allows one writing process"),
}


def ensure_pools(airflow: str, env: dict[str, str]) -> None:
    for name, (slots, description) in POOLS.items():
        subprocess.run(
            [airflow, "pools", "set", name, str(slots), description], env=env, check=True, stdout=subprocess.DEVNULL
        )


def _stop_on_signal(*_: object) -> None:
    raise KeyboardInterrupt  # TERM stops `positioning airflow` the way Ctrl-C does


def cmd_airflow(args: argparse.Namespace) -> int:
    """Airflow (api-server, scheduler, dag-processor, triggerer) for this project; Ctrl-C or TERM stops it."""
    import signal

    signal.signal(signal.SIGTERM, _stop_on_signal)
    airflow = str(Path(sys.executable).with_name("airflow"))
    airflow_home = Path(args.airflow_home).resolve()
    airflow_home.mkdir(parents=True, exist_ok=True)
    sim = None
    if args.sim:
        from positioning.sim import VenueSimulator

        sim = VenueSimulator(host="127.0.0.1", port=args.sim_port, seed=args.seed).start()
        env = demo_environment(sim.base_url, airflow_home)
        print(f"[airflow] venue simulator on {sim.base_url}; the positioning_* connections point at it")
    else:
        env = demo_environment("", airflow_home)
        for venue in registry.names():  # live venues: the public URLs unless the user configured connections
            env.pop(f"AIRFLOW_CONN_POSITIONING_{venue.upper()}", None)
            if os.environ.get(f"AIRFLOW_CONN_POSITIONING_{venue.upper()}"):
                env[f"AIRFLOW_CONN_POSITIONING_{venue.upper()}"] = os.environ[
                    f"AIRFLOW_CONN_POSITIONING_{venue.upper()}"
                ]
    env.setdefault("AIRFLOW__CORE__PARALLELISM", "4")
    env.setdefault("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", "5")
    env.setdefault("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "False")
    env.setdefault("AIRFLOW__API__PORT", str(args.port))
    # Task processes report to the API server's execution API, which moved with the port.
    env.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"http://localhost:{args.port}/execution/")
    if args.no_login:
        env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "True"
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    ensure_pools(airflow, env)
    print(f"[airflow] http://{args.host}:{args.port}  (Airflow home {airflow_home})")
    if not args.no_login:
        print(f"[airflow] login: admin / the password in {airflow_home}/simple_auth_manager_passwords.json.generated")
    print("[airflow] Ctrl-C stops everything", flush=True)
    # Four components, each in its own process group, stopped together: `airflow standalone` orphans its
    # scheduler when it is signalled (airflow-notes.md), so it is not used here.
    components = [
        ["api-server", "--host", args.host, "--port", str(args.port)],
        ["scheduler"],
        ["dag-processor"],
        ["triggerer"],
    ]
    processes = [subprocess.Popen([airflow, *component], env=env, start_new_session=True) for component in components]
    try:
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        failed = next(process for process in processes if process.poll() is not None)
        print(f"[airflow] {' '.join(failed.args[1:2])} exited with {failed.returncode}; stopping", file=sys.stderr)
        return failed.returncode or 1
    except KeyboardInterrupt:
        print("[airflow] stopping", flush=True)
        return 0
    finally:
        stop_process_groups(processes)
        if sim is not None:
            sim.stop()


def stop_process_groups(processes: list[subprocess.Popen], grace: float = 20.0) -> None:
    """TERM every component's process group, wait, then KILL what is left: nothing is orphaned."""
    import signal

    # A second Ctrl-C (or TERM) while waiting must not abort the wait and skip the KILL below: that orphans
    # whatever was slow to stop. Shutdown is already under way; ignore further requests for it.
    for requested_stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(requested_stop, signal.SIG_IGN)
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def days_since(day: str) -> float:
    """``--from YYYY-MM-DD`` as a number of days up to now (whole days; the fill's window ends at the last full
    past hour). A bad date is a FillInputError naming the flag."""
    from positioning.ingest.bulk import FillInputError

    try:
        start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise FillInputError(f"--from {day!r}: expected a UTC day as YYYY-MM-DD, e.g. 2024-01-01") from None
    days = (datetime.now(UTC) - start).total_seconds() / 86_400
    if days <= 0:
        raise FillInputError(f"--from {day}: the day is not in the past; use an earlier day")
    return float(math.ceil(days))


def cmd_backfill(args: argparse.Namespace) -> int:
    """Bulk history fill (positioning.ingest.bulk): resumable; exit 1 if a chunk failed or an interval was blocked,
    2 for bad input (one line saying what to do; nothing reaches the warehouse)."""
    from positioning import connections
    from positioning.backfill import run_fill
    from positioning.config import data_dir
    from positioning.ingest.bulk import FillInputError, validated
    from positioning.symbols import split_symbols

    try:
        symbols = split_symbols(args.symbols or [])
        days = days_since(args.from_date) if args.from_date else args.days
        _, venues, _ = validated(days, symbols, args.venues, args.period)
        base_urls = {venue: connections.base_url(venue) for venue in venues}
        if "binance" in venues and not args.no_archive:
            base_urls["binance_archive"] = connections.base_url("binance_archive")
        result = run_fill(days, symbols, data=data_dir(), base_urls=base_urls, period=args.period, venues=venues)
    except FillInputError as exc:
        print(f"positioning backfill: error: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                k: result[k]
                for k in (
                    "run_id",
                    "complete",
                    "requests_sent",
                    "rate_limited",
                    "published",
                    "skipped",
                    "blocked",
                    "failed_chunks",
                    "fetch_seconds",
                    "load_seconds",
                )
            },
            indent=1,
        )
    )
    return 0 if result["complete"] else 1


def add_backfill_parser(commands: argparse._SubParsersAction) -> None:
    from positioning.periods import DEFAULT_PERIOD, LS_PERIODS

    history = ", ".join(registry.history_names())
    backfill = commands.add_parser(
        "backfill",
        help="fill the warehouse from the venues' history endpoints (resumable: run it again after a kill)",
    )
    backfill.add_argument(
        "--days", type=float, default=30.0,
        help="how many days back (the venues' REST history, and before it the Binance data archive)",
    )  # fmt: skip
    backfill.add_argument("--from", dest="from_date", help="fill from this UTC day (YYYY-MM-DD) instead of --days")
    backfill.add_argument(
        "--no-archive", action="store_true",
        help="do not use the Binance data archive (connection positioning_binance_archive) for days before REST",
    )  # fmt: skip
    backfill.add_argument(
        "--symbols", nargs="*", help="base symbols, space- or comma-separated (default: the bundled top 50)"
    )
    backfill.add_argument(
        "--period", default=DEFAULT_PERIOD, help=f"bucket size asked of the venues: {' '.join(LS_PERIODS)}"
    )
    backfill.add_argument("--venues", nargs="*", default=None, help=f"venues with history (default: {history})")
    backfill.set_defaults(handler=cmd_backfill)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        prog="positioning", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    sim = commands.add_parser("sim", help="serve the venue simulator")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8900)
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    sim.add_argument("--no-rate-limits", action="store_true", help="do not enforce the venues' documented limits")
    sim.add_argument("--now-ms", type=int, help="freeze the simulator's clock at this epoch millisecond")
    sim.set_defaults(handler=cmd_sim)

    demo = commands.add_parser("demo", help="run the DAG once against the simulator and print the top 10")
    demo.add_argument("--airflow-home", default=str(REPO_ROOT / ".airflow"))
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--symbols", nargs="*", help="base symbols, space- or comma-separated (default: top 50)")
    demo.set_defaults(handler=cmd_demo)

    airflow = commands.add_parser(
        "airflow",
        help="start Airflow (api-server, scheduler, dag-processor, triggerer) with the DAG, pools and connections",
    )
    airflow.add_argument("--sim", action="store_true", help="serve the venue simulator and point the venues at it")
    airflow.add_argument("--sim-port", type=int, default=8900)
    airflow.add_argument("--seed", type=int, default=7)
    airflow.add_argument("--port", type=int, default=8080)
    airflow.add_argument("--host", default="127.0.0.1", help="interface of the UI (0.0.0.0 to expose it)")
    airflow.add_argument("--airflow-home", default=str(REPO_ROOT / ".airflow"))
    airflow.add_argument("--no-login", action="store_true", help="development only: every user is an admin")
    airflow.set_defaults(handler=cmd_airflow)

    compact = commands.add_parser("compact", help="move old raw files into the Parquet archive; prune by retention")
    compact.add_argument("--older-than-days", type=int, default=7)
    compact.add_argument(
        "--retention-days",
        type=int,
        default=None,
        help="delete archived partitions older than this (default $POSITIONING_RAW_RETENTION_DAYS "
        "or 400; 0 = keep forever)",
    )
    compact.add_argument("--data-dir", type=Path, default=None, help="default $POSITIONING_DATA_DIR")
    compact.set_defaults(handler=cmd_compact)

    top = commands.add_parser("top", help="print the latest snapshot from the warehouse")
    top.add_argument("--sort", choices=SORT_KEYS, default="oi_desc")
    top.add_argument("--limit", type=int, default=20)
    top.set_defaults(handler=cmd_top)

    add_backfill_parser(commands)

    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
