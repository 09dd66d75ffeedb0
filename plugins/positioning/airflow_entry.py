"""``.venv/bin/airflow`` for this repository: Airflow's own CLI with the project's defaults.

``make venv`` installs this as the virtualenv's ``airflow`` command so that
``.venv/bin/airflow dags test positioning <date>`` works from any directory with a fresh ``AIRFLOW_HOME``:

* the DAGs folder defaults to this repository's ``dags/`` and Airflow's example DAGs are off (an exported
  ``AIRFLOW__CORE__DAGS_FOLDER`` / ``AIRFLOW__CORE__LOAD_EXAMPLES`` still wins);
* ``dags test`` against a SQLite metadata database that does not exist yet creates it first (what
  ``airflow db migrate`` would do), instead of stopping with "Database migration required".
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from positioning.config import REPO_ROOT


def apply_defaults() -> None:
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO_ROOT / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


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


def main() -> int:
    apply_defaults()
    if sys.argv[1:3] == ["dags", "test"]:
        _ensure_sqlite_metadata_db()
    from airflow.__main__ import main as airflow_main

    result = airflow_main()
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
