"""Runs the SQL models in ``include/sql/models`` in name order, incrementally, and exports for BI.

A model file is one ``SELECT`` (a CTE chain) with a header comment::

    -- model: marts.symbol_snapshot
    -- grain: ...   -- keys: ...

Models read the intervals to rebuild from the temp table ``_touched_intervals(ts)`` and thresholds from the
one-row temp table ``_settings``. The runner deletes those intervals from the model's table and inserts the
model's rows, inside the caller's transaction. A table whose columns no longer match its model (a new release
changed it) is dropped and rebuilt over every interval.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from positioning.config import sql_dir
from positioning.raw import interval_stamp
from positioning.settings import SkewThresholds

_MODEL_HEADER = re.compile(r"^--\s*model:\s*([a-z_]+\.[a-z_]+)\s*$", re.MULTILINE)

# The sortBy param's orders (stable interface), as ORDER BY clauses over marts.symbol_snapshot.
SORT_ORDERS = {
    "oi_desc": "total_oi_usd DESC NULLS LAST, symbol",
    "ls_long_extreme_desc": "avg_ls_ratio DESC NULLS LAST, symbol",
    "ls_short_extreme_desc": "avg_ls_ratio ASC NULLS LAST, symbol",
    "symbol_asc": "symbol",
}


@dataclass(frozen=True)
class Model:
    target: str
    path: Path
    sql: str


def load_models(directory: Path | None = None) -> list[Model]:
    directory = directory or sql_dir() / "models"
    models = []
    for path in sorted(directory.glob("*.sql")):
        sql = path.read_text(encoding="utf-8")
        match = _MODEL_HEADER.search(sql)
        if not match:
            raise ValueError(f"{path}: the first lines must name the target table ('-- model: marts.x')")
        models.append(Model(match.group(1), path, sql.strip().rstrip(";")))
    return models


def _naive_utc(moment: datetime) -> datetime:
    from datetime import UTC

    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _prepare(con: duckdb.DuckDBPyConnection, intervals: Iterable[datetime] | None) -> None:
    thresholds = SkewThresholds.from_env()
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _settings AS SELECT ?::DOUBLE AS skew_extreme_long, "
        "?::DOUBLE AS skew_long_skewed, ?::DOUBLE AS skew_extreme_short, ?::DOUBLE AS skew_short_skewed",
        [thresholds.extreme_long, thresholds.long_skewed, thresholds.extreme_short, thresholds.short_skewed],
    )
    if intervals is None:
        con.execute("CREATE OR REPLACE TEMP TABLE _touched_intervals AS SELECT DISTINCT ts FROM core.fact_positioning")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _touched_intervals (ts TIMESTAMP)")
        con.executemany("INSERT INTO _touched_intervals VALUES (?)", [[_naive_utc(ts)] for ts in intervals])


def _columns(con: duckdb.DuckDBPyConnection, relation_sql: str) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in con.execute(f"DESCRIBE {relation_sql}").fetchall()]


def refresh(
    con: duckdb.DuckDBPyConnection,
    intervals: Iterable[datetime] | None,
    *,
    log: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Rebuild the given intervals (None = all) of every model. Returns rows written per model."""
    _prepare(con, intervals)
    written: dict[str, int] = {}
    for model in load_models():
        schema = model.target.split(".")[0]
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        wanted = _columns(con, f"({model.sql})")
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            model.target.split("."),
        ).fetchone()[0]
        if exists and _columns(con, model.target) != wanted:
            if log:
                log(f"{model.target}: columns changed with this release; rebuilding it over every interval")
            con.execute(f"DROP TABLE {model.target}")
            exists = 0
        if not exists:
            con.execute(f"CREATE TABLE {model.target} AS SELECT * FROM ({model.sql}) WHERE false")
            _prepare(con, None)  # a new table needs every interval
        con.execute(f"DELETE FROM {model.target} WHERE ts IN (SELECT ts FROM _touched_intervals)")
        con.execute(f"INSERT INTO {model.target} BY NAME {model.sql}")
        written[model.target] = con.execute(
            f"SELECT count(*) FROM {model.target} WHERE ts IN (SELECT ts FROM _touched_intervals)"
        ).fetchone()[0]
        if not exists:
            _prepare(con, intervals)
    return written


def snapshot_query(sort_by: str) -> str:
    """The documented query for one interval's snapshot in a ``sortBy`` order (parameter: ts)."""
    if sort_by not in SORT_ORDERS:
        raise ValueError(f"sortBy must be one of {', '.join(SORT_ORDERS)}, got {sort_by!r}")
    return f"SELECT * FROM marts.symbol_snapshot WHERE ts = ? ORDER BY {SORT_ORDERS[sort_by]}"


def _replace_atomically(target: Path, write: Callable[[Path], None]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    os.close(handle)
    try:
        write(Path(temp_name))
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def export_snapshot(con: duckdb.DuckDBPyConnection, ts: datetime, sort_by: str, exports: Path) -> dict[str, str]:
    """Write one interval's snapshot, sorted by ``sort_by``, as JSON and Parquet under ``exports/snapshots``."""
    frame = con.sql(snapshot_query(sort_by), params=[_naive_utc(ts)]).pl()
    directory = exports / "snapshots"
    stem = f"symbol_snapshot_{interval_stamp(ts)}"
    json_path, parquet_path = directory / f"{stem}.json", directory / f"{stem}.parquet"
    _replace_atomically(json_path, lambda p: frame.write_json(p))
    _replace_atomically(parquet_path, lambda p: frame.write_parquet(p))
    return {"json": str(json_path), "parquet": str(parquet_path), "rows": str(frame.height)}
