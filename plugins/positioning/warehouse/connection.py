"""The DuckDB warehouse: connections that wait for the file lock, and versioned migrations.

DuckDB lets one process open a file read-write and then no other process may open it at all. The DAG has
exactly one writer task at a time (a one-slot pool); this module adds a bounded wait for the lock, so an
analyst's short read-only session makes the loader wait rather than fail mysteriously.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from positioning.config import sql_dir, warehouse_path

if TYPE_CHECKING:
    import polars as pl

# How long a writer waits for another process to release the file (POSITIONING_WAREHOUSE_LOCK_WAIT).
LOCK_WAIT_SECONDS = float(os.environ.get("POSITIONING_WAREHOUSE_LOCK_WAIT", "120"))
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class WarehouseLockedError(RuntimeError):
    pass


def _is_lock_error(exc: Exception) -> bool:
    return "lock" in str(exc).lower()


def connect(
    path: Path | None = None,
    *,
    read_only: bool = False,
    lock_wait: float | None = None,
    log: Callable[[str], None] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting up to ``lock_wait`` seconds (default: ``LOCK_WAIT_SECONDS``, read at call time)
    while another process holds its lock."""
    lock_wait = LOCK_WAIT_SECONDS if lock_wait is None else lock_wait
    path = Path(path or warehouse_path())
    if read_only and not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}: run the positioning DAG (or `make demo`) first")
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_wait
    delay = 0.2
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not _is_lock_error(exc) or time.monotonic() >= deadline:
                if _is_lock_error(exc):
                    raise WarehouseLockedError(
                        f"{path} is locked by another process ({exc}). Close other DuckDB sessions on it "
                        f"(read exports/*.parquet instead while the pipeline runs) and retry."
                    ) from exc
                raise
            if log:
                log(f"warehouse {path} is locked by another process; waiting {delay:.1f} s")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def migrations(directory: Path | None = None) -> list[tuple[int, Path]]:
    directory = directory or sql_dir() / "migrations"
    found = []
    for file in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(file.name)
        if not match:
            raise ValueError(f"migration file {file} must be named NNN_snake_case.sql")
        found.append((int(match.group(1)), file))
    return found


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply pending migrations in order, each in its own transaction. Returns the versions applied."""
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(
        "CREATE TABLE IF NOT EXISTS meta.schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    applied = {row[0] for row in con.execute("SELECT version FROM meta.schema_migrations").fetchall()}
    done = []
    for version, file in migrations():
        if version in applied:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(file.read_text(encoding="utf-8"))
            con.execute("INSERT INTO meta.schema_migrations VALUES (?, ?, now()::TIMESTAMP)", [version, file.name])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        done.append(version)
    return done


@contextmanager
def writer(
    path: Path | None = None, *, log: Callable[[str], None] | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived read-write connection with the schema migrated."""
    con = connect(path, log=log)
    try:
        migrate(con)
        yield con
    finally:
        con.close()


@contextmanager
def reader(path: Path | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(path, read_only=True)
    try:
        yield con
    finally:
        con.close()


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    """Append a polars frame to ``table`` by column name (nothing for an empty frame), inside the caller's
    transaction. ``table`` is always a literal of the caller's (core.*, ops.*, quality.*)."""
    if frame.height:
        con.register("_frame_rows", frame)
        try:
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _frame_rows")
        finally:
            con.unregister("_frame_rows")
