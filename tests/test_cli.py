"""The `positioning` command with bad input: one line naming the input and what to do, exit code 2, no traceback,
and the warehouse exactly as it was. Good symbol spellings (comma or space separated) are accepted alike."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from positioning import registry, warehouse
from positioning.sim import VenueSimulator
from positioning.symbols import normalise_symbols, split_symbols


@pytest.fixture(scope="module")
def sim():
    with VenueSimulator(enforce_rate_limits=False) as server:
        yield server


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    with warehouse.writer(directory / "warehouse.duckdb") as con:  # a migrated warehouse with one published row
        con.execute(
            "INSERT INTO core.fact_positioning (ts, venue, symbol, metric, period, value, unit, run_id, loaded_at) "
            "VALUES ('2026-11-20 10:00:00', 'binance', 'BTC', 'oi_usd', '', 1.0, 'USD', 'seed', now())"
        )
    return directory


def tree(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with its content hash."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def run(data: Path, *args: str, sim_url: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "POSITIONING_DATA_DIR": str(data)}
    if sim_url:
        env.update({f"AIRFLOW_CONN_POSITIONING_{venue.upper()}": sim_url for venue in registry.names()})
    return subprocess.run(
        [sys.executable, "-m", "positioning.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["backfill", "--days", "2", "--period", "6h"], ["--period", "6h", "5m, 15m, 30m, 1h, 2h, 4h, 1d"]),
        (["backfill", "--days", "0"], ["--days", "0"]),
        (["backfill", "--days", "-1"], ["--days", "-1"]),
        (["backfill", "--days", "2", "--venues", "kraken"], ["--venues", "kraken", "binance, okx"]),
        (["backfill", "--days", "2", "--venues", "strike"], ["--venues", "strike", "without history"]),
        (["backfill", "--days", "2", "--symbols", "BTC/USDT"], ["--symbols", "BTC/USDT", "letters or digits"]),
        (["backfill", "--days", "two"], ["--days", "two", "--help"]),
        (["top", "--sort", "loudest"], ["--sort", "loudest", "--help"]),
        (["demo", "--symbols", "../x"], ["--symbols", "../x"]),
    ],
    ids=["period-6h", "days-0", "days-negative", "unknown-venue", "venue-without-history", "bad-symbol",
         "days-not-a-number", "unknown-sort", "demo-bad-symbol"],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2_and_changes_nothing(data, args, names):
    before = tree(data)
    result = run(data, *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert result.stdout == ""
    assert tree(data) == before


def test_a_symbol_no_venue_lists_is_named_and_nothing_reaches_the_warehouse(data, sim):
    before = tree(data)["warehouse.duckdb"]
    result = run(data, "backfill", "--days", "0.1", "--symbols", "BTC,NOTACOIN", sim_url=sim.base_url)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    expected = "positioning backfill: error: --symbols NOTACOIN: not listed on binance or okx or bybit"
    assert line.startswith(expected), line
    assert "Traceback" not in result.stderr
    assert tree(data)["warehouse.duckdb"] == before


@pytest.mark.parametrize("spelling", [["BTC,ETH"], ["BTC", "ETH"], ["BTC, eth"], ["btc,", "ETH"]])
def test_comma_and_space_separated_symbols_mean_the_same(spelling):
    assert normalise_symbols(split_symbols(spelling)) == ["BTC", "ETH"]


def test_backfill_with_comma_symbols_fills_both(data, sim):
    """The new user's first try (`--symbols BTC,ETH`) used to end in a polars traceback; now it fills both."""
    result = run(data, "backfill", "--days", "0.1", "--symbols", "BTC,ETH", sim_url=sim.base_url)
    assert result.returncode == 0, result.stderr[-2000:]
    with warehouse.reader(data / "warehouse.duckdb") as con:
        symbols = con.execute(
            "SELECT DISTINCT symbol FROM core.fact_positioning WHERE run_id LIKE 'bulk%' ORDER BY symbol"
        ).fetchall()
    assert symbols == [("BTC",), ("ETH",)]
