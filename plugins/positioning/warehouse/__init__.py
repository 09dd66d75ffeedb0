"""Warehouse: DuckDB connections and migrations, normalising raw rows into facts, the interval loader
(stage → audit → publish), the SQL model runner and its exports.

* ``connection``: ``connect``/``writer``/``reader`` and versioned migrations;
* ``parse``: raw files → typed rows (the venues' parsers, row by row or vectorised), ``ParsedRows``;
* ``normalize``: parsed rows → the rows of ``core.fact_positioning`` (pure polars, the venues' rules from adapters);
* ``ratios``: which figure a long/short ratio publishes (the venue's, or its shares' quotient on another scale);
* ``load``: ``StagedInterval`` and the one public interval loader the DAG and the bulk fill call;
* ``bulk_stage``: the bulk fill's hours, each staged as the DAG's loader stages one interval;
* ``bulk_load``: the bulk fill's load (a week of staged hours audited at once, then published);
* ``marts``: the SQL models in ``include/sql/models`` (templated over the venue registry), exports.

``from positioning import warehouse; warehouse.writer(...)`` keeps working: the connection API is re-exported.
"""

from positioning.warehouse.connection import (  # noqa: F401  (the package's public connection API)
    LOCK_WAIT_SECONDS,
    WarehouseLockedError,
    connect,
    migrate,
    migrations,
    reader,
    writer,
)
