"""Concurrency: several loads at once, and analysts holding the warehouse open, never lose or duplicate a row.

DuckDB lets one process hold a database file read-write and then no other process may open it, not even
read-only. ``positioning.warehouse.connect`` therefore waits for the lock (backoff, logging each wait) up to
``LOCK_WAIT_SECONDS`` and then raises :class:`WarehouseLockedError` with what to do. In Airflow the one-slot pool
``positioning_warehouse`` serialises writers; these tests take the pool away and start the writers together.

The full-Airflow variant (scheduler runs and a backfill of overlapping intervals at once) is the backfill helper's
end-to-end test (tests/test_backfill_e2e.py); here the load itself is raced, in separate processes, as Airflow's task
processes would.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import INTERVAL_END, SIM_NOW_MS
from positioning import VENUES, warehouse
from positioning.ingest.extract import extract_venue
from positioning.ingest.http import RateLimit, RetryPolicy
from positioning.sim import Limit, VenueSimulator
from positioning.venues.base import ExtractRequest

INTERVALS = [INTERVAL_END - timedelta(hours=hours) for hours in range(4)]
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.02, max_delay=0.1, seed=1)
RELAXED_CLIENT = {"account-long-short": RateLimit(50, 1.0, "test")}
RELAXED_SIM = {"bitget:account-long-short": Limit(50, 1, "test")}
CHILD_ENV = {**os.environ, "POSITIONING_QUALITY_DATA_DOCS": "0"}

LOAD_CHILD = textwrap.dedent(
    """
    import json, sys
    from datetime import datetime
    from pathlib import Path
    from positioning.warehouse.load import load_interval

    waits = []
    summary = load_interval(datetime.fromisoformat(sys.argv[2]), sys.argv[3], data=Path(sys.argv[1]), log=waits.append)
    print(json.dumps({"facts": summary["facts"], "waits": [w for w in waits if "locked" in w]}))
    """
)
HOLD_CHILD = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
    print("held", flush=True)
    sys.stdin.read()  # held until the parent closes our stdin: no clock decides
    con.close()
    """
)


def run_id_of(end) -> str:
    return f"scheduled__{end:%Y%m%dT%H}"


def extract_intervals(data: Path) -> None:
    """Each interval extracted as its own scheduled run, the simulator's clock 90 s after its end."""
    with VenueSimulator(port=0, seed=7, now_ms=SIM_NOW_MS, rate_limits=RELAXED_SIM) as sim:
        for end in INTERVALS:
            sim.set_now(int(end.timestamp() * 1000) + 90_000)
            request = ExtractRequest(("BTC", "ETH"), "1h", end - timedelta(hours=1), end)

            async def main(request=request, end=end):
                await asyncio.gather(
                    *(
                        extract_venue(
                            venue,
                            sim.base_url,
                            request,
                            data_dir=data,
                            run_id=run_id_of(end),
                            retry=FAST_RETRY,
                            limits=RELAXED_CLIENT if venue == "bitget" else None,
                        )
                        for venue in VENUES
                    )
                )

            asyncio.run(main())


def facts_by_ts(path: Path) -> dict:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT * EXCLUDE (loaded_at) FROM core.fact_positioning ORDER BY ALL").fetchall()
    grouped: dict = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)
    return grouped


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("concurrency") / "data"
    extract_intervals(data)
    return data


@pytest.fixture(scope="module")
def sequential_reference(extracted, tmp_path_factory) -> dict:
    """The facts of the same loads run one after another (in this process)."""
    from positioning.warehouse.load import load_interval

    copy = tmp_path_factory.mktemp("sequential") / "data"
    shutil.copytree(extracted, copy)
    for end in INTERVALS:
        load_interval(end, run_id_of(end), data=copy)
    return facts_by_ts(copy / "warehouse.duckdb")


def test_parallel_loads_of_different_intervals_wait_for_each_other_and_lose_nothing(
    extracted, sequential_reference, tmp_path
):
    data = tmp_path / "data"
    shutil.copytree(extracted, data)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", LOAD_CHILD, str(data), end.isoformat(), run_id_of(end)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=CHILD_ENV,
        )
        for end in INTERVALS
    ]
    outputs = [child.communicate(timeout=300) for child in children]
    for child, (_out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err[-3000:]
        assert "Conflicting lock" not in err
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _err in outputs]
    assert any(report["waits"] for report in reports), "the loads were expected to meet the lock"
    assert facts_by_ts(data / "warehouse.duckdb") == sequential_reference
    assert len(sequential_reference) == len(INTERVALS)
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        duplicates = con.execute(
            "SELECT count(*) FROM (SELECT ts, venue, symbol, metric, period FROM core.fact_positioning "
            "GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()[0]
        runs = con.execute("SELECT count(DISTINCT run_id), count(*) FROM ops.extract_runs").fetchone()
    assert duplicates == 0
    assert runs == (len(INTERVALS), len(INTERVALS) * len(VENUES))


class Holder:
    """Another process holding the warehouse open (``ro``: an analyst; ``rw``: a writer) until released."""

    def __init__(self, path: Path, mode: str = "ro"):
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLD_CHILD, str(path), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline().strip()
        assert line == "held", self.process.stderr.read()

    def release(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=30)
            self.process.stdout.close()
            self.process.stderr.close()


@pytest.fixture
def loaded_once(extracted, tmp_path) -> Path:
    """A data dir whose warehouse exists (the first interval loaded) and the second interval still to load."""
    from positioning.warehouse.load import load_interval

    data = tmp_path / "data"
    shutil.copytree(extracted, data)
    load_interval(INTERVALS[0], run_id_of(INTERVALS[0]), data=data)
    return data


def test_a_load_waits_for_an_analyst_session_and_succeeds_when_it_closes(loaded_once, sequential_reference):
    from positioning.warehouse.load import load_interval

    end = INTERVALS[1]
    holder = Holder(loaded_once / "warehouse.duckdb", "ro")
    messages: list[str] = []
    waiting = threading.Event()
    outcome: dict = {}

    def log(message: str) -> None:
        messages.append(message)
        if "locked by another process" in message:
            waiting.set()

    def load() -> None:
        try:
            outcome["summary"] = load_interval(end, run_id_of(end), data=loaded_once, log=log)
        except Exception as exc:  # reported by the assertions below
            outcome["error"] = exc

    thread = threading.Thread(target=load)
    try:
        thread.start()
        assert waiting.wait(timeout=120), "the load should wait for the lock, and say so"
        assert thread.is_alive()
    finally:
        holder.release()
    thread.join(timeout=300)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["summary"]["facts"] > 0
    assert (
        facts_by_ts(loaded_once / "warehouse.duckdb")[end.replace(tzinfo=None)]
        == sequential_reference[end.replace(tzinfo=None)]
    )
    assert any(f"warehouse {loaded_once / 'warehouse.duckdb'} is locked" in m for m in messages)


@pytest.mark.parametrize("holder_mode, read_only", [("ro", False), ("rw", True), ("rw", False)])
def test_a_short_wait_fails_with_a_message_that_says_what_to_do(loaded_once, holder_mode, read_only):
    path = loaded_once / "warehouse.duckdb"
    holder = Holder(path, holder_mode)
    try:
        with pytest.raises(warehouse.WarehouseLockedError) as error:
            warehouse.connect(path, read_only=read_only, lock_wait=0.3)
    finally:
        holder.release()
    message = str(error.value)
    assert str(path) in message and "locked by another process" in message
    assert "Close other DuckDB sessions" in message and "exports" in message
    warehouse.connect(path, read_only=read_only, lock_wait=0.3).close()  # released: opens at once


def test_the_lock_wait_setting_reaches_the_load(loaded_once, monkeypatch):
    """With a 0.3 s setting the load gives up after two waits (0.2 s, 0.4 s); the holder lets go only after a
    third, so a load that ignores the setting succeeds instead of raising."""
    from positioning.warehouse import connection
    from positioning.warehouse.load import load_interval

    monkeypatch.setattr(connection, "LOCK_WAIT_SECONDS", 0.3)
    holder = Holder(loaded_once / "warehouse.duckdb", "ro")
    waits: list[str] = []

    def log(message: str) -> None:
        waits.append(message)
        if len(waits) == 3:
            holder.release()

    try:
        with pytest.raises(warehouse.WarehouseLockedError):
            load_interval(INTERVALS[1], run_id_of(INTERVALS[1]), data=loaded_once, log=log)
    finally:
        holder.release()


def test_the_warehouse_is_not_locked_while_the_quality_gate_validates(loaded_once, monkeypatch):
    """great-expectations takes seconds; during them another process (an analyst, a BI tool) can open the file."""
    from positioning.warehouse import load

    opened_during_audit: list[int] = []
    audit = load.audit

    def audit_and_try_the_file(*args, **kwargs):
        probe = "import duckdb, sys; duckdb.connect(sys.argv[1], read_only=True).close()"
        opened = subprocess.run([sys.executable, "-c", probe, str(loaded_once / "warehouse.duckdb")], check=False)
        opened_during_audit.append(opened.returncode)
        return audit(*args, **kwargs)

    monkeypatch.setattr(load, "audit", audit_and_try_the_file)
    load.load_interval(INTERVALS[2], run_id_of(INTERVALS[2]), data=loaded_once)
    assert opened_during_audit == [0]
