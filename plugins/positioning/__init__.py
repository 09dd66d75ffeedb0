"""positioning: perpetual-futures positioning data (open interest, long/short ratios) into a DuckDB warehouse.

The package is imported by the Airflow DAG in ``dags/`` and by the ``positioning`` console script.
Module-level code here stays import-cheap: the DAG file imports it at parse time.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``positioning.VENUES``: the registered venue names (``positioning.registry`` is the source)."""
    if name == "VENUES":
        from positioning import registry

        return registry.names()
    raise AttributeError(f"module 'positioning' has no attribute {name!r}")
