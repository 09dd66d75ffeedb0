"""The ``positioning`` DAG: perpetual-futures open interest and long/short ratios into a DuckDB warehouse.

Only wiring lives here; the work is in the ``positioning`` package (``positioning.pipeline``). Parsing this
file imports Airflow's SDK, the params and the venue registry (the adapters' declarations), nothing heavier.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, TaskGroup, dag, get_current_context, task
from positioning import registry
from positioning.params import dag_params

SCHEDULE = os.environ.get("POSITIONING_SCHEDULE", "0 * * * *")
EXTRACT_RETRIES = int(os.environ.get("POSITIONING_EXTRACT_RETRIES", "2"))

DOC_MD = f"""
# positioning

Where is perpetual-futures positioning crowded? Each run collects, for one data interval (schedule
`{SCHEDULE}`, UTC, set by `POSITIONING_SCHEDULE`):

* **open interest** in contracts, coins and USD per venue ({", ".join(spec.title for spec in registry.specs())}),
* **long/short ratios** (each venue's, see the trigger form's Venues section),
* mark prices and funding rates,

and publishes them to the DuckDB warehouse at `$POSITIONING_DATA_DIR/warehouse.duckdb`.

| task | what it does |
|---|---|
| `plan` | validates the params (symbols, venues, lsPeriod, sortBy) |
| `<venue>.extract` | one mapped task per enabled venue, in pool `positioning_<venue>`: HTTP only, every response landed verbatim under `raw/`, retried with exponential backoff |
| `load` | the single DuckDB writer (pool `positioning_warehouse`, 1 slot): parses this run's raw files with polars and replaces the interval in `core.fact_positioning` in one transaction |
| `build_marts` | rebuilds the interval in `marts.symbol_snapshot` and exports it (JSON + Parquet) under `exports/snapshots/` sorted by `sortBy` |
| `alert` | last step of every run (runs even when a venue or the quality gate failed; never decides the run's state): Telegram alerts for threshold crossings (`alertLsThreshold`, `alertLongThreshold`, `alertShortThreshold`), EXTREME_LONG/EXTREME_SHORT, positioning signals, a venue failing `alertVenueFailures` runs in a row and a blocked quality gate; once per crossing (state in `ops.alert_state`), every attempt in `ops.alerts`; bot token and chat id from the connection `positioning_telegram` |

A venue that fails (geo-block, ban, outage) fails its own extract task; the others still load, and
`ops.extract_runs` / `ops.extract_failures` say which venue and endpoint failed and why.
Venue base URLs come from the connections {", ".join(f"`{spec.connection_id}`" for spec in registry.specs())}
(default: the public APIs).
"""


@dag(
    dag_id="positioning",
    schedule=CronDataIntervalTimetable(SCHEDULE, timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    max_consecutive_failed_dag_runs=24,
    params=dag_params(),
    doc_md=DOC_MD,
    tags=["positioning", "crypto", "derivatives"],
    default_args={"owner": "positioning"},
)
def positioning():
    @task(multiple_outputs=False)
    def plan() -> dict:
        from positioning import pipeline

        return pipeline.plan(dict(get_current_context()["params"]))

    @task
    def request(planned: dict, venue: str) -> list[dict]:
        """``[spec]`` when the venue is enabled, ``[]`` (extract skipped) when not."""
        return planned[venue]

    @task(
        retries=EXTRACT_RETRIES,
        retry_delay=timedelta(seconds=30),
        retry_exponential_backoff=True,
        max_retry_delay=timedelta(minutes=10),
        execution_timeout=timedelta(minutes=20),
    )
    def extract(spec: dict) -> dict:
        from airflow.sdk.exceptions import AirflowFailException
        from positioning import pipeline

        context = get_current_context()
        start, end = pipeline.interval_from_context(context)
        try:
            return pipeline.extract(spec, start, end, context["run_id"], context["ti"].try_number)
        except pipeline.VenueExtractFailed as exc:
            if not exc.retryable:
                raise AirflowFailException(str(exc)) from exc  # retrying a geo-block or bad symbol cannot help
            raise

    @task(pool="positioning_warehouse", trigger_rule="all_done")
    def load() -> dict:
        from positioning import pipeline

        context = get_current_context()
        _, end = pipeline.interval_from_context(context)
        return pipeline.load(end, context["run_id"])

    @task(pool="positioning_warehouse")
    def build_marts(planned: dict) -> dict:
        from positioning import pipeline

        _, end = pipeline.interval_from_context(get_current_context())
        return pipeline.build_marts(end, planned["sort_by"])

    @task(pool="positioning_warehouse")
    def alert() -> dict:
        from positioning import alerts, pipeline

        context = get_current_context()
        _, end = pipeline.interval_from_context(context)
        dag_run = context["dag_run"]
        return alerts.run_alerts(
            end,
            context["run_id"],
            dict(context["params"]),
            context["ti"].xcom_pull(task_ids="load"),  # None when the load failed (e.g. the quality gate blocked)
            run_type=str(getattr(dag_run.run_type, "value", dag_run.run_type)),
        )

    planned = plan()
    loaded = load()
    for venue in registry.names():
        # One task group per venue: its extract is mapped over [spec] (or [] when disabled) in its own pool.
        with TaskGroup(group_id=venue):
            extract.override(pool=f"positioning_{venue}").expand(spec=request(planned, venue)) >> loaded
    # The alert task is a teardown: it runs once build_marts is done whatever its state (all done, no setup
    # tasks), and, being a teardown, it does not decide the run's state: a blocked gate still fails the run and a
    # Telegram outage never does.
    loaded >> build_marts(planned) >> alert().as_teardown()


positioning()
