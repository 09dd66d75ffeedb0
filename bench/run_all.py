"""``make bench``: run every benchmark in bench/ and print one table.

Each benchmark runs its own baseline in the same invocation and writes ``{"rows": [...]}`` (benchmark, ours,
baseline, limit, note, and ``better: higher`` for throughputs) to a JSON file; this script keeps their full
output under ``bench/results/`` and prints: benchmark, our figure, baseline figure, how much better ours is than
the baseline, and how far ours is from the limit where a physical or documented limit exists (1.0 = at the limit).

The extraction benchmark waits on the venues' documented rate limits (minutes of sleeping), so it runs alongside the
bulk fill (whose fetch also sleeps on rate limits); the CPU-bound benchmarks after them run one at a time.

    .venv/bin/python bench/run_all.py [--only extract marts ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from tabulate import tabulate

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"

# name -> (script, extra arguments). Sized to finish in minutes on a 2-core machine.
# Bound by rate limits, not CPU: runs alongside its partner and is waited for before the next benchmark, so the
# CPU-bound ones after it (parse + load, marts, the DAG run) have the machine to themselves.
BACKGROUND = {"extract": "bulk_fill"}
BENCHMARKS = {
    "extract": ("extract_snapshot.py", ["--symbols", "50", "200"]),
    "bulk_fill": ("bench_bulk_fill.py", []),
    "archive_fill": ("bench_archive_fill.py", ["--days", "30", "--symbols", "5"]),
    "parse_load": ("bench_parse_load.py", []),
    "marts": ("bench_marts.py", ["--repeats", "3"]),
    "dag_run": ("bench_dag_run.py", ["--repeats", "2"]),
}


def fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def machine() -> str:
    import os

    cores = os.cpu_count()
    memory = ""
    try:
        with open("/proc/meminfo") as handle:
            memory = f", {int(handle.readline().split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    return f"{platform.machine()} {cores} cores{memory}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def start(name: str) -> tuple[subprocess.Popen, float]:
    """Start one benchmark; returns the process and its start time (wall clock, comparable with file times)."""
    script, extra = BENCHMARKS[name]
    output = RESULTS / f"{name}.json"
    output.unlink(missing_ok=True)
    print(f"[bench] {name} ...", flush=True)
    log = open(RESULTS / f"{name}.log", "w")  # noqa: SIM115 - the child writes it; closed with the process
    process = subprocess.Popen(
        [sys.executable, str(BENCH / script), *extra, "--json", str(output)], stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    return process, time.time()


def collect(name: str, running: tuple[subprocess.Popen, float], failures: list[str]) -> list[dict]:
    process, began = running
    code = process.wait()
    output, log = RESULTS / f"{name}.json", RESULTS / f"{name}.log"
    # A background benchmark is collected after the others: its log's last write is when it finished.
    seconds = log.stat().st_mtime - began
    print(f"[bench] {name}: exit {code} in {seconds:.0f} s (output: {log})", flush=True)
    if code != 0 or not output.exists():
        failures.append(f"{name}: exit {code}, see {log}")
        return []
    return json.loads(output.read_text())["rows"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS))
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    results: dict[str, list[dict]] = {}
    failures: list[str] = []
    started = time.monotonic()
    names = [name for name in BENCHMARKS if name in (args.only or BENCHMARKS)]
    background = {name: start(name) for name in names if name in BACKGROUND}
    for name in names:
        if name in BACKGROUND:
            continue
        results[name] = collect(name, start(name), failures)
        for waiting in [w for w in background if BACKGROUND[w] == name]:
            results[waiting] = collect(waiting, background.pop(waiting), failures)
    for name, running in background.items():  # its partner was not selected
        results[name] = collect(name, running, failures)
    rows = [row for name in names for row in results.get(name, [])]
    table = []
    for row in rows:
        ours, baseline, limit = row.get("ours"), row.get("baseline"), row.get("limit")
        higher_is_better = row.get("better") == "higher"  # throughput; else times and counts
        if higher_is_better:
            ratio = ours / baseline if ours and baseline else None
            to_limit = limit / ours if ours and limit else None
        else:
            ratio = baseline / ours if ours and baseline else None
            to_limit = ours / limit if ours and limit else None
        table.append(
            [row["benchmark"], fmt(ours), fmt(baseline), fmt(ratio), fmt(limit), fmt(to_limit), row.get("note", "")]
        )
    print()
    print(f"machine: {machine()}; total {time.monotonic() - started:.0f} s")
    print(
        tabulate(
            table,
            headers=["benchmark", "ours", "baseline", "ours better by", "limit", "off the limit by", "note"],
            disable_numparse=True,
        )
    )
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
