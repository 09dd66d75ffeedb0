"""``.venv/bin/airflow`` for this repository: Airflow's own CLI with the project's defaults.

``make venv`` installs this as the virtualenv's ``airflow`` command so that
``.venv/bin/airflow dags test positioning <date>`` works from any directory with a fresh ``AIRFLOW_HOME``:

* the DAGs folder defaults to this repository's ``dags/`` and Airflow's example DAGs are off (an exported
  ``AIRFLOW__CORE__DAGS_FOLDER`` / ``AIRFLOW__CORE__LOAD_EXAMPLES`` still wins);
* ``dags test`` against a SQLite metadata database that does not exist yet creates it first (what
  ``airflow db migrate`` would do), instead of stopping with "Database migration required";
* a SQLite metadata database waits up to a minute for the write lock instead of sqlite3's 5 s (see
  :func:`sqlite_lock_wait`).
"""

from __future__ import annotations

import configparser
import os
import sys
from pathlib import Path

from positioning.config import REPO_ROOT

SQLITE_LOCK_WAIT_SECONDS = 60


def apply_defaults() -> None:
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO_ROOT / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    uri = sqlite_lock_wait(configured_metadata_uri(os.environ))
    if uri is not None:
        os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = uri


def configured_metadata_uri(environ: os._Environ | dict[str, str]) -> str:
    """The metadata database URI Airflow will use: the environment, else ``airflow.cfg``, else Airflow's default."""
    if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in environ:
        return environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    home = Path(environ.get("AIRFLOW_HOME") or "~/airflow").expanduser()
    default = f"sqlite:///{home}/airflow.db"
    config = home / "airflow.cfg"
    if not config.exists():
        return default
    parser = configparser.RawConfigParser()
    parser.read(config, encoding="utf-8")
    if parser.has_option("database", "sql_alchemy_conn_cmd") or parser.has_option(
        "database", "sql_alchemy_conn_secret"
    ):
        return ""  # computed elsewhere: leave it alone
    return parser.get("database", "sql_alchemy_conn", fallback=default)


def sqlite_lock_wait(uri: str) -> str | None:
    """``uri`` with a one-minute SQLite busy timeout, or None when it is not SQLite or already sets one.

    Airflow opens SQLite with sqlite3's default 5 s wait for the write lock. A scheduler starting a 48-run backfill
    holds that lock longer, and ``airflow backfill create`` then fails with "database is locked"; worse, Airflow's
    clean-up after that error deletes runs the scheduler has already picked up, and the scheduler dies on a
    FOREIGN KEY error (seen with Airflow 3.3.2). Waiting longer avoids the whole chain.
    """
    if not uri.startswith("sqlite:///") or "timeout=" in uri:
        return None
    return f"{uri}{'&' if '?' in uri else '?'}timeout={SQLITE_LOCK_WAIT_SECONDS}"


def _ensure_sqlite_metadata_db() -> None:
    from airflow.configuration import conf

    uri = conf.get("database", "sql_alchemy_conn")
    if not uri.startswith("sqlite:///"):
        return
    path = Path(uri.removeprefix("sqlite:///").split("?")[0])
    if path.exists() and path.stat().st_size > 0:
        return
    print(f"positioning: creating the Airflow metadata database at {path}", file=sys.stderr)
    from airflow.utils import db

    db.initdb()


def take_sqlite_write_lock_at_begin() -> None:
    """Every SQLite transaction of this process starts with ``BEGIN IMMEDIATE`` (SQLAlchemy's recipe for pysqlite).

    sqlite3 starts a transaction deferred: it reads first and asks for the write lock at its first write. If
    another process committed in between (a busy scheduler commits many times a second), SQLite refuses the
    upgrade at once with "database is locked", whatever the busy timeout, because waiting cannot help that
    transaction. ``airflow backfill create`` reads and writes for every run it creates, so over 48 runs it lost
    that race every time against a running scheduler. Taking the lock at BEGIN makes it wait its turn instead.
    Used for that command only: everywhere else it would serialise readers too.
    """
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _leave_begin_to_sqlalchemy(dbapi_connection, _record) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.isolation_level = None  # no implicit BEGIN from sqlite3 itself

    @event.listens_for(Engine, "begin")
    def _begin_immediate(connection) -> None:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def main() -> int:
    apply_defaults()
    if sys.argv[1:3] == ["dags", "test"]:
        _ensure_sqlite_metadata_db()
    if sys.argv[1:3] == ["backfill", "create"]:
        take_sqlite_write_lock_at_begin()
    from airflow.__main__ import main as airflow_main

    result = airflow_main()
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
