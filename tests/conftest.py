"""Test-session setup: a private Airflow home (SQLite metadata DB), the DAG folder, and the venue simulator.

Airflow reads its configuration at import, so the environment is set here, before any test imports it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="positioning-test-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
        "POSITIONING_EXTRACT_RETRIES": "0",
        "POSITIONING_HTTP_TIMEOUT": "5",
    }
)

# A fixed, complete hourly interval; the simulator's clock is frozen 90 s after its end.
INTERVAL_END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SIM_NOW_MS = int(INTERVAL_END.timestamp() * 1000) + 90_000


# The longest files first (seconds on 2 cores, measured): `make test` hands whole files to two workers in
# collection order, so starting with the long ones keeps a short file, not a 2-minute one, for last.
LONGEST_FILES = ("test_reliability.py", "test_quality.py", "test_ui.py", "test_backfill_e2e.py",
                 "test_extract_sim.py", "test_dag.py", "test_backfill.py", "test_crash.py",
                 "test_external_harness.py", "test_alerts.py", "test_concurrency.py", "test_marts.py")  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest files first, each file's tests in their own order (a stable sort)."""
    rank = {name: position for position, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def airflow_db() -> None:
    from airflow.utils import db

    db.initdb()


class DagWithDefaultConf:
    """The DAG, whose ``test()`` spells out every param's default under the given conf.

    Within one session ``dag.test()`` lets a previous run's conf leak into a later run's params (the serialized
    DAG it writes to the metadata DB is reused), so a test that leaves a param out could inherit another test's
    value depending on test order. Filling the defaults makes every run's params exactly what its test says.
    """

    def __init__(self, dag):
        self._dag = dag

    def __getattr__(self, name):
        return getattr(self._dag, name)

    def test(self, *args, run_conf=None, **kwargs):
        from positioning.params import dag_params

        defaults = {name: param.value for name, param in dag_params().items()}
        return self._dag.test(*args, run_conf={**defaults, **(run_conf or {})}, **kwargs)


@pytest.fixture(scope="session")
def positioning_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors, bag.import_errors
    return DagWithDefaultConf(bag.get_dag("positioning"))


@pytest.fixture
def sim(monkeypatch) -> Iterator:
    """The venue simulator on 127.0.0.1 with a frozen clock, wired into every venue's connection."""
    from positioning import registry
    from positioning.sim import VenueSimulator

    with VenueSimulator(host="127.0.0.1", port=0, seed=7, now_ms=SIM_NOW_MS) as simulator:
        for venue in registry.names():
            monkeypatch.setenv(f"AIRFLOW_CONN_POSITIONING_{venue.upper()}", simulator.base_url)
        yield simulator


def run_interval(
    conf: dict, data: Path, run_id: str, end: datetime = INTERVAL_END, venues: tuple[str, ...] | None = None
) -> dict:
    """The DAG's tasks without Airflow for the hour ending at ``end``: plan, every planned venue's extract, load,
    marts. Returns the load's summary (``summary["quality"]`` is the gate's)."""
    from datetime import timedelta

    from positioning import pipeline, registry

    planned = pipeline.plan(conf)
    for venue in venues or registry.names():
        for spec in planned[venue]:
            pipeline.extract(spec, end - timedelta(hours=1), end, run_id, 1, data=data)
    summary = pipeline.load(end, run_id, data=data)
    pipeline.build_marts(end, "oi_desc", data=data)
    return summary


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("POSITIONING_DATA_DIR", str(path))
    return path
