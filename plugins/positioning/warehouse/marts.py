"""Runs the SQL models in ``include/sql/models`` in name order, incrementally, and exports the marts for BI.

Models
------
A model file is one ``SELECT`` (a CTE chain) with a header comment naming its target table, and optionally how
far back in time its rows look::

    -- model: marts.skew_history
    -- lookback: 30 days
    -- grain: ...   -- keys: ...   -- definitions: ...

A model is a Jinja template (as in dbt) rendered with the venue registry (:func:`template_context`): the
per-venue columns (``<venue>_oi_usd``, each adapter's ratio and value columns) are loops over the registered
venues, so adding a venue adds its columns without editing SQL.

Files run in name order, which is their dependency order: ``0xx_stg_*`` (staging: core pivoted, no rules) →
``0xx_int_*`` (intermediate) → ``1xx_marts_*`` (marts). Every model is materialised as a table keyed by ``ts``
(the data-interval end): the runner deletes the intervals it rebuilds and inserts the model's rows for them,
inside the caller's transaction. A table whose columns no longer match its model (a release changed it) is
dropped and rebuilt over every interval.

What a model reads
------------------
* ``_settings``: one row of thresholds, ``skew_*`` (:class:`~positioning.settings.SkewThresholds`) and
  ``signal_*`` (:class:`~positioning.settings.SignalThresholds`).
* ``_touched_intervals(ts)``: the intervals whose rows the model must produce (and only those).
* ``_lookback_ranges(lo, hi)``: the time ranges a window model may read its inputs from, disjoint, so that
  ``JOIN _lookback_ranges AS r ON x.ts BETWEEN r.lo AND r.hi`` never duplicates a row.

Incremental scope
-----------------
``refresh(con, intervals)`` is asked to rebuild some intervals R (a DAG run: its own interval; a backfill or a
re-run: that interval; ``None``: every interval in ``core.fact_positioning``, a full rebuild).

* A model without ``lookback``: ``_touched_intervals`` = R. Its row at ts depends on data at ts only.
* A model with ``lookback: L``: its row at ts depends on data in ``[ts - L, ts]``. So a change at t changes
  its rows at every u with ``t <= u <= t + L``: ``_touched_intervals`` = R ∪ {u in core.fact_positioning :
  t < u <= t + L for some t in R}. A live hourly run has no later interval, so this is R; a backfilled gap (or a
  corrected old interval) also rewrites the later intervals whose windows contain it, and no others.
  ``_lookback_ranges`` = the merged ranges ``[u - L, u]`` over the touched u: only those input rows are read,
  so one new interval costs the same on top of a day or of years of history.
* L must cover the model's whole dependency on time, transitively: a model that reads another window model's
  rows at the same ts (positioning_signals reads skew_history) declares at least that model's lookback, so
  that it is rewritten over the same intervals.

Full rebuild and incremental runs give the same rows (tests/test_marts.py compares them row for row, up to
floating-point rounding of windowed sums).

Exports
-------
:func:`export_marts` writes every ``marts.*`` table to ``exports/marts/<table>.parquet`` (temp file, then an
atomic rename), so BI tools read a consistent file without ever opening the DuckDB file (and its lock).
The sortBy orders are views ``marts.snapshot_<sortBy>`` over the latest interval (:func:`create_sort_views`).
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from positioning.config import sql_dir
from positioning.ingest.raw import interval_stamp
from positioning.settings import SignalThresholds, SkewThresholds

_MODEL_HEADER = re.compile(r"^--\s*model:\s*([a-z_]+\.[a-z_]+)\s*$", re.MULTILINE)
_LOOKBACK_HEADER = re.compile(r"^--\s*lookback:\s*(\d+)\s*(hours?|days?)\s*$", re.MULTILINE)

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
    lookback_hours: int = 0  # from the "-- lookback: N days|hours" header; 0 = the row at ts reads ts only


def template_context() -> dict[str, Any]:
    """What a model template sees: the registered venues and the columns their adapters declare."""
    from positioning import registry

    specs = registry.specs()

    def entries(kind: str) -> list[dict[str, Any]]:
        return [
            {
                "venue": spec.name,
                "name": c.name,
                "source": c.source,
                "seed_average": c.seed_average,
                "snapshot": c.snapshot,
            }
            for spec in specs
            for c in spec.columns
            if c.kind == kind
        ]

    ratios, values = entries("ratio"), entries("value")
    return {
        "venues": [spec.name for spec in specs],
        "ratio_columns": ratios,
        "seed_columns": [c for c in ratios if c["seed_average"]],
        "value_columns": values,
        "snapshot_values": [c for c in values if c["snapshot"]],
        "ratio_basis": {spec.name: spec.ratio_basis for spec in specs},
        "venue_ratios": {spec.name: [c.source for c in spec.ratio_columns()] or ["NULL"] for spec in specs},
    }


def render(sql: str, context: dict[str, Any]) -> str:
    """A model template rendered (undefined names are errors, not empty strings)."""
    import jinja2

    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    return environment.from_string(sql).render(**context)


@functools.lru_cache(maxsize=64)
def _rendered(path: Path, mtime_ns: int, size: int, venues: tuple[int, ...]) -> str:
    """One model rendered for one state of the registry; a run refreshes the marts many times with the same
    files and venues, and rendering costs more than the step itself on a small warehouse."""
    return render(path.read_text(encoding="utf-8"), template_context())


def load_models(directory: Path | None = None) -> list[Model]:
    from positioning import registry

    directory = directory or sql_dir() / "models"
    venues = tuple(id(spec) for spec in registry.specs())
    models = []
    for path in sorted(directory.glob("*.sql")):
        stat = path.stat()
        sql = _rendered(path, stat.st_mtime_ns, stat.st_size, venues)
        match = _MODEL_HEADER.search(sql)
        if not match:
            raise ValueError(f"{path}: the first lines must name the target table ('-- model: marts.x')")
        lookback = _LOOKBACK_HEADER.search(sql)
        hours = 0
        if lookback:
            hours = int(lookback.group(1)) * (24 if lookback.group(2).startswith("day") else 1)
        models.append(Model(match.group(1), path, sql.strip().rstrip(";"), hours))
    return models


def _naive_utc(moment: datetime) -> datetime:
    from datetime import UTC

    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _write_settings(con: duckdb.DuckDBPyConnection) -> None:
    """The one-row ``_settings`` table: every threshold a model uses, from positioning.settings."""
    values: dict[str, float] = {}
    for prefix, thresholds in (("skew", SkewThresholds.from_env()), ("signal", SignalThresholds.from_env())):
        values.update({f"{prefix}_{name}": float(value) for name, value in vars(thresholds).items()})
    columns = ", ".join(f"?::DOUBLE AS {name}" for name in values)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _settings AS SELECT {columns}", list(values.values()))


def request_intervals(con: duckdb.DuckDBPyConnection, intervals: Iterable[datetime] | None) -> None:
    """``_requested_intervals(ts)``: what the caller asked to rebuild (None = every interval in core)."""
    if intervals is None:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _requested_intervals AS SELECT DISTINCT ts FROM core.fact_positioning"
        )
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _requested_intervals (ts TIMESTAMP)")
        con.executemany(
            "INSERT INTO _requested_intervals VALUES (?)", [[_naive_utc(ts)] for ts in sorted(set(intervals))]
        )


def scope_intervals(con: duckdb.DuckDBPyConnection, lookback_hours: int, *, everything: bool) -> None:
    """``_touched_intervals`` and ``_lookback_ranges`` for one model (see the module docstring)."""
    if everything:
        con.execute("CREATE OR REPLACE TEMP TABLE _touched_intervals AS SELECT DISTINCT ts FROM core.fact_positioning")
    elif lookback_hours == 0:
        con.execute("CREATE OR REPLACE TEMP TABLE _touched_intervals AS SELECT ts FROM _requested_intervals")
    else:
        # Later intervals whose window contains a requested one; the range join prunes core by ts (zone maps).
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _touched_intervals AS "
            "SELECT ts FROM _requested_intervals "
            "UNION "
            "SELECT DISTINCT f.ts FROM core.fact_positioning AS f "
            "INNER JOIN _requested_intervals AS r ON f.ts > r.ts AND f.ts <= r.ts + to_hours(?::BIGINT)",
            [lookback_hours],
        )
    # [u - L, u] for every touched u, overlapping ranges merged (gaps and islands), so they are disjoint.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _lookback_ranges AS
        WITH spans AS (
            SELECT DISTINCT ts - to_hours(?::BIGINT) AS lo, ts AS hi FROM _touched_intervals
        ),
        flagged AS (
            SELECT
                lo,
                hi,
                coalesce(
                    lo > max(hi) OVER (ORDER BY lo, hi ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), true
                ) AS starts_island
            FROM spans
        ),
        islands AS (
            SELECT lo, hi, sum(starts_island::INTEGER) OVER (ORDER BY lo, hi ROWS UNBOUNDED PRECEDING) AS island
            FROM flagged
        )
        SELECT min(lo) AS lo, max(hi) AS hi FROM islands GROUP BY island
        """,
        [lookback_hours],
    )


def relation_columns(con: duckdb.DuckDBPyConnection, relation_sql: str) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in con.execute(f"DESCRIBE {relation_sql}").fetchall()]


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = ? AND table_name = ? AND table_type = 'BASE TABLE'",
            [schema, table],
        ).fetchone()[0]
    )


def refresh(
    con: duckdb.DuckDBPyConnection,
    intervals: Iterable[datetime] | None,
    *,
    log: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Rebuild the given intervals (None = all) of every model, and the sortBy views.

    Returns the rows written per model (window models include the later intervals they had to rewrite).
    """
    _write_settings(con)
    request_intervals(con, intervals)
    everything = intervals is None
    written: dict[str, int] = {}
    for model in load_models():
        schema, table = model.target.split(".")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        exists = _table_exists(con, schema, table)
        scope_intervals(con, model.lookback_hours, everything=everything or not exists)
        wanted = relation_columns(con, f"({model.sql})")
        if exists and relation_columns(con, model.target) != wanted:
            if log:
                log(f"{model.target}: columns changed with this release; rebuilding it over every interval")
            con.execute(f"DROP TABLE {model.target}")
            exists = False
            scope_intervals(con, model.lookback_hours, everything=True)
        if not exists:
            # Plain DDL, not "CREATE TABLE AS SELECT ... WHERE false": with DuckDB 2.0.0 a table created that way
            # and then bulk-inserted in the same transaction keeps empty zone maps, and filtered reads of it
            # ("ts IN (...)") return no rows until the database is reopened (tests/test_marts.py guards this).
            columns = ", ".join(f'"{name}" {column_type}' for name, column_type in wanted)
            con.execute(f"CREATE TABLE {model.target} ({columns})")
        con.execute(f"DELETE FROM {model.target} WHERE ts IN (SELECT ts FROM _touched_intervals)")
        con.execute(f"INSERT INTO {model.target} BY NAME {model.sql}")
        written[model.target] = con.execute(
            f"SELECT count(*) FROM {model.target} WHERE ts IN (SELECT ts FROM _touched_intervals)"
        ).fetchone()[0]
    create_sort_views(con)
    return written


def create_sort_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """``marts.snapshot_<sortBy>``: the latest interval's snapshot in that order, with its ``sort_rank``."""
    names = []
    for sort_by, order in SORT_ORDERS.items():
        name = f"marts.snapshot_{sort_by}"
        con.execute(
            f"CREATE OR REPLACE VIEW {name} AS "
            f"SELECT row_number() OVER (ORDER BY {order}) AS sort_rank, * FROM marts.symbol_snapshot "
            f"WHERE ts = (SELECT max(ts) FROM marts.symbol_snapshot) ORDER BY sort_rank"
        )
        names.append(name)
    return names


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


def mart_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The ``marts`` schema's tables (not its views), by name."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'marts' AND table_type = 'BASE TABLE' ORDER BY table_name"
    ).fetchall()
    return [row[0] for row in rows]


def export_marts(con: duckdb.DuckDBPyConnection, exports: Path) -> dict[str, str]:
    """Write every ``marts.*`` table whole to ``exports/marts/<table>.parquet``, each atomically replaced.

    Readers (BI tools, DuckDB's CLI, Python) never see a half-written file and never touch the warehouse's lock.
    Rows are sorted by ts (then the table's keys) so Parquet row-group statistics prune by time.
    """
    directory = exports / "marts"
    written = {}
    for table in mart_tables(con):
        keys = [name for name, _ in relation_columns(con, f"marts.{table}") if name in ("ts", "symbol", "venue")]

        def write(path: Path, table: str = table, keys: list[str] = keys) -> None:
            target = str(path).replace("'", "''")  # COPY takes no parameter for its path
            con.execute(
                f"COPY (SELECT * FROM marts.{table} ORDER BY {', '.join(keys)}) TO '{target}' "
                "(FORMAT parquet, COMPRESSION zstd)"
            )

        target = directory / f"{table}.parquet"
        _replace_atomically(target, write)
        written[table] = str(target)
    return written
