"""End to end: ``airflow backfill create`` on a running Airflow (``positioning airflow --sim``: api-server,
scheduler, dag-processor, triggerer; SQLite) against the simulator, compared with a bulk fill of the same window.

Slow (Airflow start-up plus one DAG run per hour): ``pytest -m slow tests/test_backfill_e2e.py``. The default is 4
hourly intervals, one wave at --max-active-runs 4 (about 1.5 minutes); the acceptance run is 48:
``POSITIONING_E2E_HOURS=48 .venv/bin/pytest -m slow tests/test_backfill_e2e.py`` (about 10 minutes on 2 cores).
The simulator follows the wall clock here, so the window is chosen relative to now.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import REPO
from positioning import registry
from positioning.sim import free_port

HOURS = int(os.environ.get("POSITIONING_E2E_HOURS", "4"))
# Start-up, the runs (about 15 s of task processes each on 2 cores, 4 at a time) and the bulk fill to compare.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300 + 45 * HOURS)]
SYMBOLS = ["BTC", "ETH", "SOL"]
BIN = Path(sys.executable).parent


def json_rows(stdout: str) -> list[dict]:
    """The JSON array the CLI prints with ``-o json``, skipping any log lines around it."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("[{") or line.strip() == "[]":
            return json.loads(line)
    return []


def facts(path: Path, ends: list[datetime]) -> list[tuple]:
    where = ", ".join(f"TIMESTAMP '{e:%Y-%m-%d %H:%M:%S}'" for e in ends)
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            f"SELECT * EXCLUDE (run_id, loaded_at) FROM core.fact_positioning WHERE ts IN ({where}) ORDER BY ALL"
        ).fetchall()


def test_airflow_backfill_create_equals_the_bulk_fill(tmp_path):
    from positioning.backfill import run_fill, window_for
    from positioning.sim import VenueSimulator

    home, data = tmp_path / "airflow", tmp_path / "data"
    port, sim_port = free_port(), free_port()
    env = {
        **os.environ,
        "POSITIONING_DATA_DIR": str(data),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "POSITIONING_QUALITY_DATA_DOCS": "0",
        # Only the backfill's runs: the hourly schedule's own run (50 symbols) would compete for the 2 cores and
        # for SQLite's write lock (a 48-interval run once crashed the scheduler with ObjectDeletedError).
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }
    log = open(tmp_path / "airflow.log", "w")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen(
        [
            str(BIN / "positioning"),
            "airflow",
            "--sim",
            "--no-login",
            "--port",
            str(port),
            "--sim-port",
            str(sim_port),
            "--airflow-home",
            str(home),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    try:
        _, last = window_for(1, datetime.now(UTC))
        ends = [last - timedelta(hours=h) for h in range(HOURS)][::-1]
        airflow = [str(BIN / "airflow")]
        deadline = time.monotonic() + 180
        while subprocess.run([*airflow, "dags", "details", "positioning"], env=env, capture_output=True).returncode:
            assert server.poll() is None and time.monotonic() < deadline, "Airflow did not come up with the DAG"
            time.sleep(3)
        started = time.monotonic()
        # No retry on "database is locked": Airflow's clean-up after that error deletes runs the scheduler may have
        # taken already. The venv's airflow gives SQLite a one-minute lock wait so that it does not happen.
        created = subprocess.run(
            [
                *airflow,
                "backfill",
                "create",
                "--dag-id",
                "positioning",
                "--from-date",
                (ends[0] - timedelta(hours=1)).isoformat(),
                "--to-date",
                (ends[-1] - timedelta(hours=1)).isoformat(),
                "--max-active-runs",
                "4",
                "--dag-run-conf",
                json.dumps({"symbols": SYMBOLS}),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        assert created.returncode == 0, created.stdout + created.stderr
        deadline = time.monotonic() + 60 * max(5, HOURS // 2)
        while True:
            listed = subprocess.run(
                [*airflow, "dags", "list-runs", "positioning", "-o", "json"], env=env, capture_output=True, text=True
            )
            runs = [r for r in json_rows(listed.stdout) if r["run_id"].startswith("backfill__")]
            states = [r["state"] for r in runs]
            if len(runs) == HOURS and all(s in ("success", "failed") for s in states):
                break
            assert time.monotonic() < deadline, f"backfill not done: {states}"
            time.sleep(10)
        print(f"{HOURS} backfill runs done in {time.monotonic() - started:.0f} s")
        assert states == ["success"] * HOURS, runs
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()

    with VenueSimulator(port=0, seed=7) as sim:  # the same seed as `positioning airflow --sim`
        bulk = tmp_path / "bulk"
        base_urls = dict.fromkeys(registry.history_names(), sim.base_url)
        run_fill((HOURS + 3) / 24, SYMBOLS, data=bulk, base_urls=base_urls)
    backfilled = facts(data / "warehouse.duckdb", ends)
    assert len({row[0] for row in backfilled}) == HOURS  # every backfilled hour has facts
    assert backfilled == facts(bulk / "warehouse.duckdb", ends)
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        duplicated = con.execute(
            "SELECT count(*) - count(DISTINCT (ts, venue, symbol, metric, period)) FROM core.fact_positioning"
        ).fetchone()[0]
    assert duplicated == 0
