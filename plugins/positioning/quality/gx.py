"""The great-expectations adapter: an ephemeral context with the gate's suites (:class:`GxSession`), the pandas
copy it validates (:func:`pandas_frame`), and the reading of its results (which check an expectation result
belongs to, which rows failed, whether it raised).

``great_expectations`` costs 3-4 s to import: it is imported inside the functions that use it, never at module
level, so that importing the package stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from positioning.quality.checks import WARNING, Check

DATA_DOCS_SITE = "quality"


def pandas_frame(frame: pl.DataFrame, check_columns: Iterable[str]) -> Any:
    """A pandas copy for great-expectations. pandas treats NaN as missing and map expectations skip missing
    values, so a NaN in a derived check column becomes +inf there (it then fails its range check) while null
    stays "not applicable". The finite check catches NaN values themselves (``finite_value`` is null for them)."""
    check_columns = [c for c in check_columns if c in frame.columns and frame.schema[c].is_float()]
    return frame.with_columns(pl.col(c).fill_nan(float("inf")) for c in check_columns).to_pandas()


def import_in_background() -> None:
    """Start importing great-expectations on a daemon thread: a caller that waits on the network first (the bulk
    fill's fetch) hides those seconds, and whoever then imports it waits only for the rest (the import lock)."""
    import importlib
    import threading

    threading.Thread(target=importlib.import_module, args=("great_expectations",), daemon=True).start()


class GxSession:
    """An ephemeral great-expectations context (optionally with a filesystem Data Docs site) whose suites and
    validation definitions are built once: a DAG load audits one interval with it, the bulk fill hundreds (the
    context set-up would otherwise cost more than the validations themselves)."""

    def __init__(self, docs_dir: Path | None):
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        self.gx = gx
        # In-memory stores, no default (temporary) docs site, no analytics calls from inside a task.
        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False), analytics_enabled=False
        )
        self.context = gx.get_context(project_config=config, mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.docs_dir = docs_dir
        if docs_dir is not None:
            docs_dir.mkdir(parents=True, exist_ok=True)
            self.context.add_data_docs_site(
                site_name=DATA_DOCS_SITE,
                site_config={
                    "class_name": "SiteBuilder",
                    "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )
        self.source = self.context.data_sources.add_pandas("positioning_staging")
        self._definitions: dict[str, tuple[list[Check], Any]] = {}

    @property
    def version(self) -> str:
        """The great-expectations version (recorded with each validation)."""
        return self.gx.__version__

    def run(self, suite_name: str, frame: Any, suite_checks: list[Check], index_column: str, run_name: str) -> Any:
        from great_expectations.core.run_identifier import RunIdentifier

        built = self._definitions.get(suite_name)
        if built is None:
            built = self._definitions[suite_name] = (suite_checks, self._definition(suite_name, suite_checks))
        elif built[0] != suite_checks:
            # A suite is built once per session: other thresholds would silently validate against the old ones.
            raise ValueError(f"{suite_name}: this session validates other checks; use a new GxSession per config")
        return built[1].run(
            batch_parameters={"dataframe": frame},
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [index_column]},
            run_id=RunIdentifier(run_name=run_name, run_time=datetime.now(UTC)),
        )

    def _definition(self, suite_name: str, suite_checks: list[Check]) -> Any:
        gx = self.gx
        asset = self.source.add_dataframe_asset(name=suite_name.removeprefix("positioning."))
        batch = asset.add_batch_definition_whole_dataframe("interval")
        suite = self.context.suites.add(gx.ExpectationSuite(name=suite_name))
        for check in suite_checks:
            expectation_class = getattr(gx.expectations, check.expectation_type)
            suite.add_expectation(
                expectation_class(
                    **check.kwargs,
                    # The check's name travels in meta: result_rows maps each result back to its check by it.
                    meta={"check": check.name, "level": check.level},
                    description=f"{check.name}: {check.description}",
                    severity="warning" if check.level == WARNING else "critical",
                )
            )
        return self.context.validation_definitions.add(
            gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
        )

    def build_docs(self) -> str | None:
        if self.docs_dir is None:
            return None
        self.context.build_data_docs(site_names=[DATA_DOCS_SITE])
        return str(self.docs_dir / "index.html")


def result_rows(result: Any, suite_checks: list[Check]) -> list[tuple[Check, Any]]:
    """(check, expectation result) for each result of a suite's validation result."""
    by_name = {check.name: check for check in suite_checks}
    return [(by_name[r.expectation_config.meta["check"]], r) for r in result.results]


def failed_indices(expectation_result: Any, index_column: str) -> list[int]:
    """The ``index_column`` values of the rows an expectation found unexpected."""
    return [int(item[index_column]) for item in expectation_result.result.get("unexpected_index_list") or []]


def exception_message(expectation_result: Any) -> str | None:
    """The message of the exception an expectation raised (it could not be evaluated); None if it ran."""
    info = expectation_result.exception_info or {}
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    return None
