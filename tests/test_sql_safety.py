"""SQL parameterisation audit of the library (``plugins/positioning``).

The rule: a value that can come from a user (DAG params and CLI arguments: symbols, periods, thresholds, sort
keys, run ids) or from a venue (anything in a response) reaches DuckDB only as a bound parameter (``?``), never
inside the SQL text. SQL text may be built only from code constants: table and schema names from tuple literals
or the catalog, model targets and bodies from the repository's own SQL files, column lists derived from code
constants, ORDER BY clauses chosen from a dict of constants by a validated key, and file paths of our own data
directory (quoted, for ``COPY``, which takes no parameter for its path).

This test finds every ``execute``/``executemany``/``sql``/``query`` call whose SQL is an f-string, a
concatenation, ``%`` or ``.format`` (directly, through a local variable, or through a helper's parameter one call
level up) and requires each interpolated expression to be on the allow-list below, with the reason it is a code
constant. A new interpolation fails the test: parameterise it, or add it here with its reason after review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

PACKAGE = Path(__file__).resolve().parents[1] / "plugins" / "positioning"
SQL_METHODS = {"execute", "executemany", "sql", "query"}

# (file, function) -> {interpolated expression: why it is a code constant}
ALLOWED: dict[tuple[str, str], dict[str, str]] = {
    ("connection.py", "insert_frame"): {
        "table": "callers pass literal table names (core.fact_positioning, ops.<literal>, quality.<literal>)"
    },
    ("load.py", "replace_ops"): {"table": "a key of StagedInterval.ops(), a dict literal of ops table names"},
    ("bulk_load.py", "_write_run_log"): {"table": "from the tuple literal ('extract_runs', 'extract_failures', ...)"},
    ("bulk_load.py", "publish_many"): {"table": "from the tuple literals of ops.* and quality.* table names"},
    ("report.py", "summary_from_warehouse"): {"where": "composed of literal fragments ('ts = ?', ' AND run_id = ?')"},
    ("marts.py", "_write_settings"): {
        "columns": "'?::DOUBLE AS <name>' for the field names of the settings dataclasses; values are bound"
    },
    ("marts.py", "relation_columns"): {
        "relation_sql": "a model's SQL from include/sql or marts.<table> from the catalog"
    },
    ("marts.py", "refresh"): {
        "schema": "the schema part of a model target (file name in include/sql/models)",
        "model.target": "the target named by a model file in include/sql/models",
        "model.sql": "the SQL text of a model file in include/sql/models",
        "columns": "column names and types DESCRIBE reported for the model's own query",
    },
    ("marts.py", "create_sort_views"): {
        "name": "marts.snapshot_<key of SORT_ORDERS>",
        "order": "a value of the SORT_ORDERS dict literal",
    },
    ("marts.py", "write"): (
        _EXPORT := {
            "table": "a marts.* table name from the catalog (mart_tables)",
            "', '.join(keys)": "a subset of the literal ('ts', 'symbol', 'venue')",
            "target": "our own exports path, single quotes doubled (COPY takes no parameter for its path)",
        }
    ),
    ("marts.py", "export_marts"): _EXPORT,  # the same statement, in write() nested inside it
    ("marts.py", "snapshot_query"): {"SORT_ORDERS[sort_by]": "sort_by is checked against SORT_ORDERS first"},
    ("cli.py", "latest_snapshot"): {"snapshot_query(sort_by)": "validates sort_by against SORT_ORDERS (marts.py)"},
}


def _interpolations(node: ast.AST) -> list[str] | None:
    """The non-literal parts of a dynamically built string, or None if ``node`` is not one."""
    if isinstance(node, ast.JoinedStr):
        return [ast.unparse(value.value) for value in node.values if isinstance(value, ast.FormattedValue)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        parts = []
        for side in (node.left, node.right):
            inner = _interpolations(side)
            if inner is not None:
                parts.extend(inner)
            elif not (isinstance(side, ast.Constant) and isinstance(side.value, str)):
                parts.append(ast.unparse(side))
        return parts
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return [ast.unparse(arg) for arg in node.args] + [ast.unparse(kw.value) for kw in node.keywords]
    return None


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _local_assignments(function: ast.AST) -> dict[str, list[ast.AST]]:
    assigned: dict[str, list[ast.AST]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            assigned.setdefault(node.target.id, []).append(node.value)
    return assigned


def dynamic_sql_sites() -> list[tuple[str, int, str, str]]:
    """(file, line, function, interpolated expression) for every dynamically built SQL statement."""
    sites = []
    passthrough: dict[str, int] = {}  # helper function name -> index of its SQL parameter
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in sorted(PACKAGE.rglob("*.py"))}
    for path, tree in trees.items():
        for function in _functions(tree):
            assigned = _local_assignments(function)
            parameters = [arg.arg for arg in function.args.args]
            for node in ast.walk(function):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                if node.func.attr not in SQL_METHODS or not node.args:
                    continue
                sql = node.args[0]
                parts = _interpolations(sql)
                if parts is None and isinstance(sql, ast.Name):
                    found = [p for value in assigned.get(sql.id, []) for p in (_interpolations(value) or [])]
                    if any(isinstance(value, ast.Constant) for value in assigned.get(sql.id, [])) and not found:
                        parts = None
                    elif sql.id in assigned:
                        parts = found or None
                    elif sql.id in parameters:
                        passthrough[function.name] = parameters.index(sql.id)
                if parts:
                    sites.extend((path.name, node.lineno, function.name, part) for part in parts)
            # A function returning dynamically built SQL (``snapshot_query``) is audited like an execute call.
            for node in ast.walk(function):
                if isinstance(node, ast.Return) and node.value is not None:
                    parts = _interpolations(node.value)
                    text = ast.unparse(node.value)
                    if parts and any(word in text for word in ("SELECT", "INSERT", "DELETE", "UPDATE", "FROM")):
                        sites.extend((path.name, node.lineno, function.name, part) for part in parts)
    # One level up: the SQL argument given to a helper that executes its parameter.
    for path, tree in trees.items():
        for function in _functions(tree):
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in passthrough:
                    index = passthrough[node.func.id] - 1  # the helper's first parameter is the connection
                    if 0 <= index < len(node.args):
                        parts = _interpolations(node.args[index]) or []
                        sites.extend((path.name, node.lineno, function.name, part) for part in parts)
    return sites


def test_every_interpolation_into_sql_is_a_reviewed_code_constant():
    sites = dynamic_sql_sites()
    assert sites, "the scanner should find the known table-name interpolations"
    unreviewed = [
        f"{file}:{line} in {function}(): {{{part}}}"
        for file, line, function, part in sites
        if part not in ALLOWED.get((file, function), {})
    ]
    assert not unreviewed, (
        "SQL built from values not on the allow-list (parameterise them with ?, or review and allow-list):\n  "
        + "\n  ".join(unreviewed)
    )


def test_the_scanner_catches_injection_shapes():
    source = """
def bad(con, symbol, sort_by):
    con.execute(f"SELECT * FROM core.fact_positioning WHERE symbol = '{symbol}'")
    con.execute("SELECT * FROM t ORDER BY " + sort_by)
    sql = "DELETE FROM t WHERE s = '%s'" % symbol
    con.execute(sql)
    con.sql("SELECT {}".format(symbol))
    con.execute("SELECT * FROM t WHERE symbol = ?", [symbol])
"""
    found = []
    for function in _functions(ast.parse(source)):
        assigned = _local_assignments(function)
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_METHODS:
                sql = node.args[0]
                parts = _interpolations(sql)
                if parts is None and isinstance(sql, ast.Name):
                    parts = [p for v in assigned.get(sql.id, []) for p in (_interpolations(v) or [])]
                found.extend(parts or [])
    assert found == ["symbol", "sort_by", "symbol", "symbol"]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_sort_keys_outside_the_list_never_reach_sql(sort_by):
    from positioning.warehouse.marts import SORT_ORDERS, snapshot_query

    if sort_by in SORT_ORDERS:
        assert snapshot_query(sort_by).endswith(SORT_ORDERS[sort_by])
    else:
        with pytest.raises(ValueError, match="sortBy"):
            snapshot_query(sort_by)
