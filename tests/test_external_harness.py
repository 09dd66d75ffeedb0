"""The stable interface as an outside harness uses it: the venv's ``airflow dags test`` with a fresh AIRFLOW_HOME,
the venue connections pointed at its own servers, then ``marts.symbol_snapshot`` read from the warehouse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
from conftest import INTERVAL_END

AIRFLOW = Path(sys.executable).with_name("airflow")


def test_dags_test_with_a_fresh_airflow_home_fills_the_snapshot(sim, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}  # nothing from the test session
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path / "fresh-airflow-home"),
            "POSITIONING_DATA_DIR": str(tmp_path / "data"),
            "POSITIONING_EXTRACT_RETRIES": "0",
            **{
                f"AIRFLOW_CONN_POSITIONING_{venue}": sim.base_url
                for venue in ("BINANCE", "OKX", "BITGET", "STRIKE", "BYBIT", "HYPERLIQUID")
            },
        }
    )
    conf = json.dumps({"symbols": ["BTC", "ETH"]})
    result = subprocess.run(
        [str(AIRFLOW), "dags", "test", "positioning", INTERVAL_END.isoformat(), "-c", conf],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT ts, symbol, venues_with_oi, total_oi_usd FROM marts.symbol_snapshot ORDER BY symbol"
        ).fetchall()
    assert [(ts, symbol, venues) for ts, symbol, venues, _ in rows] == [
        (INTERVAL_END.replace(tzinfo=None), "BTC", 6),  # listed on all six venues
        (INTERVAL_END.replace(tzinfo=None), "ETH", 6),
    ]
    assert all(total > 0 for *_, total in rows)


# ------------------------------------------------------------------------------ the SQLite metadata database


def test_the_venv_airflow_gives_sqlite_a_lock_wait_and_leaves_other_databases_alone(tmp_path):
    from positioning.airflow_entry import configured_metadata_uri, sqlite_lock_wait

    fresh = {"AIRFLOW_HOME": str(tmp_path)}
    assert sqlite_lock_wait(configured_metadata_uri(fresh)) == f"sqlite:///{tmp_path}/airflow.db?timeout=60"
    (tmp_path / "airflow.cfg").write_text("[database]\nsql_alchemy_conn = postgresql://u:p@db/airflow\n")
    assert sqlite_lock_wait(configured_metadata_uri(fresh)) is None
    (tmp_path / "airflow.cfg").write_text("[database]\nsql_alchemy_conn_cmd = cat /run/secret\n")
    assert sqlite_lock_wait(configured_metadata_uri(fresh)) is None
    own = {**fresh, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////x/airflow.db?timeout=5"}
    assert sqlite_lock_wait(configured_metadata_uri(own)) is None  # the user's own wait wins
    other = {**fresh, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////x/airflow.db?uri=true"}
    assert sqlite_lock_wait(configured_metadata_uri(other)) == "sqlite:////x/airflow.db?uri=true&timeout=60"


def test_airflow_backfill_create_holds_its_own_against_a_busy_sqlite_writer(tmp_path):
    """`airflow backfill create` against the SQLite file of a running scheduler: it waits out a writer that holds
    the lock for longer than sqlite3's 5 s, and it creates 48 runs while another process commits every few ms
    (each of those commits used to make it fail at once with "database is locked")."""
    import sqlite3
    import threading

    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False"}
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    airflow = str(AIRFLOW)
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([airflow, "dags", "reserialize"], env=env, check=True, capture_output=True)
    writer = sqlite3.connect(tmp_path / "airflow.db", isolation_level=None, check_same_thread=False, timeout=60)
    writer.execute("CREATE TABLE scratch_commits (n INTEGER)")

    def backfill(first: str, last: str) -> subprocess.CompletedProcess:
        window = ["--from-date", first, "--to-date", last, "--max-active-runs", "4"]
        return subprocess.run(
            [airflow, "backfill", "create", "--dag-id", "positioning", *window], env=env, capture_output=True, text=True
        )

    # 1. A writer that keeps the lock for 20 s: with a 5 s wait the CLI first gives up logging its action, then
    #    fails creating the backfill, both well before the lock goes.
    writer.execute("BEGIN IMMEDIATE")
    release = threading.Timer(20.0, writer.rollback)
    release.start()
    try:
        waited = backfill("2026-11-15T00:00:00+00:00", "2026-11-15T02:00:00+00:00")
    finally:
        release.join()
    assert waited.returncode == 0, waited.stdout + waited.stderr

    # 2. A writer committing every 5 ms (what a scheduler with runs to start looks like to SQLite).
    stop = threading.Event()

    def commit_until_stopped() -> None:
        n = 0
        while not stop.is_set():
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("INSERT INTO scratch_commits VALUES (?)", [n])
            writer.execute("COMMIT")
            n += 1
            stop.wait(0.005)

    committer = threading.Thread(target=commit_until_stopped)
    committer.start()
    with sqlite3.connect(tmp_path / "airflow.db") as metadata:
        # The previous backfill must be complete before another one of the same DAG may start.
        metadata.execute("UPDATE backfill SET completed_at = CURRENT_TIMESTAMP")
    try:
        busy = backfill("2026-11-17T00:00:00+00:00", "2026-11-18T23:00:00+00:00")
    finally:
        stop.set()
        committer.join()
        writer.close()
    assert busy.returncode == 0, busy.stdout + busy.stderr
    with sqlite3.connect(tmp_path / "airflow.db") as metadata:
        runs = metadata.execute("SELECT count(*) FROM dag_run WHERE run_id LIKE 'backfill__%'").fetchone()[0]
    assert runs == 3 + 48
