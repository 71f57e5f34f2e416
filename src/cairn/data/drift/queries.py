"""The SQL that reproduces a finding, written against TABLE until the report names the table."""

from __future__ import annotations

from typing import Any

from cairn.data.drift.counting import TimeAxis, base_type
from cairn.data.drift.model import Comparison, SliceDifference
from cairn.data.query import sql_name, sql_text

TABLE = "__TABLE__"  # stands for the table in a finding's query until it is rendered


def slice_condition(column: str, value: Any, kind: str) -> str:
    name = sql_name(column)
    if value is None:
        return f"{name} IS NULL"
    if base_type(kind) == "VARCHAR":
        return f"{name} = {sql_text(str(value))}"
    return f"CAST({name} AS VARCHAR) = {sql_text(str(value))}"


def _summary_columns(column: str, measure: str) -> str:
    name = sql_name(column)
    if measure == "values":
        return (
            f"count({name}) AS n, round(quantile_cont({name}, 0.1), 4) AS p10, "
            f"round(median({name}), 4) AS median, round(quantile_cont({name}, 0.9), 4) AS p90"
        )
    if measure == "missing share":
        return f"count(*) AS rows, round(1 - count({name}) / count(*), 4) AS missing_share"
    return f"count(*) AS rows, mode({name}) AS most_common, count(DISTINCT {name}) AS values"


def comparison_query(test: Comparison, time: TimeAxis, types: dict[str, str]) -> str:
    """SQL returning the test's two rows, history and window, with the counts it compared."""
    start, end = time.window_bounds(test.window)
    assert start is not None, "window 0 has no history"
    when = time.column_sql()
    conditions = []
    if test.slice_column is not None:
        conditions.append(
            slice_condition(test.slice_column, test.slice_value, types[test.slice_column])
        )
    if end is not None:
        conditions.append(f"{when} < {time.literal(end)}")
    else:
        conditions.append(f"{when} IS NOT NULL")
    if test.measure == "values":
        conditions.append(f"{sql_name(test.column)} IS NOT NULL")
    period = f"CASE WHEN {when} >= {time.literal(start)} THEN 'window' ELSE 'history' END"
    where = " AND ".join(conditions)
    return (
        f"SELECT {period} AS period, {_summary_columns(test.column, test.measure)} "
        f"FROM {TABLE} WHERE {where} GROUP BY 1 ORDER BY 1"
    )


def difference_query(difference: SliceDifference) -> str:
    """SQL comparing the column across the slice column's values."""
    column = sql_name(difference.slice_column)
    return (
        f"SELECT {column}, {_summary_columns(difference.column, difference.measure)} "
        f"FROM {TABLE} GROUP BY 1 ORDER BY 1"
    )


def render_query(sql: str, table: str) -> str:
    return sql.replace(TABLE, table)
