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
            **{f"AIRFLOW_CONN_POSITIONING_{venue}": sim.base_url for venue in ("BINANCE", "OKX", "BITGET", "STRIKE")},
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
        (INTERVAL_END.replace(tzinfo=None), "BTC", 4),
        (INTERVAL_END.replace(tzinfo=None), "ETH", 4),
    ]
    assert all(total > 0 for *_, total in rows)
