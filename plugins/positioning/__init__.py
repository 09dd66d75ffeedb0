"""positioning: perpetual-futures positioning data (open interest, long/short ratios) into a DuckDB warehouse.

The package is imported by the Airflow DAG in ``dags/`` and by the ``positioning`` console script.
Module-level code here stays import-cheap: the DAG file imports it at parse time.
"""

__version__ = "0.1.0"

VENUES = ("binance", "okx", "bitget", "strike")
