"""Crash safety: a SIGKILL at any point of the load's publish leaves the warehouse exactly as it was, and a kill
during an extract never leaves a half-written raw file or manifest where a reader looks.

Kill points are statement counts, not times: the child process wraps the DuckDB connection that
``positioning.warehouse.load.publish`` receives and sends SIGKILL to itself just before its k-th ``execute`` (or just after
COMMIT returns). Nothing in production code is changed; the monkeypatching happens in the child only.

CI runs a representative set of kill points (BEGIN, DELETE, INSERT facts, dimension upsert, ops, quality records,
COMMIT, after COMMIT); ``POSITIONING_FULL_MATRIX=1`` (``make reliability``) kills before every statement.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import INTERVAL_END, SIM_NOW_MS
from positioning import VENUES
from positioning.ingest.extract import extract_venue
from positioning.ingest.http import RateLimit, RetryPolicy
from positioning.sim import Limit, VenueSimulator
from positioning.venues.base import ExtractRequest

FULL = os.environ.get("POSITIONING_FULL_MATRIX", "") not in ("", "0")
SCHEMAS = ("core", "ops", "quality", "marts", "meta")
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.02, max_delay=0.1, seed=1)
RELAXED_CLIENT = {"account-long-short": RateLimit(50, 1.0, "test")}  # Bitget's 1/s would only slow the setup
RELAXED_SIM = {"bitget:account-long-short": Limit(50, 1, "test")}
CHILD_ENV = {**os.environ, "POSITIONING_QUALITY_DATA_DOCS": "0"}

# The child: run the real load with a connection proxy that kills the process at a statement count.
LOAD_CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    from datetime import datetime
    from pathlib import Path
    import positioning.warehouse.load as load

    data, run_id, interval_end = Path(sys.argv[1]), sys.argv[2], datetime.fromisoformat(sys.argv[3])
    kill_before, kill_after_commit = int(sys.argv[4]), sys.argv[5] == "1"
    statements = []

    class KillingConnection:
        def __init__(self, con):
            self._con = con

        def execute(self, sql, *args, **kwargs):
            statements.append(" ".join(str(sql).split())[:60])
            if len(statements) == kill_before:
                os.kill(os.getpid(), signal.SIGKILL)
            result = self._con.execute(sql, *args, **kwargs)
            if kill_after_commit and str(sql).strip().upper().startswith("COMMIT"):
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        def __getattr__(self, name):
            return getattr(self._con, name)

    real_publish = load.publish
    load.publish = lambda con, *args, **kwargs: real_publish(KillingConnection(con), *args, **kwargs)
    load.load_interval(interval_end, run_id, data=data)
    print(json.dumps(statements))
    """
)

# The child: one venue's extract with a file-writing hook that dies halfway through the n-th file it writes.
EXTRACT_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import datetime, timedelta
    from pathlib import Path
    from positioning.ingest.extract import run_extract
    from positioning.venues.base import ExtractRequest
    from positioning.ingest.http import RetryPolicy

    data, base_url, venue, kill_in_file = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    end = datetime.fromisoformat(sys.argv[5])
    opened = 0
    real_fdopen = os.fdopen

    class DyingFile:
        def __init__(self, handle):
            self._handle = handle

        def write(self, data):
            half = data[: max(1, len(data) // 2)]
            self._handle.write(half)
            self._handle.flush()
            os.fsync(self._handle.fileno())
            os.kill(os.getpid(), signal.SIGKILL)

        def __getattr__(self, name):
            return getattr(self._handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self._handle.__exit__(*exc)

    def fdopen(*args, **kwargs):
        global opened
        opened += 1
        handle = real_fdopen(*args, **kwargs)
        return DyingFile(handle) if opened == kill_in_file else handle

    os.fdopen = fdopen
    request = ExtractRequest(("BTC", "ETH"), "1h", end - timedelta(hours=1), end)
    run_extract(venue, base_url, request, data_dir=data, run_id="crash", retry=RetryPolicy(seed=1), timeout=5.0)
    print("finished")
    """
)


def extract_run(sim_url: str, data: Path, run_id: str, symbols: tuple[str, ...]) -> None:
    request = ExtractRequest(
        symbols=symbols, ls_period="1h", interval_start=INTERVAL_END - timedelta(hours=1), interval_end=INTERVAL_END
    )

    async def main():
        await asyncio.gather(
            *(
                extract_venue(
                    venue,
                    sim_url,
                    request,
                    data_dir=data,
                    run_id=run_id,
                    retry=FAST_RETRY,
                    limits=RELAXED_CLIENT if venue == "bitget" else None,
                )
                for venue in VENUES
            )
        )

    asyncio.run(main())


def dump(warehouse: Path) -> dict[str, list[tuple]]:
    """Every table of the warehouse's schemas, row for row (sorted)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN "
            f"({', '.join('?' * len(SCHEMAS))}) AND table_type = 'BASE TABLE' ORDER BY ALL",
            list(SCHEMAS),
        ).fetchall()
        # Identifiers come from the catalog, not from input; quoted all the same.
        return {
            f"{schema}.{table}": con.execute(f'SELECT * FROM "{schema}"."{table}" ORDER BY ALL').fetchall()
            for schema, table in tables
        }


def facts(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("SELECT * EXCLUDE (loaded_at) FROM core.fact_positioning ORDER BY ALL").fetchall()


def run_load_child(data: Path, run_id: str, kill_before: int = 0, after_commit: bool = False):
    return subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_CHILD,
            str(data),
            run_id,
            INTERVAL_END.isoformat(),
            str(kill_before),
            "1" if after_commit else "0",
        ],
        capture_output=True,
        text=True,
        env=CHILD_ENV,
        timeout=240,
    )


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A data dir whose warehouse holds run A of the interval, with run B (other data, one more symbol) extracted
    and not yet loaded: loading B changes facts, the dimension, ops and quality tables."""
    from positioning.warehouse.load import load_interval

    data = tmp_path_factory.mktemp("crash") / "data"
    with VenueSimulator(port=0, seed=7, now_ms=SIM_NOW_MS, rate_limits=RELAXED_SIM) as sim:
        extract_run(sim.base_url, data, "run-a", ("BTC", "ETH"))
    with VenueSimulator(port=0, seed=8, now_ms=SIM_NOW_MS, rate_limits=RELAXED_SIM) as sim:
        extract_run(sim.base_url, data, "run-b", ("BTC", "ETH", "SOL"))
    load_interval(INTERVAL_END, "run-a", data=data)
    return data


@pytest.fixture(scope="module")
def publish_statements(published, tmp_path_factory) -> tuple[list[str], list[tuple]]:
    """The statements publish executes for run B (a dry run on a copy), and the facts it publishes."""
    copy = tmp_path_factory.mktemp("count") / "data"
    shutil.copytree(published, copy)
    child = run_load_child(copy, "run-b")
    assert child.returncode == 0, child.stderr[-3000:]
    statements = json.loads(child.stdout.strip().splitlines()[-1])
    assert statements[0].startswith("BEGIN") and statements[-1].startswith("COMMIT"), statements
    return statements, facts(copy / "warehouse.duckdb")


def kill_points(statements: list[str]) -> list[int]:
    """1-based statement numbers to die before: every statement (full), or one of each kind (CI)."""
    if FULL:
        return list(range(1, len(statements) + 1))
    wanted = [
        lambda s: s.startswith("BEGIN"),
        lambda s: s.startswith("DELETE FROM core.fact_positioning"),
        lambda s: s.startswith("INSERT INTO core.fact_positioning"),
        lambda s: s.startswith("INSERT INTO core.dim_instrument"),
        lambda s: s.startswith("DELETE FROM ops.extract_failures"),
        lambda s: "quality." in s,
        lambda s: s.startswith("COMMIT"),
    ]
    points = []
    for predicate in wanted:
        index = next((i for i, s in enumerate(statements) if predicate(s)), None)
        assert index is not None, (predicate, statements)
        points.append(index + 1)
    return sorted(set(points))


def test_sigkill_during_publish_leaves_the_warehouse_as_before(published, publish_statements, tmp_path):
    statements, facts_after = publish_statements
    before = dump(published / "warehouse.duckdb")
    assert facts(published / "warehouse.duckdb") != facts_after, "run B must change the facts for this test"
    points = kill_points(statements)

    def crash_at(point: int) -> tuple[int, subprocess.CompletedProcess, Path]:
        copy = tmp_path / f"kill-{point:03d}"
        shutil.copytree(published, copy)
        return point, run_load_child(copy, "run-b", kill_before=point), copy

    # Each kill point on its own copy, two at a time (each child imports great-expectations: seconds).
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        outcomes = list(pool.map(crash_at, points))
    for point, child, copy in outcomes:
        label = f"killed before statement {point}/{len(statements)}: {statements[point - 1]}"
        assert child.returncode == -signal.SIGKILL, (label, child.returncode, child.stderr[-2000:])
        assert dump(copy / "warehouse.duckdb") == before, label
    # The re-run after the last crash succeeds and publishes what an uninterrupted load publishes.
    _point, _child, last = outcomes[-1]
    rerun = run_load_child(last, "run-b")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert facts(last / "warehouse.duckdb") == facts_after


def test_sigkill_right_after_commit_keeps_the_new_version_whole(published, publish_statements, tmp_path):
    _statements, facts_after = publish_statements
    copy = tmp_path / "after-commit"
    shutil.copytree(published, copy)
    child = run_load_child(copy, "run-b", after_commit=True)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert facts(copy / "warehouse.duckdb") == facts_after
    with duckdb.connect(str(copy / "warehouse.duckdb"), read_only=True) as con:
        runs = con.execute("SELECT DISTINCT run_id FROM ops.extract_runs ORDER BY 1").fetchall()
        validations = con.execute("SELECT DISTINCT run_id FROM quality.validation_runs ORDER BY 1").fetchall()
    assert runs == validations == [("run-a",), ("run-b",)]


def assert_no_partial_files(data: Path) -> tuple[int, int]:
    """Every raw file and manifest a reader can see is complete; returns (visible raw files, temp leftovers)."""
    visible = [p for p in (data / "raw").rglob("*.json") if not p.name.startswith(".tmp-")]
    for path in visible:
        record = json.loads(path.read_text(encoding="utf-8"))  # a torn file would not parse
        assert {"meta", "body"} <= set(record), path
        assert record["meta"]["venue"] and "status" in record["meta"], path
    for path in data.glob("manifests/**/*.json"):
        if path.name.startswith(".tmp-"):
            continue
        manifest = json.loads(path.read_text(encoding="utf-8"))
        assert manifest["venue"] and isinstance(manifest["requests"], list), path
        for request in manifest["requests"]:
            for raw in request["raw_paths"]:
                assert Path(raw).exists(), f"{path} names {raw}, which is not there"
    leftovers = [p for p in data.rglob(".tmp-*")]
    return len(visible), len(leftovers)


@pytest.fixture
def slow_sim():
    # A little latency per response so that a kill by request count lands while requests are in flight.
    with VenueSimulator(port=0, seed=7, now_ms=SIM_NOW_MS, latency=0.05) as sim:
        yield sim


@pytest.mark.parametrize("kill_in_file", [1, 4, 10, 11], ids=lambda n: f"file-{n}")
def test_sigkill_while_writing_a_raw_file_or_manifest_leaves_nothing_half_written(slow_sim, tmp_path, kill_in_file):
    """Binance BTC+ETH writes 10 raw files then the manifest (the 11th file): die halfway through the n-th."""
    data = tmp_path / "data"
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            EXTRACT_CHILD,
            str(data),
            slow_sim.base_url,
            "binance",
            str(kill_in_file),
            INTERVAL_END.isoformat(),
        ],
        capture_output=True,
        text=True,
        env=CHILD_ENV,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, (child.returncode, child.stderr[-2000:])
    visible, leftovers = assert_no_partial_files(data)
    assert leftovers == 1, "the file being written stays under its temporary name"
    assert visible == min(kill_in_file - 1, 10)
    assert not list(data.glob("manifests/**/venue=*.json")), "a manifest is visible only once complete"


@pytest.mark.parametrize("after_requests", [1, 3, 6, 9])
def test_sigkill_at_any_moment_of_an_extract_leaves_only_complete_files(slow_sim, tmp_path, after_requests):
    """Killed from outside once the simulator has seen n requests (no clock race: the count decides)."""
    data = tmp_path / "data"
    process = subprocess.Popen(
        [sys.executable, "-c", EXTRACT_CHILD, str(data), slow_sim.base_url, "binance", "0", INTERVAL_END.isoformat()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=CHILD_ENV,
    )
    try:
        deadline = time.monotonic() + 60
        while len(slow_sim.requests) < after_requests and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
        process.stdout.close()
        process.stderr.close()
    assert_no_partial_files(data)
